"""Opens a resolved store, logged in as the policy's namespace; sessions reused across reconciles.

Clients are cached because building them per reconcile would mean a TLS handshake and a login
on every tick. Every identity is the namespace's (DESIGN §6): Vault Kubernetes auth and AWS web
identity log in with a token minted for a service account *of the policy's namespace*
(``rotator.tenancy.identity``, which never mints one for an audience the API server accepts);
static credentials are read from a Secret the store's admin named, and only when that Secret is
labelled ``rotator.dev/store-credential=true``. A session is renewed shortly before it expires, or
at once after the store refused it (``auth_failed``).

A credential Secret read is reused for ``credential_ttl`` seconds (the operator passes its safety
resync, 10 minutes): a rotation opens the store at every step and the store loop re-checks its
health every minute, and neither re-reads the Secret. The watches cannot cover it (the Secrets
watch is label-selected on ``app.kubernetes.io/managed-by=rotator``, and a selector cannot OR a
second label), so a changed credential is noticed at the latest after ``credential_ttl``, and at
once where it matters: a store that refuses the credential (``auth_failed``, a failed health
check) drops every cached credential Secret, and the next open reads them again.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from rotator.kube import Kube
from rotator.metrics import Metrics
from rotator.models import CredentialSecretUnusable, PermanentError, PolicyRef, reasons, utcnow
from rotator.models.keys import STORE_CREDENTIAL_LABEL
from rotator.models.store import (
    NAMESPACE_PLACEHOLDER,
    AwsConnection,
    AwsWebIdentityAuth,
    VaultConnection,
    VaultKubernetesAuth,
)
from rotator.stores.aws.session_cache import SMCache
from rotator.stores.base import Store
from rotator.stores.errors import StoreAuthError
from rotator.stores.health import Health, IdentityLogin, check_aws, check_vault
from rotator.stores.vault.auth import token_from_secret, vault_kubernetes_login
from rotator.stores.vault.client import connect
from rotator.stores.vault.kv2 import KV2Cache, VaultKV2Store
from rotator.stores.vault.tls import CA_BUNDLE_FIELD, check_ca_file
from rotator.tenancy.identity import ApiAudiences, MintedToken, check_audiences, mint_token
from rotator.tenancy.resolve import ResolvedStore

if TYPE_CHECKING:  # botocore loads with the AWS modules: only where an AWS store is used
    from rotator.stores.aws.auth import AwsSession

# Log in again when less than this share of a session's lifetime is left.
RENEW_FRACTION: Final = 0.2


@dataclass
class _Session:
    client: Any
    expires_at: float  # monotonic seconds; inf for credentials that do not expire
    kv2: KV2Cache = field(default_factory=KV2Cache)
    """What this Vault session's stores learned: one reconcile's store object hands it to the
    next, so a rotation reads each path's metadata and tags once, not per step, and never reads
    back the value it staged a moment ago (``KV2Cache.handover``, gone after the sync step)."""
    sm: SMCache = field(default_factory=SMCache)
    """The same for an AWS session (``SMCache.handover``)."""


@dataclass
class StoreOpener:
    kube: Kube
    metrics: Metrics
    vault_timeout: float = 5.0
    aws_timeout: float = 5.0
    clock: Callable[[], float] = time.monotonic
    credential_ttl: float = 600.0
    #: The Kubernetes API server's audiences: no token is ever minted for one of them.
    api_audiences: ApiAudiences = field(default_factory=ApiAudiences)
    # Keys hold digests, never raw tokens or keys; repr=False keeps clients out of any repr.
    _sessions: dict[tuple[str, ...], _Session] = field(default_factory=dict, repr=False)
    _policy_keys: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _credentials: dict[tuple[str, str], tuple[float, Mapping[str, Any] | None]] = field(
        default_factory=dict, repr=False
    )
    # Made on the first store with a caBundle, removed with the opener (or at exit): one per
    # process in production, but a test builds thousands of openers.
    _ca_dir: Path | None = field(default=None, repr=False)

    def __call__(self, policy: PolicyRef, resolved: ResolvedStore) -> Store:
        if resolved.spec.vault is not None:
            session = self._vault_session(policy, resolved, resolved.spec.vault)
            return VaultKV2Store(
                session.client,
                resolved.spec.vault.kv_mount,
                resolved.path,
                on_request=self._count("vault"),
                cache=session.kv2,
            )
        aws = resolved.spec.aws_secrets_manager
        assert aws is not None, "the store models guarantee exactly one backend"
        opened = self._aws_session(policy, resolved, aws)
        from rotator.stores.aws.secrets_manager import AwsSecretsManagerStore

        return AwsSecretsManagerStore(
            opened.client.client("secretsmanager"),
            resolved.path,
            on_request=self._count("aws"),
            cache=opened.sm,
        )

    def aws_session(self, policy: PolicyRef, resolved: ResolvedStore) -> AwsSession | None:
        """The AWS identity the policy's store logs in as (the namespace's), for a target that
        acts in AWS with it (``awsIamAccessKey``); None when the store is not on AWS."""
        aws = resolved.spec.aws_secrets_manager
        if aws is None:
            return None
        session: AwsSession = self._aws_session(policy, resolved, aws).client
        return session

    def vault_session(self, policy: PolicyRef, resolved: ResolvedStore) -> Any | None:
        """The Vault client this policy's store logs in with (cached, the namespace's identity),
        shared with a ``vaultDatabase`` target so it never acts as anyone else; None when the
        store is not Vault."""
        vault = resolved.spec.vault
        return self._vault_session(policy, resolved, vault).client if vault is not None else None

    def health(self, resolved: ResolvedStore) -> Health:
        """The store's Ready: it answers and accepts its credential — the static one, or for a
        namespaced store the real login of its own namespace's service account; a cluster store's
        per-namespace logins are proven by each namespace's policies (``rotator.stores.health``)."""
        vault, aws = resolved.spec.vault, resolved.spec.aws_secrets_manager
        if vault is not None:
            token, login = None, None
            ref, kubernetes = vault.auth.token_secret_ref, vault.auth.kubernetes
            if ref is not None:
                where, secret = self._static_secret(
                    resolved, ref.name, ref.namespace, "vault.auth.tokenSecretRef"
                )
                token = token_from_secret(where, secret, ref.key)
            else:
                assert kubernetes is not None, "the store models guarantee exactly one auth method"
                login = self._own_login(
                    resolved, kubernetes.role, kubernetes, "vault.auth.kubernetes", kubernetes.mount_path
                )
            ca_file = self._ca_file(resolved, vault.ca_bundle)
            return self._judged(check_vault(vault, token, self.vault_timeout, ca_file, login))
        assert aws is not None
        keys, login = None, None
        key_ref, web = aws.auth.access_key_secret_ref, aws.auth.web_identity
        if key_ref is not None:
            from rotator.stores.aws.auth import access_key_from_secret

            field_name = "awsSecretsManager.auth.accessKeySecretRef"
            where, secret = self._static_secret(resolved, key_ref.name, key_ref.namespace, field_name)
            keys = (
                access_key_from_secret(where, secret, key_ref.access_key_id_key),
                access_key_from_secret(where, secret, key_ref.secret_access_key_key),
            )
        else:
            assert web is not None, "the store models guarantee exactly one auth method"
            login = self._own_login(resolved, web.role_arn, web, "awsSecretsManager.auth.webIdentity")
        return self._judged(check_aws(aws, keys, self.aws_timeout, login))

    def _own_login(
        self,
        resolved: ResolvedStore,
        role: str,
        identity: VaultKubernetesAuth | AwsWebIdentityAuth,
        field_name: str,
        mount_path: str = "",
    ) -> IdentityLogin | None:
        """A namespaced store's login as its namespace's service account; None for a cluster store
        (no namespace is its own). Either way audiences the API server accepts are refused first,
        before the store's address is contacted (a namespaced store's with what the API server
        says, a cluster store's with what is known so far)."""
        where = f"{resolved.ref} spec.{field_name}"
        check_audiences(identity.audiences, self.api_audiences.known(), f"{where}.audiences")
        if resolved.store_namespace is None:
            return None
        namespace = resolved.namespace
        accepted = self.api_audiences.learn(self.kube, namespace, identity.service_account)
        check_audiences(identity.audiences, accepted, f"{where}.audiences")

        def token() -> str:
            return self._mint(resolved, identity, field_name).token

        return IdentityLogin(
            role.replace(NAMESPACE_PLACEHOLDER, namespace),
            namespace,
            identity.service_account,
            where,
            token,
            mount_path,
        )

    def _mint(
        self, resolved: ResolvedStore, identity: VaultKubernetesAuth | AwsWebIdentityAuth, field_name: str
    ) -> MintedToken:
        """A token for the policy's (or namespaced store's) namespace, never for an API audience."""
        return mint_token(
            self.kube,
            resolved.namespace,
            identity.service_account,
            identity.audiences,
            api_audiences=self.api_audiences,
            where=f"{resolved.ref} spec.{field_name}.audiences",
        )

    def _judged(self, health: Health) -> Health:
        if health.reason == reasons.STORE_AUTH_FAILED:
            self._forget_credentials()  # the next look reads the Secret again: it may have changed
        return health

    def auth_failed(self, policy: PolicyRef) -> None:
        """Drop the session this policy used (only that one: others' sessions are fine)."""
        with self._lock:
            key = self._policy_keys.pop(policy.owner, None)
            if key is not None and key not in self._policy_keys.values():
                self._sessions.pop(key, None)
        self._forget_credentials()

    def _forget_credentials(self) -> None:
        with self._lock:
            self._credentials.clear()

    # --- plumbing ----------------------------------------------------------------------------
    def _cached(self, policy: PolicyRef, key: tuple[str, ...]) -> _Session | None:
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and self.clock() < session.expires_at:
                self._use(policy, key)
                return session
        return None

    def _remember(self, policy: PolicyRef, key: tuple[str, ...], client: Any, expires_at: float) -> _Session:
        with self._lock:
            session = self._sessions[key] = _Session(client, expires_at)
            self._use(policy, key)
        return session

    def _use(self, policy: PolicyRef, key: tuple[str, ...]) -> None:
        """Record the policy's session; a session no policy uses any more (rotated token) goes."""
        previous = self._policy_keys.get(policy.owner)
        self._policy_keys[policy.owner] = key
        if previous is not None and previous != key and previous not in self._policy_keys.values():
            self._sessions.pop(previous, None)

    def _expiry(self, lifetime_seconds: float) -> float:
        if lifetime_seconds <= 0:
            return float("inf")
        return self.clock() + lifetime_seconds * (1 - RENEW_FRACTION)

    def _count(self, store: str) -> Callable[[str, str], None]:
        def count(operation: str, result: str) -> None:
            self.metrics.store_requests.labels(store=store, operation=operation, result=result).inc()

        return count

    def _static_secret(
        self, resolved: ResolvedStore, name: str, declared_namespace: str | None, field_name: str
    ) -> tuple[str, Mapping[str, Any] | None]:
        """A credential Secret, where the tenancy rules allow it and only if it opted in."""
        namespace = resolved.credential_namespace(declared_namespace, field_name)
        where = f"{resolved.ref} spec.{field_name}: Secret {namespace}/{name}"
        secret = self._credential_secret(namespace, name)
        labels = ((secret or {}).get("metadata") or {}).get("labels") or {}
        if secret is not None and labels.get(STORE_CREDENTIAL_LABEL) != "true":
            # Without the opt-in, naming a Secret in a store would be a way to read it.
            raise CredentialSecretUnusable(
                reasons.STORE_AUTH_MISSING, f"{where} is not labelled {STORE_CREDENTIAL_LABEL}=true"
            )
        return where, secret

    def _credential_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        with self._lock:
            cached = self._credentials.get((namespace, name))
        if cached is not None and self.clock() < cached[0]:
            return cached[1]
        secret = self.kube.get_secret(namespace, name)
        labels = ((secret or {}).get("metadata") or {}).get("labels") or {}
        if secret is not None and labels.get(STORE_CREDENTIAL_LABEL) == "true":
            # Only a usable one: a missing Secret or opt-in label, once fixed, is seen at once.
            with self._lock:
                self._credentials[(namespace, name)] = (self.clock() + self.credential_ttl, secret)
        return secret

    def _ca_file(self, resolved: ResolvedStore, pem: str | None) -> str | None:
        """The file holding the store's ``caBundle`` for hvac's ``verify``; a bundle OpenSSL
        cannot load is the store's fault (StoreInvalid naming the field), found before any
        request and never left in the directory."""
        if not pem:
            return None
        with self._lock:
            if self._ca_dir is None:
                self._ca_dir = Path(tempfile.mkdtemp(prefix="rotator-ca-"))
                weakref.finalize(self, shutil.rmtree, self._ca_dir, True)
        path = self._ca_dir / f"{_digest(pem)[:16]}.pem"
        if path.exists():
            return str(path)
        # Checked as a file, the way requests will load it; renamed into place only once loadable.
        draft = path.with_name(f"{path.stem}.{threading.get_ident()}.tmp")
        draft.write_text(pem)
        problem = check_ca_file(draft)
        if problem is not None:
            draft.unlink()
            raise PermanentError(
                reasons.STORE_INVALID,
                f"{resolved.ref} {CA_BUNDLE_FIELD} holds no usable PEM CA certificate: {problem}",
            )
        draft.replace(path)
        return str(path)

    # --- Vault -------------------------------------------------------------------------------
    def _vault_session(self, policy: PolicyRef, resolved: ResolvedStore, vault: VaultConnection) -> _Session:
        connection: tuple[str, ...] = (vault.address, vault.namespace or "", _digest(vault.ca_bundle or ""))
        kubernetes = vault.auth.kubernetes
        if kubernetes is not None:
            role = kubernetes.role.replace(NAMESPACE_PLACEHOLDER, resolved.namespace)
            key = (
                *connection,
                "kubernetes",
                kubernetes.mount_path,
                role,
                resolved.namespace,
                kubernetes.service_account,
                ",".join(kubernetes.audiences),  # an edit re-mints, and meets the audience rule
            )
            cached = self._cached(policy, key)
            if cached is not None:
                return cached
            minted = self._mint(resolved, kubernetes, "vault.auth.kubernetes")
            client = connect(
                vault.address, self.vault_timeout, vault.namespace, self._ca_file(resolved, vault.ca_bundle)
            )
            try:
                lifetime = vault_kubernetes_login(client, role, minted.token, kubernetes.mount_path)
            except StoreAuthError as exc:
                raise PermanentError(
                    reasons.STORE_AUTH_FAILED,
                    f"{resolved.ref} spec.vault.auth.kubernetes (service account "
                    f"{resolved.namespace}/{kubernetes.service_account}): {exc}",
                ) from None
            return self._remember(policy, key, client, self._expiry(lifetime))
        ref = vault.auth.token_secret_ref
        assert ref is not None, "the store models guarantee exactly one auth method"
        where, secret = self._static_secret(resolved, ref.name, ref.namespace, "vault.auth.tokenSecretRef")
        token = token_from_secret(where, secret, ref.key)
        key = (*connection, "token", _digest(token))
        cached = self._cached(policy, key)
        if cached is not None:
            return cached
        client = connect(
            vault.address,
            self.vault_timeout,
            vault.namespace,
            self._ca_file(resolved, vault.ca_bundle),
            token,
        )
        return self._remember(policy, key, client, float("inf"))

    # --- AWS ---------------------------------------------------------------------------------
    def _aws_session(self, policy: PolicyRef, resolved: ResolvedStore, aws: AwsConnection) -> _Session:
        """The cached session of an AWS store; its ``client`` is an ``AwsSession``."""
        from rotator.stores.aws.auth import AwsSession, access_key_from_secret, assume_web_identity

        connection: tuple[str, ...] = (f"aws:{aws.region}:{aws.endpoint or ''}",)
        web = aws.auth.web_identity
        if web is not None:
            role_arn = web.role_arn.replace(NAMESPACE_PLACEHOLDER, resolved.namespace)
            key = (
                *connection,
                "web",
                role_arn,
                resolved.namespace,
                web.service_account,
                ",".join(web.audiences),
            )
            cached = self._cached(policy, key)
            if cached is not None:
                return cached
            minted = self._mint(resolved, web, "awsSecretsManager.auth.webIdentity")
            try:
                credentials = assume_web_identity(
                    aws.region,
                    aws.endpoint,
                    role_arn,
                    f"rotator-{resolved.namespace}",
                    minted.token,
                    self.aws_timeout,
                )
            except StoreAuthError as exc:
                raise PermanentError(
                    reasons.STORE_AUTH_FAILED,
                    f"{resolved.ref} spec.awsSecretsManager.auth.webIdentity (service account "
                    f"{resolved.namespace}/{web.service_account}): {exc}",
                ) from None
            session = AwsSession(
                aws.region,
                aws.endpoint,
                credentials.access_key_id,
                credentials.secret_access_key,
                self.aws_timeout,
                credentials.session_token,
            )
            expiry = self._expiry(_seconds_until(credentials.expires_at))
            return self._remember(policy, key, session, expiry)
        ref = aws.auth.access_key_secret_ref
        assert ref is not None
        where, secret = self._static_secret(
            resolved, ref.name, ref.namespace, "awsSecretsManager.auth.accessKeySecretRef"
        )
        access_key_id = access_key_from_secret(where, secret, ref.access_key_id_key)
        secret_access_key = access_key_from_secret(where, secret, ref.secret_access_key_key)
        key = (*connection, "keys", _digest(access_key_id, secret_access_key))
        cached = self._cached(policy, key)
        if cached is not None:
            return cached
        session = AwsSession(aws.region, aws.endpoint, access_key_id, secret_access_key, self.aws_timeout)
        return self._remember(policy, key, session, float("inf"))


def _digest(*secrets: str) -> str:
    return hashlib.sha256("\0".join(secrets).encode()).hexdigest()


def _seconds_until(moment: datetime | None) -> float:
    return 0.0 if moment is None else max(1.0, (moment - utcnow()).total_seconds())
