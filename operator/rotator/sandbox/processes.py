"""Shared plumbing for the local stack's server processes (DESIGN §5).

Every server of the sandbox (OpenBao, moto, PostgreSQL) is one child process that we spawn on
127.0.0.1 on a free port, wait for until it answers a health check, and stop by its own PID.
This module holds what they have in common so that each server module only says *what* to run
and *how to tell it is up*:

- ``free_port()``: ask the kernel for a free TCP port on the loopback interface.
- ``LocalServer``: spawn in its own process group (so a stray grandchild can be killed with the
  group, and Ctrl-C in the terminal does not reach it), capture stdout/stderr into a log file in
  a private work directory, wait until healthy with a deadline (failing fast, with the log tail,
  if the process dies), and stop by PID: SIGTERM, wait, SIGKILL the group, wait.
- ``pause()`` / ``resume()``: SIGSTOP / SIGCONT on the PID, the way to make a server unreachable
  (connections hang, then time out) without losing its in-memory state.

The work directory's path is put into each child's environment as ``ROTATOR_SANDBOX_DIR`` and
used as its working directory, so a leak check can find every process of ours by scanning /proc.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

LOOPBACK = "127.0.0.1"
SANDBOX_DIR_ENV = "ROTATOR_SANDBOX_DIR"
"""Environment variable carrying a server's work directory into the child (for leak checks)."""

DEFAULT_START_TIMEOUT = 30.0
"""Seconds to wait for a server to become healthy: PostgreSQL's initdb is the slow part (~1-3 s);
30 s leaves room for a loaded CI machine without hiding a server that never comes up."""

DEFAULT_STOP_TIMEOUT = 10.0
"""Seconds between SIGTERM and SIGKILL: long enough for a clean shutdown, short enough for tests."""

_POLL_INTERVAL = 0.05


class ServerError(RuntimeError):
    """A sandbox server could not be started or stopped."""


class PortTaken(ServerError):
    """Someone else answers on the port chosen for a server: taken between the choice
    (``free_port``) and the start by another job on the machine. Nothing was started; a new
    server object (new ports) may be tried."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on ``host`` right now (the kernel picks it).

    There is a small race between closing this probe socket and the server binding the port;
    on a loopback-only test machine it is negligible, and a failed bind shows up as a failed
    start with the server's own message in the log tail.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        # No /proc (not Linux): fall back to signal 0.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # Field 3 (after the parenthesised command) is the state; Z = zombie, X = dead.
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def wait_pid_gone(pid: int, timeout: float) -> bool:
    """Poll until ``pid`` no longer runs; True if it went away within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def http_ok(
    url: str, timeout: float = 1.0, accept: Sequence[int] = (200,), context: ssl.SSLContext | None = None
) -> bool:
    """True if a GET on ``url`` answers with one of the ``accept`` status codes (``context``: the
    TLS trust for an ``https://`` URL)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return int(response.status) in accept
    except urllib.error.HTTPError as exc:
        return exc.code in accept
    except (OSError, ValueError):
        return False


def tcp_ok(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def sandbox_processes(workdirs: Sequence[str | Path]) -> Iterator[tuple[int, str]]:
    """Yield ``(pid, cmdline)`` of every live process that belongs to one of ``workdirs``.

    A process belongs to a work directory when its command line mentions it, its working
    directory is inside it, or its environment carries it as ``ROTATOR_SANDBOX_DIR``. Processes
    we may not inspect (other users, when not root) are skipped.
    """
    dirs = [str(Path(d).resolve()) for d in workdirs]
    if not dirs:
        return
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found = any(d in cmdline for d in dirs)
            if not found:
                with contextlib.suppress(OSError):
                    cwd = os.readlink(entry / "cwd")
                    found = any(cwd == d or cwd.startswith(d + "/") for d in dirs)
            if not found:
                with contextlib.suppress(OSError):
                    environ = (entry / "environ").read_bytes().split(b"\0")
                    found = any(f"{SANDBOX_DIR_ENV}={d}".encode() in environ for d in dirs)
        except OSError:
            continue
        if found and pid_alive(pid):
            yield pid, cmdline.strip()


_LIVE: weakref.WeakSet[LocalServer] = weakref.WeakSet()
"""Servers started and not yet stopped in this process, stopped at interpreter exit."""


@atexit.register
def _stop_live_servers() -> None:
    """Last line of defence (e.g. an aborted test run): never leave a server behind."""
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop(timeout=5)


class LocalServer:
    """One server process on 127.0.0.1, owned and stopped by PID.

    Subclasses define ``name``, ``_argv()`` and ``_healthy()``, and may hook ``_prepare()`` (run
    once before the first start, e.g. initdb) and ``_before_stop()`` (e.g. ``pg_ctl stop``).
    The port is chosen once, so ``stop()`` then ``start()`` brings the server back on the SAME
    address, which is what fault tests need.
    """

    name = "server"

    def __init__(self, *, port: int | None = None, start_timeout: float = DEFAULT_START_TIMEOUT) -> None:
        self.host = LOOPBACK
        self.port = port if port is not None else free_port()
        self.start_timeout = start_timeout
        self.workdir = Path(tempfile.mkdtemp(prefix=f"rotator-{self.name}-")).resolve()
        self.log_path = self.workdir / f"{self.name}.log"
        self.started_pids: list[int] = []
        """Every PID this object spawned (for leak checks); never shrinks."""
        self.startup_seconds: float | None = None
        """Wall time of the last successful ``start()``: preparation (first start), spawn, healthy."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._prepared = False
        self._closed = False
        self.run_as: str | None = None
        """OS user to run the server as (only when we are root), set by subclasses."""

    # -- to override ----------------------------------------------------------------------------

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _healthy(self) -> bool:
        raise NotImplementedError

    def _env(self) -> Mapping[str, str]:
        """Extra environment for the child (on top of ours)."""
        return {}

    def _prepare(self) -> None:
        """One-time setup before the first start (runs inside ``start()``)."""

    def _before_stop(self) -> None:
        """Graceful, server-specific shutdown attempted before SIGTERM (best effort)."""

    def _after_start(self) -> None:
        """Hook after the server became healthy (e.g. record a daemon's own PID)."""

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the running server process, or None when stopped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Spawn the server and block until it is healthy; raise ServerError otherwise."""
        if self._closed:
            raise ServerError(f"{self.name}: closed, create a new server")
        if self.running:
            return self
        if tcp_ok(self.host, self.port, timeout=0.2):
            # Someone else answers there: our health check would be fooled by it.
            raise PortTaken(f"{self.name}: {self.host}:{self.port} is already in use")
        began = time.monotonic()  # includes one-time preparation (initdb) on the first start
        if not self._prepared:
            self._prepare()
            self._prepared = True
        self._log = self.log_path.open("ab")
        env = {**os.environ, **self._env(), SANDBOX_DIR_ENV: str(self.workdir)}
        self._proc = subprocess.Popen(
            self._argv(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
            start_new_session=True,  # own session and process group: signals reach only ours
            **self._identity(),
        )
        self.started_pids.append(self._proc.pid)
        _LIVE.add(self)
        try:
            self._wait_healthy(began + self.start_timeout)
            self._after_start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _identity(self) -> dict[str, Any]:
        """Popen arguments to drop root for the server itself (a direct setuid in the child, so
        the spawned PID IS the server's PID, with no wrapper such as runuser in between)."""
        if self.run_as is None or os.geteuid() != 0:
            return {}
        account = pwd.getpwnam(self.run_as)
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _wait_healthy(self, deadline: float) -> None:
        assert self._proc is not None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise ServerError(f"{self.name} exited with code {code} during startup\n{self.log_tail()}")
            if self._healthy():
                return
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"{self.name} not healthy on {self.host}:{self.port} after {self.start_timeout:.0f}s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop the server by its PID: graceful hook, SIGTERM, wait, SIGKILL the group, wait.

        Safe to call when already stopped. A paused server is resumed first (a stopped process
        would not act on SIGTERM until continued).
        """
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                self.resume()
                with contextlib.suppress(Exception):
                    self._before_stop()
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(proc.pid)
                proc.wait(timeout=timeout)
            # The group may still hold grandchildren (e.g. a daemon's helpers): end them too.
            self._kill_group(proc.pid)
        finally:
            self._proc = None
            _LIVE.discard(self)
            if self._log is not None:
                self._log.close()
                self._log = None

    @staticmethod
    def _kill_group(pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP the server: it keeps its state but answers nothing (clients time out).

        Returns once every thread of the process is stopped: a signal is delivered to each
        thread in its own time, and a request sent before the last one stops could still be
        answered by it."""
        if self._proc is not None and self._proc.poll() is None:
            self._signal_group(signal.SIGSTOP)
            _wait_stopped(self._proc.pid)

    def resume(self) -> None:
        """SIGCONT after ``pause()``; harmless when not paused."""
        if self._proc is not None and self._proc.poll() is None:
            self._signal_group(signal.SIGCONT)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, sig)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Context manager: ``pause()`` on entry, ``resume()`` on exit, even on error."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def restart(self) -> Self:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the work directory (logs included)."""
        try:
            self.stop()
        finally:
            self._closed = True
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} pid={self.pid}>"


def run_checked(
    argv: Sequence[str], *, what: str, timeout: float = 60.0, cwd: str | Path | None = None
) -> str:
    """Run a one-shot helper command; raise ServerError with its output if it fails."""
    result = subprocess.run(
        list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, text=True, cwd=cwd
    )
    if result.returncode != 0:
        raise ServerError(f"{what} failed with code {result.returncode}:\n{result.stdout}{result.stderr}")
    return str(result.stdout)


__all__ = [
    "DEFAULT_START_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "LOOPBACK",
    "SANDBOX_DIR_ENV",
    "LocalServer",
    "ServerError",
    "free_port",
    "http_ok",
    "pid_alive",
    "run_checked",
    "sandbox_processes",
    "tcp_ok",
    "wait_pid_gone",
]


def _wait_stopped(pid: int, timeout: float = 5.0) -> None:
    """Until every thread of ``pid`` shows the stopped state in /proc (or it is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except FileNotFoundError:
            return
        if all(_task_state(task) in ("T", "t", "gone") for task in tasks):
            return
        time.sleep(0.005)


def _task_state(task: Path) -> str:
    try:
        return (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"  # the thread exited meanwhile
