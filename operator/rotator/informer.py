"""List, then watch, one collection, and hand every change to a callback: client-go's informer,
reduced to what the policy loops need.

Kopf delivered each RotationPolicy watch event through its per-object machinery (causes,
handler kwargs, loggers, a worker task per object): ~0.8 ms of the event loop's CPU per event,
three or four events a rotation (our own status writes coming back), a sixth of the operator's
CPU in a mass rotation (issue 11). The policy loops only need "this object, as it is now" and
"it is gone". This runs on a thread of its own, with the operator's client
(:meth:`rotator.kube.Kube.watch`), and calls ``deliver(type, object)`` for each change:

- a LIST (in pages) first: ``ADDED`` for every object not delivered before (``MODIFIED`` for
  one changed since), ``DELETED`` (its name, namespace and last resourceVersion) for one gone;
- then a WATCH from the list's resourceVersion, resumed from the last one seen (BOOKMARKs keep
  it current) when the server ends the stream (every ``watch_seconds``) or the connection
  breaks; a resourceVersion the server no longer has (410 Expired, kube's compaction) makes it
  LIST again;
- a failure (the API server unreachable, RBAC refusing the list) is logged once per streak and
  retried with a growing delay, never ends the thread.

I/O and threads only; what a change means is the callback's.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from rotator.http1 import Stream
from rotator.kube import JsonObject, Kube, KubeError

log = logging.getLogger("rotator.informer")

Deliver = Callable[[str, JsonObject], None]
"""(event type: ADDED, MODIFIED or DELETED; the object) -> None. Called on the informer's thread."""

BACKOFF: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds before the next try after failures in a row (the last one repeats)."""

PAGE_SIZE: Final = 500
WATCH_SECONDS: Final = 300
"""How long the server keeps one watch open (``timeoutSeconds``), as Kopf's were."""
READ_TIMEOUT: Final = 330.0
"""A watch silent this long (not even a BOOKMARK) is taken as broken."""


class Expired(Exception):
    """The resourceVersion to resume from is no longer in the server's history."""


class Informer:
    """One collection (``path``: ``/apis/<group>/<version>[/namespaces/<ns>]/<plural>``), all of
    it or the objects ``label_selector`` selects (the server filters: a label removed is a
    DELETED, as kube-apiserver reports it)."""

    def __init__(
        self,
        kube: Kube,
        path: str,
        deliver: Deliver,
        *,
        name: str,
        label_selector: str | None = None,
        page_size: int = PAGE_SIZE,
        watch_seconds: int = WATCH_SECONDS,
        read_timeout: float = READ_TIMEOUT,
        backoff: Sequence[float] = BACKOFF,
        on_health: Callable[[str, bool], None] | None = None,
    ) -> None:
        self._kube = kube
        self._path = path
        self._deliver = deliver
        self.name = name
        self._selector = {"labelSelector": label_selector} if label_selector else {}
        self._page_size = page_size
        self._watch_seconds = watch_seconds
        self._read_timeout = read_timeout
        self._backoff = backoff
        self._stopping = threading.Event()
        #: Told ``(name, True)`` once a list or a watch succeeded, ``(name, False)`` at the first
        #: failure of a streak: on each change only (``rotator_watch_healthy``).
        self._on_health = on_health
        self._healthy: bool | None = None
        #: This informer's watch while it is read: what ``stop`` closes (never another's).
        self._streams: set[Stream] = set()
        #: (namespace, name) -> the resourceVersion last delivered: what a re-list compares
        #: against (not the object: the callback owns what it was given).
        self._known: dict[tuple[str, str], str] = {}
        self._thread: threading.Thread | None = None
        #: Set once the first LIST has been delivered.
        self.synced = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"rotator-informer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and wait for the thread: a watch being read is ended at once."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        while True:
            # Again until the thread ends: it may have opened a new watch meanwhile.
            for stream in list(self._streams):
                stream.close()  # its reader sees KubeUnavailable
            if self._thread is None or not self._thread.is_alive() or time.monotonic() >= deadline:
                return
            self._thread.join(0.05)

    def run(self) -> None:
        resource_version: str | None = None
        failures = 0
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist()
                    self.synced.set()
                    self._health(True)
                resource_version = self._watch(resource_version)
                failures = 0
            except Expired:
                resource_version = None  # the history moved on: list again, at once
            except Exception as exc:
                if self._stopping.is_set():
                    return
                delay = self._backoff[min(failures, len(self._backoff) - 1)]
                if failures == 0:
                    log.warning(
                        "watching %s failed (%s); retrying in %.1fs", self.name, _describe(exc), delay
                    )
                    self._health(False)
                failures += 1
                self._stopping.wait(delay)

    def _relist(self) -> str:
        listed: dict[tuple[str, str], JsonObject] = {}
        query: dict[str, str] = {**self._selector, "limit": str(self._page_size)}
        while True:
            page = self._kube.request("GET", self._path, query=query)
            for item in page.get("items") or []:
                if isinstance(item, dict):
                    listed[_key(item)] = item
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                resource_version = str(meta.get("resourceVersion") or "")
                break
            query = {**self._selector, "limit": str(self._page_size), "continue": str(token)}
        for key in [key for key in self._known if key not in listed]:
            namespace, name = key
            gone = {"metadata": {"name": name, **({"namespace": namespace} if namespace else {})}}
            self._send(
                "DELETED", {**gone, "metadata": {**gone["metadata"], "resourceVersion": self._known.pop(key)}}
            )
        for key, item in listed.items():
            before = self._known.get(key)
            if before is None or before != _version(item):
                self._known[key] = _version(item)
                self._send("ADDED" if before is None else "MODIFIED", item)
        return resource_version

    def _watch(self, resource_version: str) -> str:
        """Read one watch to its end; returns the resourceVersion to resume from."""
        query = {
            **self._selector,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self._watch_seconds),
        }
        try:
            events = self._kube.watch(
                self._path,
                query,
                self._read_timeout,
                streams=self._streams,
                on_open=lambda: self._health(True),
            )
            first = next(events, None)
        except KubeError as exc:
            if exc.status == 410:  # an HTTP 410 rather than kube's ERROR event: the same news
                raise Expired() from None
            raise
        if first is None:
            return resource_version
        for event in itertools.chain([first], events):
            kind = str(event.get("type") or "")
            obj = event.get("object")
            if not isinstance(obj, dict):
                continue
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Expired()
                raise KubeError(int(obj.get("code") or 0), str(obj.get("reason") or "WatchError"))
            resource_version = _version(obj) or resource_version
            if kind == "BOOKMARK":
                continue
            key = _key(obj)
            if kind == "DELETED":
                self._known.pop(key, None)
            elif kind in ("ADDED", "MODIFIED"):
                self._known[key] = resource_version
            else:
                continue
            self._send(kind, obj)
            if self._stopping.is_set():
                break
        return resource_version

    def _health(self, healthy: bool) -> None:
        if healthy != self._healthy:
            self._healthy = healthy
            if self._on_health is not None:
                self._on_health(self.name, healthy)

    def _send(self, kind: str, obj: JsonObject) -> None:
        try:
            self._deliver(kind, obj)
        except Exception:
            log.exception("delivering a %s event of %s failed", kind, self.name)


def _key(obj: JsonObject) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _version(obj: JsonObject) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, KubeError) else type(exc).__name__
