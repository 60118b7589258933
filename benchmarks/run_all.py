"""Run every `benchmarks/*_throughput.py` and `*_latency.py`, and `calendar_replan.py`, in
turn, each in its own process (`make bench`).

Arguments (e.g. `--quick`) are passed to every benchmark. Output is streamed as it comes;
the exit code is non-zero when any benchmark failed, and the failures are listed at the end.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmarks() -> list[Path]:
    named = [HERE / "calendar_replan.py"]
    return sorted([*HERE.glob("*_throughput.py"), *HERE.glob("*_latency.py"), *named])


def run(script: Path, args: list[str]) -> int:
    print(f"=== {script.name} {' '.join(args)}".rstrip(), flush=True)
    began = time.perf_counter()
    code = subprocess.run([sys.executable, str(script), *args], check=False).returncode
    print(f"=== {script.name}: exit {code} after {time.perf_counter() - began:.1f} s\n", flush=True)
    return code


def main(argv: list[str]) -> int:
    failed = [script.name for script in benchmarks() if run(script, argv) != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
