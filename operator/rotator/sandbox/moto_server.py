"""moto in server mode as a subprocess: the AWS endpoint of the sandbox (DESIGN §5).

Runs through our launcher ``rotator.sandbox.moto_main``, which corrects moto 5.2.5's
``GetSecretValue`` default after ``UpdateSecretVersionStage``. Never call ``RotateSecret`` against
it (needs Lambda; corrupts ``AWSCURRENT`` in moto). State is in memory: ``stop()``/``start()``
comes back empty, ``pause()``/``resume()`` keeps it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from rotator.sandbox.processes import LocalServer, http_ok

DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"  # moto accepts any credentials
DEFAULT_REGION = "us-east-1"


class MotoServer(LocalServer):
    """moto server on 127.0.0.1:PORT (``fixes=False`` serves stock moto, for the defect test)."""

    name = "moto"

    def __init__(self, *, port: int | None = None, start_timeout: float = 30.0, fixes: bool = True) -> None:
        super().__init__(port=port, start_timeout=start_timeout)
        self.fixes = fixes

    @property
    def endpoint_url(self) -> str:
        """``endpoint_url`` for boto3 clients."""
        return f"http://{self.host}:{self.port}"

    def client_kwargs(self, region: str = DEFAULT_REGION) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(service, **kwargs)`` against this server."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": region,
            "aws_access_key_id": DUMMY_ACCESS_KEY_ID,
            "aws_secret_access_key": DUMMY_SECRET_ACCESS_KEY,
        }

    def _argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "rotator.sandbox.moto_main",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        if not self.fixes:
            argv.append("--no-fixes")
        return argv

    def _env(self) -> Mapping[str, str]:
        return {"MOTO_PORT": str(self.port), "PYTHONUNBUFFERED": "1"}

    def _healthy(self) -> bool:
        # moto's own management API answers once the WSGI app serves requests.
        return http_ok(f"{self.endpoint_url}/moto-api/data.json", timeout=0.5)

    def __repr__(self) -> str:
        return f"<MotoServer {self.endpoint_url} pid={self.pid}>"
