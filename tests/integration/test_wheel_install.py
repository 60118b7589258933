"""The wheel as a stranger gets it: built, installed into a fresh venv, run from elsewhere.

Nothing of the checkout is importable there: the shipped calendars, migrations and static
files must come from inside the installed package.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.process]


@pytest.fixture(scope="module")
def installed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """bin/ of a venv holding the wheel built from this checkout and only what it requires.

    The venv with the wheel's requirements is kept between runs, outside the checkout (in
    `$XDG_CACHE_HOME`, or `~/.cache`), one per Python and set of `Requires-Dist` lines: a later
    run installs its new wheel into it (`--no-deps --force-reinstall`), without installing the
    dependencies again.
    """
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
    )
    wheels = list(dist.glob("sla_engine-*.whl"))
    assert len(wheels) == 1, wheels
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sla-engine-tests"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable home: a venv of this run only
        root = work
    venv = root / _requirements_key(wheels[0])
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q"]
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one run at a time installs into the kept venv
        if (venv / "ready").exists():
            subprocess.run([*pip, "--no-deps", "--force-reinstall", str(wheels[0])], check=True)
        else:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
            subprocess.run([*pip, str(wheels[0])], check=True)
            (venv / "ready").touch()
        yield venv / "bin"


def _requirements_key(wheel: Path) -> str:
    """This Python (path and version) and the wheel's `Requires-Dist` lines, hashed."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [
            line
            for line in archive.read(name).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    text = "\n".join([sys.executable, sys.version, *requires])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_ENGINE_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(bin_dir / "sla-engine"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_installed_package_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(installed / "python"), "-c", "import sla_engine; print(sla_engine.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in out
    assert "site-packages" in out


def test_shipped_calendars_and_commands_work_outside_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    listed = _run(installed, tmp_path, "calendars", "list")
    assert listed.returncode == 0, listed.stderr
    assert "smartertools" in listed.stdout and "24x7" in listed.stdout

    deadline = _run(
        installed,
        tmp_path,
        "deadline",
        "--calendar",
        "smartertools",
        "--start",
        "2026-11-20T13:00:00-07:00",
        "--duration",
        "4h",
    )
    assert deadline.returncode == 0, deadline.stderr
    assert deadline.stdout.strip() == "2026-11-23T08:00:00-07:00"

    version = _run(installed, tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("sla-engine ")

    python = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "from sla_engine import load_calendar; print(load_calendar('smartertools').tz)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert python.returncode == 0, python.stderr
    assert python.stdout.strip() == "America/Phoenix"


def test_db_upgrade_and_serve_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    upgraded = _run(installed, tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "sla-engine.db").exists()

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_ENGINE_")}
    server = subprocess.Popen(
        [str(installed / "sla-engine"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("serve did not answer") from None
                time.sleep(0.2)
        body = json.dumps(
            {"calendar": "smartertools", "start": "2026-11-20T13:00:00-07:00", "duration": "4h"}
        ).encode()
        request = urllib.request.Request(
            f"{base}/v1/deadlines", data=body, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.load(resp)["deadline"] == "2026-11-23T08:00:00-07:00"
        with urllib.request.urlopen(f"{base}/docs", timeout=5) as resp:
            assert resp.status == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
