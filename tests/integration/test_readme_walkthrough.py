"""The README's sandbox walkthrough, run as written, against a sandbox this test starts.

The block after the ``sandbox-walkthrough`` marker is what a new user types in a second terminal
while ``make sandbox`` runs. Here ``rotator sandbox`` runs in a scratch directory laid out like a
checkout (``.sandbox/`` its working directory, ``.venv/bin/rotator`` the CLI of this
interpreter), with its own free ports, and the block runs in one ``bash -euo pipefail``: every
command must succeed, in order, as the README says.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- sandbox-walkthrough:"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def walkthrough() -> str:
    """The fenced ``sh`` block that follows the marker in README.md."""
    text = (ROOT / "README.md").read_text()
    found = re.search(re.escape(MARKER) + r".*?-->\s*```sh\n(.*?)```", text, re.DOTALL)
    assert found is not None, "README.md lost its sandbox walkthrough block"
    return found.group(1)


class Sandbox:
    """`rotator sandbox` (not --once) in ``home/.sandbox``; its output collected by a thread."""

    def __init__(self, home: Path) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rotator", "sandbox", "--dir", str(home / ".sandbox")],
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"sandbox never said {text!r}:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only what it started
                self.process.wait()
                raise
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return int(self.process.returncode)


@pytest.fixture
def sandbox_home(tmp_path: Path) -> Iterator[tuple[Path, Sandbox]]:
    home = tmp_path / "checkout"
    (home / ".venv" / "bin").mkdir(parents=True)
    cli = home / ".venv" / "bin" / "rotator"
    cli.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m rotator "$@"\n')
    cli.chmod(0o755)
    sandbox = Sandbox(home)
    try:
        yield home, sandbox
    finally:
        code = sandbox.stop()
        assert code == 0, "\n".join(sandbox.lines)


def test_the_readme_sandbox_walkthrough_runs_as_written(sandbox_home: tuple[Path, Sandbox]) -> None:
    home, sandbox = sandbox_home
    script = walkthrough()
    for needed in (".venv/bin/rotator", "sandbox.rotator.dev/fail-readiness", "ROTATOR_METRICS_URL"):
        assert needed in script, f"the walkthrough no longer shows {needed}"
    sandbox.wait_for("the stack keeps running", timeout=180)
    assert any("scenario rotation: as expected" in line for line in sandbox.lines)
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"the walkthrough failed:\n{output}\nsandbox:\n" + "\n".join(sandbox.lines)
    lines = result.stdout.splitlines()
    assert "Forced Initial" in lines, "the sandbox already forced one rotation, as the README says"
    assert any(line.startswith('rotator_rotations_total{namespace="demo"') for line in lines), output
    assert lines[-2:] == ["3", "deployment.apps/demo-app annotated"], "rolled back: version 3 stays"
