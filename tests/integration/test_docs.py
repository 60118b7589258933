"""The docs stand alone and tell the truth about the commands and files they name.

- README.md, docs/ and the shipped code never point to a contract file outside the
  repository (`../shared`, `SPEC.md`, "SPEC section N"): a reader has only the project.
- Every `sla-engine ...` command named in code in docs/REFERENCE.md exists: `sla-engine
  COMMAND --help` exits 0 in a subprocess, and each `--option` written after the command is
  one its help lists.
- Every relative link in README.md and docs/ points to a file that exists, and a `#anchor`
  into a Markdown file to one of its headings.
- The complete config example in docs/REFERENCE.md is examples/config.toml, word for word.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "REFERENCE.md"
pytestmark = pytest.mark.process


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- (a) no pointer to the contract outside the repository -------------------------------

CONTRACT = re.compile(r"\.\./shared|shared/SPEC|SPEC\.md|\bSPEC\b")


def shipped_files() -> list[Path]:
    """What a user reads besides the docs: the package's code and assets, examples, calendars."""
    suffixes = {".py", ".js", ".html", ".css", ".toml", ".ics", ".yaml"}
    folders = [ROOT / "sla_engine", ROOT / "examples", ROOT / "calendars"]
    return [p for f in folders for p in sorted(f.rglob("*")) if p.suffix in suffixes]


def test_docs_never_point_to_the_contract_file() -> None:
    found = [
        f"{rel(path)}:{number}: {line.strip()}"
        for path in [*doc_files(), *shipped_files()]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if CONTRACT.search(line)
    ]
    assert not found, "docs point to a file readers do not have:\n" + "\n".join(found)


# --- (b) every command named in docs/REFERENCE.md exists -----------------------------------

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
WORD = re.compile(r"^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*$")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def code_lines(text: str) -> Iterator[str]:
    """Lines of fenced blocks, and inline code spans outside them."""
    for block in FENCE.findall(text):
        yield from block.splitlines()[1:-1]
    yield from SPAN.findall(FENCE.sub("", text))


def named_commands(text: str) -> dict[tuple[str, ...], set[str]]:
    """{command path: options written after it} for every `sla-engine ...` in code."""
    found: dict[tuple[str, ...], set[str]] = {}
    for line in code_lines(text):
        line = line.split("#", 1)[0]  # a shell or TOML comment is prose
        for piece in re.split(r"(?<![\w-])sla-engine(?![\w-])", line)[1:]:
            tokens = piece.split()
            words: list[str] = []
            for token in tokens:
                if not WORD.match(token):
                    break
                words.append(token)
            options = set(OPTION.findall(piece))
            paths: list[tuple[str, ...]] = [()]
            for word in words:
                paths = [(*p, alt) for p in paths for alt in word.split("|")]
            for path in paths:
                found.setdefault(path, set()).update(options)
    return found


def sla_engine() -> str:
    return shutil.which("sla-engine") or str(Path(sys.executable).parent / "sla-engine")


def help_of(path: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sla_engine(), *path, "--help"], capture_output=True, text=True, env=env, timeout=120
    )


def test_named_commands_are_found_in_code_spans_and_blocks() -> None:
    text = (
        "Run `sla-engine calendars put|versions NAME`.\n\n"
        "```sh\nsla-engine report attainment [--metric M] [--csv]  # --not-this\n"
        "# sla-engine service config\n```\n"
        "Prose sla-engine nothing.\n"
    )
    assert named_commands(text) == {
        ("calendars", "put"): set(),
        ("calendars", "versions"): set(),
        ("report", "attainment"): {"--metric", "--csv"},
    }


def to_check(commands: dict[tuple[str, ...], set[str]]) -> list[tuple[str, ...]]:
    """The paths to run: a group named only as the prefix of its commands, with no option
    of its own, exists when they do."""
    return [
        path
        for path, options in commands.items()
        if options or not any(len(o) > len(path) and o[: len(path)] == path for o in commands)
    ]


@pytest.mark.slow
def test_every_command_in_the_reference_exists_with_its_options() -> None:
    named = named_commands(REFERENCE.read_text(encoding="utf-8"))
    assert ("serve",) in named and ("config", "check") in named
    commands = {path: named[path] for path in to_check(named)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(commands, pool.map(help_of, commands), strict=True))
    problems = []
    for path, result in results.items():
        shown = " ".join(("sla-engine", *path))
        if result.returncode != 0:
            problems.append(f"`{shown} --help` exits {result.returncode}: {result.stderr.strip()}")
            continue
        unknown = sorted(commands[path] - set(OPTION.findall(result.stdout)))
        problems += [f"`{shown}`: the docs name {o}, its --help does not list it" for o in unknown]
    assert not problems, "\n".join(problems)


# --- the routes table is the app's routes, no more and no fewer ----------------------------

ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|", re.M)


def test_the_routes_table_lists_exactly_the_routes_of_the_app(tmp_path: Path) -> None:
    from sla_engine.api import create_app
    from sla_engine.composition import build_services
    from sla_engine.config import load_config

    services = build_services(load_config(None, database_url=f"sqlite:///{tmp_path}/docs.db"))
    try:
        schema = create_app(services, api_token="").openapi()
    finally:
        services.close()

    def shown(path: str) -> str:  # the table writes every path id as {id}
        return re.sub(r"\{(ticket_id|escalation_id)\}", "{id}", path)

    served = {(m.upper(), shown(p)) for p, ops in schema["paths"].items() for m in ops}
    served |= {("GET", "/"), ("GET", "/docs"), ("GET", "/openapi.json")}
    routes = REFERENCE.read_text(encoding="utf-8").split("### Routes", 1)[1]
    documented = set(ROW.findall(routes.split("\n### ", 1)[0]))
    assert sorted(served - documented) == [], "routes the reference leaves out"
    assert sorted(documented - served) == [], "routes the reference names that do not exist"


# --- (c) relative links point to files (and headings) that exist ---------------------------

LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto: ...


def links(text: str) -> list[str]:
    prose = FENCE.sub("", text)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return LINK.findall(prose) + REF_DEF.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", path.read_text()), re.M):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def test_slugs_follow_github() -> None:
    assert slug("1. Calendars") == "1-calendars"
    assert slug("### `sla-engine calendars put`".lstrip("# ")) == "sla-engine-calendars-put"
    assert slug("Clocks: choices beyond the defaults") == "clocks-choices-beyond-the-defaults"


def test_relative_links_point_to_files_that_exist() -> None:
    broken = []
    for path in doc_files():
        for target in links(path.read_text(encoding="utf-8")):
            if EXTERNAL.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            file_part = file_part.split("?", 1)[0]
            where = (path.parent / file_part).resolve() if file_part else path
            if not where.exists():
                broken.append(f"{rel(path)}: {target} (no such file)")
            elif anchor and where.suffix == ".md" and anchor not in anchors(where):
                broken.append(f"{rel(path)}: {target} (no such heading in {where.name})")
    assert not broken, "broken links:\n" + "\n".join(broken)


# --- the examples in docs/REFERENCE.md are what they say ---------------------------------


def test_the_reference_calendar_file_loads_and_means_what_its_comments_say(
    tmp_path: Path,
) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from sla_engine import load_calendar

    text = REFERENCE.read_text(encoding="utf-8")
    section = text.split("### The calendar file", 1)[1]
    block = re.search(r"^```toml\n(.*?)^```", section, re.S | re.M)
    assert block is not None
    (tmp_path / "team-holidays.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n"
    )
    (tmp_path / "desk.toml").write_text(block.group(1), encoding="utf-8")
    cal = load_calendar(tmp_path / "desk.toml")
    tz = ZoneInfo("America/Phoenix")

    def day(d: int, m: int = 11) -> list[tuple[str, str]]:
        start = datetime(2026, m, d, tzinfo=tz)
        return [
            (a.strftime("%d %H:%M"), b.strftime("%d %H:%M"))
            for a, b in cal.open_intervals(start, start + timedelta(days=1))
        ]

    assert cal.title == "SmarterTools support hours" and cal.tz == tz
    assert day(17) == [("17 08:00", "17 12:00"), ("17 13:00", "17 17:00")]  # a Tuesday
    assert day(20) == [("20 22:00", "21 00:00")]  # Friday: 22:00-06:00
    assert day(21) == [("21 00:00", "22 00:00")]  # Saturday, after Friday's night
    assert day(22) == []  # Sunday: not listed
    # a Saturday in [dates]: Friday's night still runs into it (a window belongs to its start)
    assert day(28) == [("28 00:00", "28 06:00"), ("28 09:00", "28 13:00")]
    assert day(26) == []  # Thanksgiving: a holiday, and Thursday has hours
    assert day(15, 10) == [] and day(16, 10) == []  # the ics_text event, DTEND exclusive
    assert day(14, 10) != []
    assert day(24, 12) == [("24 08:00", "24 12:00")]  # half day; the closure starts at 12:00
    assert day(27, 12) == []  # closed until the 28th 08:00
    # Wednesday 13:00 + 4h is used up at the 17:00 close: the answer is the next opening,
    # past Thanksgiving, Friday 22:00
    wednesday = datetime(2026, 11, 25, 13, tzinfo=tz)
    assert cal.add(wednesday, timedelta(hours=4)) == datetime(2026, 11, 27, 22, tzinfo=tz)


# --- the complete config example is the shipped one ----------------------------------------


def test_the_reference_shows_the_shipped_example_config_word_for_word() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    section = text.split("### The complete example", 1)[1]
    block = re.search(r"^```toml\n(.*?)^```", section, re.S | re.M)
    assert block is not None
    shipped = (ROOT / "examples" / "config.toml").read_text(encoding="utf-8")
    assert block.group(1) == shipped
