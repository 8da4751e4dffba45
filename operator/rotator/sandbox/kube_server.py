"""Run the Kubernetes emulator and the rollout simulator on 127.0.0.1 in a background thread.

The emulator is asyncio code; tests, the ``kubernetes`` client, kubectl and Kopf are mostly
synchronous or run their own loops. So the server owns a thread with its own event loop, and
everything that touches the emulator's state from outside goes through :meth:`KubeServer.call`,
which runs a function inside that loop: the store's single-threaded invariants then hold.

Standalone: ``python -m rotator.sandbox.kube_server --port N --kubeconfig PATH`` serves until
SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp.web
import yaml

from rotator.sandbox.kube_emulator import (
    DEFAULT_BOOKMARK_INTERVAL,
    DEFAULT_HISTORY_LIMIT,
    Fault,
    KubeEmulator,
    TokenIdentity,
)
from rotator.sandbox.kube_store import JSON, KubeStore
from rotator.sandbox.pod_start import PodInfo
from rotator.sandbox.rollout import DEFAULT_POD_DELAY, RolloutSimulator

T = TypeVar("T")
logger = logging.getLogger(__name__)

ADMIN_TOKEN = "rotator-sandbox-admin"
"""The bearer token written into kubeconfigs; the emulator does not enforce authentication, but
registering it makes TokenReviews of the admin identity answer as a real cluster would."""

_START_TIMEOUT = 10.0


class KubeServer:
    """The emulator plus rollout simulator, served over HTTP from a private thread.

    ``port=0`` picks a free port; ``pod_delay`` is the seconds each pod takes to become ready
    (0.2 s by default: visible in demos, short in tests, which pass smaller values).
    ``bookmark_interval`` is the seconds between BOOKMARK events on watches that allow them.
    Usable as a context manager; :meth:`stop` is idempotent.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pod_delay: float = DEFAULT_POD_DELAY,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        daemonset_nodes: int = 2,
        bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._pod_delay = pod_delay
        self._history_limit = history_limit
        self._daemonset_nodes = daemonset_nodes
        self._bookmark_interval = bookmark_interval
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._emulator: KubeEmulator | None = None
        self._simulator: RolloutSimulator | None = None
        self.port = 0
        self.startup_seconds = 0.0

    # ----------------------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """The API server URL (``http://127.0.0.1:PORT``)."""
        if not self.port:
            raise RuntimeError("the server is not running")
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start serving; returns once the port is listening (or raises the startup error)."""
        if self._thread is not None:
            raise RuntimeError("the server was already started")
        started = time.monotonic()
        self._thread = threading.Thread(target=self._thread_main, name="kube-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError("the Kubernetes emulator did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError("the Kubernetes emulator failed to start") from self._error
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Close watches, stop the simulator and the HTTP server, and join the thread."""
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        thread, self._thread = self._thread, None
        thread.join(timeout=30)
        if thread.is_alive():
            raise RuntimeError("the Kubernetes emulator thread did not stop within 30 s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # kept for start() to raise in the caller's thread
            self._error = exc
            if self._ready.is_set():
                logger.exception("the Kubernetes emulator crashed")
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        emulator = KubeEmulator(
            history_limit=self._history_limit, bookmark_interval=self._bookmark_interval, store=KubeStore()
        )
        emulator.register_token(ADMIN_TOKEN, TokenIdentity("sandbox-admin", groups=("system:masters",)))
        simulator = RolloutSimulator(
            emulator.store, pod_delay=self._pod_delay, daemonset_nodes=self._daemonset_nodes
        )
        async with emulator:
            server = aiohttp.web.Server(emulator, handler_cancellation=True, access_log=None)
            runner = aiohttp.web.ServerRunner(server, shutdown_timeout=1.0)
            await runner.setup()
            site = aiohttp.web.TCPSite(runner, self.host, self._requested_port, reuse_address=True)
            await site.start()
            try:
                self.port = int(runner.addresses[0][1])
                self._emulator, self._simulator = emulator, simulator
                simulator.start()
                self._ready.set()
                await self._stopping.wait()
            finally:
                emulator.store.close_watches()
                await simulator.stop()
                await runner.cleanup()
                self.port = 0

    # ------------------------------------------------------------------- thread-safe access

    def call(self, fn: Callable[[KubeEmulator], T]) -> T:
        """Run ``fn(emulator)`` inside the server's loop and return its result (thread-safe)."""
        return self.run(lambda emulator: _as_coroutine(fn, emulator))

    def run(self, fn: Callable[[KubeEmulator], Awaitable[T]]) -> T:
        """Run the coroutine ``fn(emulator)`` inside the server's loop and wait for its result."""
        if self._loop is None or self._emulator is None:
            raise RuntimeError("the server is not running")
        emulator = self._emulator

        async def _runner() -> T:
            return await fn(emulator)

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(_runner(), self._loop)
        return future.result(timeout=30)

    @property
    def emulator(self) -> KubeEmulator:
        """The emulator object; only touch its state via :meth:`call` from other threads."""
        if self._emulator is None:
            raise RuntimeError("the server is not running")
        return self._emulator

    @property
    def simulator(self) -> RolloutSimulator:
        """The rollout simulator; only touch it via :meth:`call` from other threads."""
        if self._simulator is None:
            raise RuntimeError("the server is not running")
        return self._simulator

    def add_fault(self, fault: Fault) -> None:
        """Make matching requests fail (see :class:`Fault`)."""
        self.call(lambda emulator: emulator.faults.append(fault))

    def compact(self) -> int:
        """Expire the watch history (etcd compaction): resuming from an older resourceVersion
        gets the in-stream 410 ``Expired`` event. Returns the oldest resourceVersion still valid."""
        return self.call(lambda emulator: emulator.store.compact())

    def drop_watches(self) -> int:
        """End every open watch stream (clients reconnect from their last resourceVersion)."""
        return self.call(lambda emulator: emulator.store.drop_watches())

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self.call(lambda emulator: emulator.faults.clear())

    def register_token(
        self, token: str, username: str, groups: tuple[str, ...] = ("system:authenticated",)
    ) -> None:
        """Make TokenReviews of ``token`` authenticate as ``username``."""
        identity = TokenIdentity(username, groups=groups)
        self.call(lambda emulator: emulator.register_token(token, identity))

    def set_fail_readiness(self, kind: str, namespace: str, name: str, fail: bool = True) -> None:
        """Make new pods of a workload never become ready (or heal them again)."""
        self.call(lambda _: self.simulator.set_fail_readiness(kind, namespace, name, fail))

    def workload_pods(self, kind: str, namespace: str, name: str) -> list[PodInfo]:
        """The pods of a workload with the Secret versions each started with."""
        return self.call(lambda _: self.simulator.workload_pods(kind, namespace, name))

    def get_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> JSON | None:
        """Read an object straight from the store (None when absent)."""

        def _get(emulator: KubeEmulator) -> JSON | None:
            rt = emulator.store.type_for_kind(api_version, kind)
            return emulator.store.find(rt, namespace, name)

        return self.call(_get)

    # ----------------------------------------------------------------------------- clients

    def kubeconfig(self, namespace: str = "default") -> JSON:
        """A kubeconfig dict pointing at this server with the admin token."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "rotator-sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox-admin", "user": {"token": ADMIN_TOKEN}}],
            "contexts": [
                {
                    "name": "rotator-sandbox",
                    "context": {
                        "cluster": "rotator-sandbox",
                        "user": "sandbox-admin",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": "rotator-sandbox",
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """Write :meth:`kubeconfig` to ``path`` (mode 0600, as kubectl expects) and return it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig(namespace), sort_keys=False))
        target.chmod(0o600)
        return target


async def _as_coroutine(fn: Callable[[KubeEmulator], T], emulator: KubeEmulator) -> T:
    return fn(emulator)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT: ``python -m rotator.sandbox.kube_server --port N``."""
    parser = argparse.ArgumentParser(description="Kubernetes API emulator with a rollout simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, default=None)
    parser.add_argument("--pod-delay", type=float, default=DEFAULT_POD_DELAY)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with KubeServer(host=args.host, port=args.port, pod_delay=args.pod_delay) as server:
        if args.kubeconfig is not None:
            server.write_kubeconfig(args.kubeconfig)
        print(f"kube emulator listening on {server.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
