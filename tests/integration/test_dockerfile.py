"""The Dockerfile builds, where a Docker daemon is there to build it (it is not on every CI
machine; the build pulls python:3.11-slim, so it also needs a registry)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.slow
@pytest.mark.process
def test_the_image_builds_and_answers_version() -> None:
    if not _docker_ready():
        pytest.skip("no Docker daemon on this machine: the Dockerfile build is not tested here")
    tag = "sla-engine:test"
    build = subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=900
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run(
        ["docker", "run", "--rm", tag, "--version"], capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.startswith("sla-engine ")


def test_the_dockerfile_copies_what_the_wheel_needs() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for needed in ("COPY sla_engine", "COPY calendars", "LICENSE", "README.md"):
        assert needed in text
    assert (ROOT / "compose.yaml").read_text().count("SLA_ENGINE_DATABASE_URL") >= 1
