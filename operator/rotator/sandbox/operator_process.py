"""The operator as a child process: how the sandbox runs it and how tests kill it for real.

A separate process (not a task in the test's loop) makes a crash a crash: `ROTATOR_CRASH_AT`
makes it `os._exit` at a named step boundary, with nothing flushed, exactly like SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rotator.sandbox.processes import free_port


@dataclass
class OperatorProcess:
    kubeconfig: Path
    log_path: Path
    idle_resync: float = 2.0
    poll: float = 0.3
    extra_env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = 0
    liveness_port: int = 0
    namespaces: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self, crash_at: str | None = None) -> None:
        """Start `rotator run`; `crash_at` names checkpoints where it must die (comma list)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("operator already running")
        self.metrics_port = self.metrics_port or free_port()
        self.liveness_port = self.liveness_port or free_port()
        env = {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        env.pop("ROTATOR_CRASH_AT", None)
        if crash_at:
            env["ROTATOR_CRASH_AT"] = crash_at
        self._close_log()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rotator",
                "run",
                "--kubeconfig",
                str(self.kubeconfig),
                "--metrics-port",
                str(self.metrics_port),
                "--metrics-address",
                "127.0.0.1",
                "--liveness-port",
                str(self.liveness_port),
                "--liveness-address",
                "127.0.0.1",
                "--idle-resync",
                str(self.idle_resync),
                "--poll",
                str(self.poll),
                *[arg for ns in self.namespaces for arg in ("--namespace", ns)],
                *self.extra_args,
                "--log-format",
                "text",
                *(["--verbose"] if os.environ.get("ROTATOR_VERBOSE") else []),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end on its own (an injected crash); returns the exit code."""
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        self._close_log()
        return code

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (Kopf stops its daemons gracefully), then SIGKILL by PID if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL now: the harshest crash, for tests that kill at an arbitrary moment."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        self._close_log()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"operator exited early; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"operator not healthy after {timeout}s; see {self.log_path}")

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
