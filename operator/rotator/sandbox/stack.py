"""The embedded local stack: Kubernetes emulator + rollout simulator, OpenBao, moto, PostgreSQL.

Everything listens on 127.0.0.1 and is stopped by its owner, by PID, in reverse start order.
`rotator sandbox` and the integration tests both build on this class.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rotator.kube import Kube, load_api_client
from rotator.sandbox.kube_server import KubeServer
from rotator.sandbox.moto_server import MotoServer
from rotator.sandbox.openbao import OpenBaoServer
from rotator.sandbox.postgres import PostgresServer
from rotator.sandbox.processes import LocalServer

S = TypeVar("S", bound=LocalServer)


@dataclass
class Stack:
    workdir: Path
    pod_delay: float = 0.2
    with_aws: bool = True
    with_postgres: bool = True
    kube_server: KubeServer | None = None
    vault: OpenBaoServer | None = None
    moto: MotoServer | None = None
    postgres: PostgresServer | None = None
    startup_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def start(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        try:
            self.kube_server = KubeServer(pod_delay=self.pod_delay).start()
            self.kube_server.write_kubeconfig(self.kubeconfig)
            self.startup_seconds["kubernetes"] = self.kube_server.startup_seconds
            self.vault = self._start("vault", OpenBaoServer())
            if self.with_aws:
                self.moto = self._start("aws", MotoServer())
            if self.with_postgres:
                self.postgres = self._start("postgres", PostgresServer())
        except BaseException:
            self.stop()
            raise
        self.startup_seconds["total"] = time.monotonic() - began
        return self

    def _start(self, label: str, server: S) -> S:
        try:
            server.start()
        except BaseException:
            server.close()  # not yet ours to stop later: clean up its process and temp dir now
            raise
        self.startup_seconds[label] = server.startup_seconds or 0.0
        return server

    def kube(self) -> Kube:
        return Kube(load_api_client(str(self.kubeconfig)))

    def pids(self) -> list[int]:
        servers: list[LocalServer | None] = [self.vault, self.moto, self.postgres]
        return [pid for s in servers if s is not None for pid in s.started_pids]

    def stop(self) -> None:
        """Stop everything, each independently: one stubborn server must not keep others alive."""
        errors: list[BaseException] = []
        for server in (self.postgres, self.moto, self.vault):
            if server is not None:
                try:
                    server.close()
                except Exception as exc:
                    errors.append(exc)
        if self.kube_server is not None:
            try:
                self.kube_server.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
