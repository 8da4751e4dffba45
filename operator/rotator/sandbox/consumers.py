"""Consumers that really log in: the sandbox's pods of a workload annotated
``sandbox.rotator.dev/postgres-login: "<host>:<port>/<database>"`` authenticate against that
PostgreSQL server, over and over, with the username and password their Secret held when the pod
started (as a real application reads its environment once).

A pod becomes ready only once its first login succeeded (the rollout simulator asks
:meth:`PodLogins.first_login`); a pod handed a credential the database refuses never becomes
ready, so its rollout stalls and fails at the progress deadline, as on a real cluster. Every
pod counts its attempts and refusals: the sandbox timeline and the tests read them to prove that
no consumer was ever refused while rotator rotated its role.

One thread per pod (a handful in the sandbox): a login is a blocking SCRAM exchange that must
not stall the emulator's event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import psycopg
from psycopg.conninfo import make_conninfo

LOGIN_ANNOTATION: Final = "sandbox.rotator.dev/postgres-login"
"""On a workload's pod template: ``host:port/database`` its pods log in to."""
LOGIN_SECRET_ANNOTATION: Final = "sandbox.rotator.dev/login-secret"
"""Optional: which consumed Secret holds ``username``/``password`` (default: the first one)."""
LOGIN_INTERVAL: Final = 0.1


def login_target(annotation: str) -> tuple[str, int, str] | None:
    """``host:port/database`` -> its parts, or None when malformed."""
    address, _, database = annotation.partition("/")
    host, _, port = address.rpartition(":")
    if not (host and port.isdigit() and database):
        return None
    return host, int(port), database


@dataclass
class _Pod:
    conninfo: str
    on_first: Callable[[], None]
    attempts: int = 0
    failures: int = 0
    #: Logins that got no answer about the credential (timeouts): not counted as attempts.
    errors: int = 0
    first_ok: bool | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class PodLogins:
    def __init__(self, interval: float = LOGIN_INTERVAL) -> None:
        self._interval = interval
        self._pods: dict[str, _Pod] = {}
        self._lock = threading.Lock()

    def start_pod(
        self,
        pod: str,
        target: tuple[str, int, str],
        username: str,
        password: str,
        on_first: Callable[[], None],
    ) -> None:
        host, port, database = target
        conninfo = make_conninfo(
            host=host, port=str(port), dbname=database, user=username, password=password, connect_timeout=3
        )
        state = _Pod(conninfo, on_first)
        state.thread = threading.Thread(target=self._run, args=(state,), name=f"login-{pod}", daemon=True)
        with self._lock:
            self._pods[pod] = state
        state.thread.start()

    def stop_pod(self, pod: str) -> None:
        with self._lock:
            state = self._pods.pop(pod, None)
        if state is not None:
            state.stop.set()

    def first_login(self, pod: str) -> bool | None:
        """True/False once the pod's first login answered; None before (or for a pod that does
        not log in: check :meth:`logs_in`)."""
        with self._lock:
            state = self._pods.get(pod)
        return state.first_ok if state is not None else None

    def logs_in(self, pod: str) -> bool:
        with self._lock:
            return pod in self._pods

    def counts(self, pod: str) -> tuple[int, int]:
        """(attempts, refused) so far."""
        with self._lock:
            state = self._pods.get(pod)
        return (state.attempts, state.failures) if state is not None else (0, 0)

    def close(self) -> None:
        with self._lock:
            pods, self._pods = list(self._pods.values()), {}
        for state in pods:
            state.stop.set()
        for state in pods:
            if state.thread is not None:
                state.thread.join(timeout=5)

    def _run(self, state: _Pod) -> None:
        while not state.stop.is_set():
            answer = _login(state.conninfo)
            if state.stop.is_set():
                # Deleted while this login was in flight: a kubelet would have killed the
                # container; the answer is nobody's any more (the old role may be locked by now).
                break
            if answer is None:
                # No answer about the credential (a timeout on a loaded machine, a full server):
                # not a refusal, and no verdict for readiness either; the pod tries again.
                state.errors += 1
            else:
                state.attempts += 1
                if not answer:
                    state.failures += 1
                if state.first_ok is None:
                    state.first_ok = answer
                    state.on_first()
            state.stop.wait(self._interval)


#: What PostgreSQL says when it refuses the role or its credential (libpq puts the server's FATAL
#: into the message; a connection failure carries no SQLSTATE): a wrong password, a role locked
#: (NOLOGIN), dropped, held at its CONNECTION LIMIT, or without CONNECT on the database. A server
#: that is merely full ("too many clients already") or slow is not among them.
_REFUSALS: Final = (
    "password authentication failed",
    "is not permitted to log in",
    "does not exist",
    "too many connections for role",
    "permission denied for database",
)


def _login(conninfo: str) -> bool | None:
    """True: logged in; False: the credential was refused; None: no answer about it."""
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return False if any(refusal in str(exc) for refusal in _REFUSALS) else None
    return True
