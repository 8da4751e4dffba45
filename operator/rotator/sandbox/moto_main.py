"""Launcher for moto in server mode with the stack's corrections applied (DESIGN §5).

Run as ``python -m rotator.sandbox.moto_main --port N [--host 127.0.0.1]``.

moto 5.2.5 defect corrected here: ``UpdateSecretVersionStage`` moves the ``AWSCURRENT`` label but
leaves the secret's internal ``default_version_id`` on the old version, so ``GetSecretValue``
without ``VersionId``/``VersionStage`` (what every AWS SDK consumer does) keeps returning the old
value, and a later ``PutSecretValue`` labels the wrong version ``AWSPREVIOUS``. Real Secrets
Manager resolves the default to ``AWSCURRENT``. We patch the backend class before serving:

- ``get_secret_value`` with neither ``VersionId`` nor ``VersionStage`` looks up ``AWSCURRENT``;
- ``update_secret_version_stage`` re-points ``default_version_id`` when ``AWSCURRENT`` moves;
- ``create_secret`` is atomic by name, as in AWS: moto checks "exists?" and then adds, and its
  server is threaded, so two creates timed to collide (tests/integration/test_store_race.py) could
  both succeed. One lock per backend class serialises them.
"""

from __future__ import annotations

import argparse
import functools
import threading
from typing import Any

PATCH_MARKER = "_rotator_patched"


def apply_moto_fixes() -> None:
    """Patch moto's SecretsManagerBackend in this process (idempotent)."""
    from moto.secretsmanager.models import SecretsManagerBackend

    if getattr(SecretsManagerBackend, PATCH_MARKER, False):
        return

    original_get = SecretsManagerBackend.get_secret_value
    original_stage = SecretsManagerBackend.update_secret_version_stage
    original_create = SecretsManagerBackend.create_secret
    create_lock = threading.Lock()

    @functools.wraps(original_create)
    def create_secret(self: Any, *args: Any, **kwargs: Any) -> Any:
        with create_lock:
            return original_create(self, *args, **kwargs)

    @functools.wraps(original_get)
    def get_secret_value(self: Any, secret_id: str, version_id: str, version_stage: str) -> Any:
        if not version_id and not version_stage:
            version_stage = "AWSCURRENT"
        return original_get(self, secret_id, version_id, version_stage)

    @functools.wraps(original_stage)
    def update_secret_version_stage(
        self: Any,
        secret_id: str,
        version_stage: str,
        remove_from_version_id: str,
        move_to_version_id: str,
    ) -> Any:
        result = original_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            secret = self.secrets[secret_id]
            setter = getattr(secret, "set_default_version_id", None)  # replicas delegate to source
            if setter is not None:
                setter(move_to_version_id)
        return result

    SecretsManagerBackend.create_secret = create_secret  # type: ignore[method-assign]
    SecretsManagerBackend.get_secret_value = get_secret_value  # type: ignore[method-assign]
    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]
    setattr(SecretsManagerBackend, PATCH_MARKER, True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rotator.sandbox.moto_main")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--no-fixes", action="store_true", help="serve stock moto (to demonstrate the defect)"
    )
    args = parser.parse_args(argv)
    if not args.no_fixes:
        apply_moto_fixes()
    from moto import server

    # moto's own entry point: SIGTERM/SIGINT exit cleanly, werkzeug threaded server.
    server.main(["--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    main()
