"""The operator as a child process: how the sandbox runs it and how tests kill it for real.

A separate process (not a task in the test's loop) makes a crash a crash: `ROTATOR_CRASH_AT`
makes it `os._exit` at a named step boundary, with nothing flushed, exactly like SIGKILL.
:class:`OperatorSupervisor` plays the Deployment's restart policy for the sandbox: a crashed
operator comes back, and says so.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

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
    pod_name: str = field(default_factory=lambda: f"rotator-{uuid.uuid4().hex[:5]}")
    """``POD_NAME`` of every start: one name across restarts, as a pod keeps its name across
    its container's restarts (so a restarted leader takes its own Lease back at once)."""
    process: subprocess.Popen[bytes] | None = None
    stopping: bool = False
    """Set by :meth:`stop` and :meth:`kill`: the exit that follows was asked for, not a crash."""
    _log: IO[bytes] | None = None
    _auto_ports: bool = field(default=False, init=False)
    _log_offset: int = field(default=0, init=False)
    _started_with: tuple[str | None, Path | None] = field(default=(None, None), init=False)

    def __post_init__(self) -> None:
        self._auto_ports = not (self.metrics_port or self.liveness_port)

    def start(self, crash_at: str | None = None, armed_by: Path | None = None) -> None:
        """Start `rotator run`; `crash_at` names checkpoints where it must die (comma list),
        only once the file `armed_by` exists when given (``rotator.cli.crash_hook``)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("operator already running")
        self.stopping = False
        self._started_with = (crash_at, armed_by)
        if self._auto_ports:
            # Fresh ports at every start: after a kill, another job on the machine may have taken
            # the old ones (a restarted operator that cannot bind is a crash loop, not a test).
            self.metrics_port = free_port()
            self.liveness_port = free_port()
            while self.liveness_port == self.metrics_port:
                self.liveness_port = free_port()
        env = {**os.environ, "POD_NAME": self.pod_name, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        env.pop("ROTATOR_CRASH_AT", None)
        env.pop("ROTATOR_CRASH_ARMED_BY", None)
        if crash_at:
            env["ROTATOR_CRASH_AT"] = crash_at
            if armed_by is not None:
                env["ROTATOR_CRASH_ARMED_BY"] = str(armed_by)
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log_offset = self._log.tell()
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

    def lost_its_ports(self) -> bool:
        """Did this start exit because a port it was given was taken in between? ``free_port``
        can only say a port was free a moment ago: another job on the machine may bind it
        first. With ports of its own choosing, the cure is another start on fresh ones."""
        if not self._auto_ports or self.alive():
            return False
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            # aiohttp (liveness) says "address already in use", Python's OSError (metrics) "Address ..."
            return b"address already in use" in log.read().lower()

    def start_again(self) -> None:
        """The same start (crash points and all) on fresh ports: after :meth:`lost_its_ports`."""
        self.start(*self._started_with)

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
        self.stopping = True
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
        self.stopping = True
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


def describe_exit(code: int) -> str:
    """``1`` -> ``"code 1"``; ``-9`` (killed by a signal, as Popen reports it) -> ``"code -9 (SIGKILL)"``."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"code {code} ({signal.Signals(-code).name})"
    return f"code {code}"


@dataclass(frozen=True)
class RestartPolicy:
    """How :class:`OperatorSupervisor` restarts a crashed operator.

    A restart waits ``backoff`` seconds, doubled for each restart still inside the ``window``, up
    to ``max_backoff``: a transient crash comes back at once, a repeating one slows down. After
    ``max_restarts`` restarts within ``window`` seconds the supervisor gives up and says so: an
    operator that cannot start (a broken kubeconfig, a bug at start-up) would otherwise restart
    forever and bury its first error in the log. ``poll`` is how often the process is checked.
    """

    max_restarts: int = 5
    window: float = 60.0
    backoff: float = 0.5
    max_backoff: float = 8.0
    poll: float = 0.2


class OperatorSupervisor:
    """Restart the operator when it crashes: an exit code other than 0 that :meth:`OperatorProcess.stop`
    or :meth:`OperatorProcess.kill` did not cause (a SIGKILL from outside, an ``os._exit``, an
    uncaught exception). Exit code 0 is a deliberate stop and is left alone. Each restart is
    reported through ``out`` as ``operator exited with code N; restarting (restart #k)``.

    Runs in a daemon thread; :meth:`stop` must be called before the operator is stopped.
    """

    def __init__(
        self,
        operator: OperatorProcess,
        out: Callable[[str], None] = print,
        policy: RestartPolicy | None = None,
    ) -> None:
        self.operator = operator
        self.policy = policy or RestartPolicy()
        self.restarts = 0
        self.gave_up = False
        self._out = out
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("the supervisor was already started")
        self._thread = threading.Thread(target=self._run, name="operator-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop supervising (idempotent); a restart under way completes first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _run(self) -> None:
        policy = self.policy
        recent: collections.deque[float] = collections.deque()
        while not self._stop.wait(policy.poll):
            process = self.operator.process
            if process is None or self.operator.stopping:
                continue
            code = process.poll()
            if code is None:
                continue
            if code == 0:
                self._out("operator exited with code 0; not restarting (a deliberate stop)")
                return
            now = time.monotonic()
            while recent and now - recent[0] > policy.window:
                recent.popleft()
            if len(recent) >= policy.max_restarts:
                self.gave_up = True
                self._out(
                    f"operator exited with {describe_exit(code)}; not restarting: {len(recent)} restarts "
                    f"in the last {policy.window:g} s (see {self.operator.log_path})"
                )
                return
            delay = min(policy.backoff * 2 ** len(recent), policy.max_backoff)
            recent.append(now)
            self.restarts += 1
            self._out(f"operator exited with {describe_exit(code)}; restarting (restart #{self.restarts})")
            if self._stop.wait(delay) or self.operator.stopping:
                return
            self.operator.start()
