"""A real PostgreSQL server for the sandbox and the tests (DESIGN §5).

Binaries come from the Debian package ``postgresql`` (``/usr/lib/postgresql/<major>/bin``) or
``PATH``. ``initdb`` refuses to run as root, so when we are root every PostgreSQL command runs as
the ``postgres`` user through ``runuser -u postgres --``, and the work directory (data dir, unix
socket dir, password file) is handed to that user.

The superuser password is generated per server and given to ``initdb --pwfile`` from a file on
disk (mode 0600), with scram-sha-256 authentication for TCP and socket connections.

The one-shot tools (``initdb``, ``pg_ctl stop``) run through ``runuser``. The postmaster itself
is spawned with a direct setuid to ``postgres`` in the child (``subprocess.Popen(user=...)``)
instead: ``runuser`` stays as a watching parent that hides the postmaster's PID and, on
SIGSTOP of its child, stops itself and keeps the child's zombie unreaped, which breaks
``pause()``/``resume()`` and turned a stop into a 10 s SIGKILL wait. So the spawned PID *is*
the postmaster PID (checked against ``postmaster.pid``). ``stop()`` runs
``pg_ctl stop -m fast``, verifies that PID is gone, then falls back to SIGTERM/SIGKILL by PID.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from rotator.sandbox.processes import LocalServer, ServerError, pid_alive, run_checked, wait_pid_gone

__all__ = ["MISSING_MESSAGE", "POSTGRES_USER", "PostgresServer", "ServerError", "find_pg_bin"]

POSTGRES_USER = "postgres"
"""Both the OS user that runs the server (as root) and the database superuser."""

MISSING_MESSAGE = (
    "PostgreSQL server binaries not found (initdb, pg_ctl, postgres): install the Debian package "
    "'postgresql' (apt-get install postgresql) or put its bin directory on PATH"
)


def find_pg_bin() -> Path:
    """Directory with ``initdb``, ``pg_ctl`` and ``postgres``: newest Debian major first, then PATH."""

    def major(path: str) -> int:
        name = Path(path).parent.parent.name
        return int(name) if name.isdigit() else 0

    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major, reverse=True):
        bindir = Path(initdb).parent
        if all((bindir / tool).is_file() for tool in ("pg_ctl", "postgres", "pg_isready")):
            return bindir
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).resolve().parent
    raise ServerError(MISSING_MESSAGE)


class PostgresServer(LocalServer):
    """PostgreSQL on 127.0.0.1:PORT with its data and socket in a private temp dir."""

    name = "postgres"

    def __init__(self, *, port: int | None = None, start_timeout: float = 60.0) -> None:
        self.bindir = find_pg_bin()  # before creating any directory: fail clean when missing
        super().__init__(port=port, start_timeout=start_timeout)
        self.user = POSTGRES_USER
        self.password = secrets.token_urlsafe(18)
        """Superuser password (sandbox only; never logged)."""
        self.datadir = self.workdir / "data"
        self.socketdir = self.workdir / "sock"
        self.pwfile = self.workdir / "pwfile"
        self.postmaster_pid: int | None = None
        self._as_root = os.geteuid() == 0
        self.run_as = POSTGRES_USER if self._as_root else None

    @property
    def dsn(self) -> str:
        """libpq URI for the superuser over TCP, e.g. for ``psycopg.connect(dsn)``."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/postgres"

    def _as_pg(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", POSTGRES_USER, "--", *argv] if self._as_root else argv

    def _prepare(self) -> None:
        self.socketdir.mkdir()
        self.pwfile.write_text(self.password + "\n")
        self.pwfile.chmod(0o600)
        if self._as_root:
            try:
                account = pwd.getpwnam(POSTGRES_USER)
            except KeyError:
                raise ServerError(
                    f"running as root needs the '{POSTGRES_USER}' OS user (created by the Debian package "
                    "'postgresql')"
                ) from None
            for path in (self.workdir, self.socketdir, self.pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
        run_checked(
            self._as_pg(
                [
                    str(self.bindir / "initdb"),
                    "--pgdata",
                    str(self.datadir),
                    "--username",
                    POSTGRES_USER,
                    f"--pwfile={self.pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",  # throwaway cluster: skip fsync, saves seconds
                    "--no-instructions",
                ]
            ),
            what="initdb",
            cwd=self.workdir,
        )

    def _argv(self) -> list[str]:
        return [
            str(self.bindir / "postgres"),
            "-D",
            str(self.datadir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            str(self.socketdir),
            # Throwaway cluster: durability off for speed.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]

    def _healthy(self) -> bool:
        result = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "1"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=5,
        )
        return result.returncode == 0

    def _after_start(self) -> None:
        recorded = self._read_postmaster_pid()
        if recorded != self.pid:
            raise ServerError(f"postmaster.pid says {recorded}, we spawned {self.pid}: another server?")
        self.postmaster_pid = recorded

    def _read_postmaster_pid(self) -> int | None:
        try:
            first = (self.datadir / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first) if first.strip().isdigit() else None

    def _before_stop(self) -> None:
        pid = self.postmaster_pid or self._read_postmaster_pid()
        if pid is None or not pid_alive(pid):
            return
        # On failure, fall through to signals by PID below.
        with contextlib.suppress(ServerError, subprocess.TimeoutExpired):
            run_checked(
                self._as_pg(
                    [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast", "-w"]
                ),
                what="pg_ctl stop",
                timeout=30,
                cwd=self.workdir,
            )
        if not wait_pid_gone(pid, timeout=10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_pid_gone(pid, timeout=5)

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        pid = self.postmaster_pid
        if pid is not None and pid_alive(pid):
            raise ServerError(f"postmaster PID {pid} still alive after stop")
        self.postmaster_pid = None

    def __repr__(self) -> str:
        return f"<PostgresServer {self.host}:{self.port} pid={self.pid} postmaster={self.postmaster_pid}>"
