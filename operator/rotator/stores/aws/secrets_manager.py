"""AWS Secrets Manager store.

One rotated secret ``secret_id`` maps onto Secrets Manager's own versioning:

- a version written by rotator has ``VersionId`` = the rotation id (it is the
  ``ClientRequestToken`` of ``PutSecretValue``), so a retried write can never make a second one;
- *current* is the version labelled ``AWSCURRENT``, *previous* the one labelled ``AWSPREVIOUS``,
  *pending* the one labelled ``AWSPENDING``. A version without any staging label is
  *deprecated*: revoked, failed or abandoned; this store treats it as destroyed (Secrets Manager
  cannot delete a single version, it garbage-collects deprecated ones);
- the secret's tags hold ownership (``managed-by: rotator``, ``rotator.dev/owner: <ns>/<name>``,
  set by ``CreateSecret`` itself, so claiming a new secret is atomic: of two policies creating one
  name, exactly one create lands and the other finds the winner's owner tag),
  the version ids rotator wrote (``rotator.dev/versions``, so an adopted value is told apart:
  its ``rotation_id`` is None) and the versions marked failed by a rollback
  (``rotator.dev/failed-versions``). Both lists are space separated (AWS tag values allow no
  commas) and bounded by the 256-character tag value limit; ids that still carry a staging label
  are never dropped from ``rotator.dev/versions``.

Readers (External Secrets, the AWS SDKs, Lambda extensions) read ``AWSCURRENT``: ``GetSecretValue``
without a ``VersionId`` or ``VersionStage`` means ``VersionStage=AWSCURRENT``. ``write_pending``
labels its version ``AWSPENDING`` only, so it is never read by default; ``promote`` moves
``AWSCURRENT`` to it (AWS hands ``AWSPREVIOUS`` to the old one); ``mark_failed`` moves
``AWSCURRENT`` back to the restored version *before* stripping the failed one's labels, so a
reader sees the old value again and never a deprecated one (tests/integration/test_store_latest.py
polls it throughout). The one exception is AWS's own: Secrets Manager attaches ``AWSCURRENT`` to
the first version of a secret whatever the request says, so a rotator-created secret's first
write carries ``AWSCURRENT`` *and* ``AWSPENDING``; until promoted it counts as pending, not
current (readers see it early: there is nothing older to show them).

Secrets Manager has no check-and-set. ``write_pending`` emulates one: it lists the versions, writes,
and lists again; a version that appeared in between and is not ours means a foreign writer raced
us: our version loses its labels (so nothing of ours is pending) and StoreConflict is raised. The
retry with the same rotation id labels that version ``AWSPENDING`` again (it cannot be rewritten:
the token is spent).

Requests: a rotation costs 13 in the steady state (tests/integration/test_store_request_counts.py
counts them on the wire, by step). Labels and tags come from one DescribeSecret
(VersionIdsToStages); ListSecretVersionIds is read only where deprecated versions or creation
dates matter (``current``, ``find_by_rotation``, the emulated check-and-set). A verb starts from
the look the previous verb of the same store object took a moment before, in the same reconcile
(ensure_owned -> current, find_by_rotation -> write_pending, read_value -> revoke). ``promote``
knows where AWSPREVIOUS went without a re-read. Label moves are conditional by nature (they
name the version a label leaves; AWS refuses a wrong one and ``_move`` then looks), so a look a
moment old can make a verb do less, never strip what readers get. The value ``write_pending``
wrote is handed to the sync step's ``read_value`` (``SMCache``, per AWS session); the revoke
step's read is always real.

Transient failures (connection errors, timeouts, 5xx, throttling) are retried briefly here (3
attempts, 0.2-1 s) and then raised as StoreUnavailable. Error text carries the operation, the
exception type and the AWS error code, never AWS's message or a request parameter, so no secret
value can reach it. ``GetSecretValue`` is always called with an explicit ``VersionId``, and
``RotateSecret`` is never used (rotator is the rotation).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import botocore.exceptions
from pydantic import SecretStr

from rotator.logs import SENSITIVE
from rotator.models.keys import STORE_VERSIONS as ROTATOR_VERSIONS
from rotator.stores.aws.session_cache import SMCache
from rotator.stores.base import (
    FAILED_VERSIONS,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    OWNER,
    OnRequest,
    StoredVersion,
    VersionState,
    no_metrics,
)
from rotator.stores.errors import (
    StoreAuthError,
    StoreConflict,
    StoreError,
    StoreOwnershipError,
    StoreRefused,
    StoreUnavailable,
    StoreVersionNotFound,
)
from rotator.stores.retries import QuickRetries

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
else:
    SecretsManagerClient = Any

T = TypeVar("T")

AWSCURRENT: Final = "AWSCURRENT"
AWSPENDING: Final = "AWSPENDING"
AWSPREVIOUS: Final = "AWSPREVIOUS"
TAG_VALUE_LIMIT: Final = 256
"""Characters an AWS tag value may hold."""
MAX_VERSION_PAGES: Final = 3
"""Pages of ``ListSecretVersionIds`` (100 each) read per call: AWS keeps about 100 versions."""

_TRANSIENT_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_AUTH_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
_NOT_FOUND: Final = "ResourceNotFoundException"
_MIN_TOKEN, _MAX_TOKEN = 32, 64


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    response: Mapping[str, Any] = exc.response
    return str((response.get("Error") or {}).get("Code") or "Unknown")


def _http_status(exc: botocore.exceptions.ClientError) -> int:
    response: Mapping[str, Any] = exc.response
    return int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError):
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        return _error_code(exc) in _TRANSIENT_CODES or _http_status(exc) >= 500 or _http_status(exc) == 429
    return False


@dataclass(frozen=True)
class _Version:
    stages: tuple[str, ...]
    created_at: datetime | None


@dataclass
class _Versions:
    """One look at the secret: its tags and versions. ``listed``: from ListSecretVersionIds
    (deprecated versions and creation dates included); else from DescribeSecret's
    VersionIdsToStages alone (labelled versions, no dates), which is all labels need."""

    versions: dict[str, _Version]
    tags: dict[str, str]
    listed: bool = True

    def holder(self, stage: str) -> str | None:
        for version_id, info in self.versions.items():
            if stage in info.stages:
                return version_id
        return None

    def stages(self, version_id: str) -> tuple[str, ...]:
        info = self.versions.get(version_id)
        return info.stages if info is not None else ()

    def labelled(self, version_id: str) -> bool:
        """Alive: the version exists and carries a staging label (not deprecated)."""
        return bool(self.stages(version_id))

    def current(self) -> str | None:
        """The promoted current version: AWSCURRENT, unless it is a first write still pending."""
        holder = self.holder(AWSCURRENT)
        if holder is None or AWSPENDING in self.stages(holder):
            return None
        return holder

    def moved_current(self, to: str, holder: str | None) -> _Versions:
        """The labels after AWSCURRENT moved from ``holder`` to ``to``, as Secrets Manager moves
        them: AWSPREVIOUS goes to the version AWSCURRENT left (and off any other)."""
        versions: dict[str, _Version] = {}
        for version_id, info in self.versions.items():
            stages = [s for s in info.stages if s != AWSCURRENT]
            if holder is not None and holder != to:
                stages = [s for s in stages if s != AWSPREVIOUS]
                if version_id == holder:
                    stages.append(AWSPREVIOUS)
            if version_id == to:
                stages.append(AWSCURRENT)
            versions[version_id] = _Version(tuple(stages), info.created_at)
        return _Versions(versions, dict(self.tags), self.listed)


def _tag_map(described: Mapping[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value", "")) for t in described.get("Tags") or []}


def _split(tag: str | None) -> list[str]:
    return [v for v in (tag or "").split(" ") if v]


def _bounded(ids: Sequence[str], keep: set[str]) -> str:
    """Join ``ids`` (oldest first) into one tag value, dropping the oldest not in ``keep``."""
    kept = list(dict.fromkeys(ids))
    while len(" ".join(kept)) > TAG_VALUE_LIMIT:
        droppable = [v for v in kept if v not in keep] or kept
        kept.remove(droppable[0])
    return " ".join(kept)


class AwsSecretsManagerStore:
    """Store on one Secrets Manager secret. ``client`` is built by ``rotator.stores.aws.auth.aws_client``."""

    kind = "aws"

    def __init__(
        self,
        client: SecretsManagerClient,
        secret_id: str,
        on_request: OnRequest = no_metrics,
        *,
        attempts: int = 3,
        sleep: Callable[[float], None] | None = None,
        cache: SMCache | None = None,
    ) -> None:
        self._client = client
        self.secret_id = secret_id
        self._on_request = on_request
        self._cache = cache if cache is not None else SMCache()
        # What one verb read and the next verb of the same store object (the same reconcile,
        # milliseconds later) starts from instead of reading again: ensure_owned's DescribeSecret
        # for current(), find_by_rotation's look for write_pending, read_value's for revoke.
        # Any other call drops it.
        self._carried: tuple[str, Any] | None = None
        self._retrying = QuickRetries(attempts, _transient, sleep or time.sleep)

    @property
    def path(self) -> str:
        """The secret id (the store's "path", named in ownership errors)."""
        return self.secret_id

    @property
    def location(self) -> str:
        return f"aws secret {self.secret_id}"

    def __repr__(self) -> str:
        return f"AwsSecretsManagerStore({self.secret_id!r})"

    # -- plumbing -------------------------------------------------------------------------------

    def _call(self, operation: str, fn: Callable[[], T], *, missing_ok: bool = False) -> T | None:
        """Run one API call with short retries; count it; translate failures.

        Only the exception type and AWS error code reach the message (AWS's message text may
        quote request parameters), and the cause is not chained.
        """
        try:
            result = self._retrying(fn)
        except botocore.exceptions.ClientError as exc:
            code = _error_code(exc)
            if code == _NOT_FOUND and missing_ok:
                self._on_request(operation, "ok")
                return None
            self._on_request(operation, "error")
            where = f"{self.location}: {operation} failed: {code}"
            if code == _NOT_FOUND:
                raise StoreVersionNotFound(f"{where} (not found)") from None
            if code in _AUTH_CODES or _http_status(exc) in (401, 403):
                raise StoreAuthError(where) from None
            if _transient(exc):
                raise StoreUnavailable(where) from None
            raise StoreError(where) from None
        except botocore.exceptions.NoCredentialsError:
            self._on_request(operation, "error")
            raise StoreAuthError(f"{self.location}: {operation} failed: no AWS credentials found") from None
        except botocore.exceptions.BotoCoreError as exc:
            self._on_request(operation, "error")
            where = f"{self.location}: {operation} failed: {type(exc).__name__}"
            if _transient(exc):
                raise StoreUnavailable(where) from None
            raise StoreError(where) from None
        self._on_request(operation, "ok")
        return result

    def _describe(self) -> Mapping[str, Any] | None:
        response = self._call(
            "describe", lambda: self._client.describe_secret(SecretId=self.secret_id), missing_ok=True
        )
        return None if response is None else dict(response)

    def _versions(self) -> _Versions | None:
        """Tags and every version with its labels, or None when the secret does not exist.

        DescribeSecret comes first: it answers ResourceNotFound for a missing secret where moto's
        ListSecretVersionIds answers 500 (real AWS: ResourceNotFound for both).
        """
        described = self._describe()
        if described is None:
            return None
        return self._list(_tag_map(described))

    def _list(self, tags: dict[str, str]) -> _Versions | None:
        """Every version with its labels (ListSecretVersionIds), beside ``tags`` known already."""
        versions: dict[str, _Version] = {}
        token: str | None = None
        for _ in range(MAX_VERSION_PAGES):
            kwargs: dict[str, Any] = {
                "SecretId": self.secret_id,
                "IncludeDeprecated": True,
                "MaxResults": 100,
            }
            if token:
                kwargs["NextToken"] = token
            response = self._call(
                "list_versions",
                functools.partial(self._client.list_secret_version_ids, **kwargs),
                missing_ok=True,
            )
            if response is None:
                return None
            for entry in response.get("Versions") or []:
                version_id = entry.get("VersionId")
                if version_id:
                    created = entry.get("CreatedDate")
                    versions[version_id] = _Version(
                        tuple(entry.get("VersionStages") or ()),
                        created if isinstance(created, datetime) else None,
                    )
            token = response.get("NextToken")
            if not token:
                break
        return _Versions(versions, tags)

    def _require_versions(self) -> _Versions:
        versions = self._versions()
        if versions is None:
            raise StoreVersionNotFound(f"{self.location}: the secret does not exist")
        return versions

    def _labels(self) -> _Versions | None:
        """Tags and the labelled versions from one DescribeSecret (``listed`` False)."""
        described = self._describe()
        if described is None:
            return None
        raw: Mapping[str, Any] = described.get("VersionIdsToStages") or {}
        versions = {str(k): _Version(tuple(v or ()), None) for k, v in raw.items()}
        return _Versions(versions, _tag_map(described), listed=False)

    def _take(self, kind: str) -> Any:
        """What the previous verb of this store object carried for ``kind``, else None."""
        carried, self._carried = self._carried, None
        return carried[1] if carried is not None and carried[0] == kind else None

    def _tag(self, tags: Mapping[str, str]) -> None:
        self._call(
            "tag",
            lambda: self._client.tag_resource(
                SecretId=self.secret_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            ),
        )

    def _move(self, stage: str, to: str | None, remove_from: str | None) -> None:
        """Move (or, without ``to``, remove) a staging label."""
        kwargs: dict[str, Any] = {"SecretId": self.secret_id, "VersionStage": stage}
        if to is not None:
            kwargs["MoveToVersionId"] = to
        if remove_from is not None:
            kwargs["RemoveFromVersionId"] = remove_from
        try:
            self._call("update_stage", lambda: self._client.update_secret_version_stage(**kwargs))
        except (StoreUnavailable, StoreAuthError):
            raise
        except StoreError:
            # A retried move whose first attempt landed (the answer was lost) is refused as
            # invalid the second time: if the labels are where we wanted them, that is success.
            versions = self._versions()
            reached = versions is not None and (
                (to is None or stage in versions.stages(to))
                and (remove_from is None or remove_from == to or stage not in versions.stages(remove_from))
            )
            if not reached:
                raise

    def _strip(self, versions: _Versions, version_id: str, *, keep: tuple[str, ...] = ()) -> None:
        """Remove every staging label of ``version_id`` except ``keep``: it becomes deprecated."""
        for stage in versions.stages(version_id):
            if stage not in keep:
                self._move(stage, None, version_id)

    def _state(self, versions: _Versions, version_id: str, failed: Sequence[str]) -> VersionState:
        stages = versions.stages(version_id)
        if version_id in failed:
            return VersionState.FAILED
        if not stages:
            return VersionState.DESTROYED
        if AWSPENDING in stages:
            return VersionState.PENDING
        if AWSCURRENT in stages:
            return VersionState.CURRENT
        if AWSPREVIOUS in stages:
            return VersionState.PREVIOUS
        return VersionState.PENDING  # labelled by someone else's custom stage only

    def _stored(self, versions: _Versions, version_id: str, failed: Sequence[str]) -> StoredVersion:
        info = versions.versions.get(version_id)
        return StoredVersion(
            version_id,
            version_id,
            info.created_at if info is not None else None,
            self._state(versions, version_id, failed),
        )

    # -- Store ----------------------------------------------------------------------------------

    def ensure_owned(self, owner: str, adopt: bool) -> bool:
        self._carried = None
        self._cache.handover.drop(self.secret_id)
        described = self._describe()
        ownership = {MANAGED_BY: MANAGED_BY_VALUE, OWNER: owner}
        if described is None:
            try:
                self._call(
                    "create",
                    lambda: self._client.create_secret(
                        Name=self.secret_id, Tags=[{"Key": k, "Value": v} for k, v in ownership.items()]
                    ),
                )
            except StoreError:
                # CreateSecret is atomic by name and carries the tags: on ResourceExists another
                # claimant won, and its owner tag is already there to be judged.
                if self._describe() is None:
                    raise
                return self.ensure_owned(owner, adopt)
            return False
        if described.get("DeletedDate"):
            raise StoreError(
                f"{self.location} is scheduled for deletion; restore it or point the policy at another secret"
            )
        found = _tag_map(described)
        tagged = found.get(MANAGED_BY) == MANAGED_BY_VALUE
        found_owner = found.get(OWNER) or None
        if tagged and found_owner == owner:
            self._carried = ("described", found)  # current() lists the versions beside these tags
            return True
        if not adopt or (tagged and found_owner):
            raise StoreOwnershipError(self.location, found_owner, owner)
        self._tag(ownership)  # TagResource merges: tags rotator does not own are kept
        # Tags have no check-and-set: re-read, and give way if another adopter's tag won.
        after = self._describe()
        final = _tag_map(after).get(OWNER) if after is not None else None
        if final != owner:
            raise StoreOwnershipError(self.location, final, owner)
        return True

    def current(self) -> StoredVersion | None:
        tags = self._take("described")
        versions = self._list(tags) if tags is not None else self._versions()
        if versions is None:
            return None
        holder = versions.current()
        if holder is None or holder in _split(versions.tags.get(FAILED_VERSIONS)):
            return None
        ours = holder in _split(versions.tags.get(ROTATOR_VERSIONS))
        info = versions.versions[holder]
        return StoredVersion(holder, holder if ours else None, info.created_at, VersionState.CURRENT)

    def find_by_rotation(self, rotation_id: str) -> StoredVersion | None:
        self._carried = None
        versions = self._versions()
        if versions is not None:
            self._carried = ("versions", versions)  # write_pending starts from this look
        if versions is None or not versions.labelled(rotation_id):
            return None
        failed = _split(versions.tags.get(FAILED_VERSIONS))
        if rotation_id in failed:
            return None
        return self._stored(versions, rotation_id, failed)

    def write_pending(self, value: SecretStr, rotation_id: str) -> StoredVersion:
        if not _MIN_TOKEN <= len(rotation_id) <= _MAX_TOKEN:
            raise StoreRefused(
                f"{self.location}: rotation id of {len(rotation_id)} characters cannot be a "
                f"ClientRequestToken ({_MIN_TOKEN}-{_MAX_TOKEN})"
            )
        # find_by_rotation's look a moment ago will do as "before": a version written since is
        # not in it, so it counts as foreign below (a conflict, never a missed race).
        versions = self._take("versions") or self._require_versions()
        tags = versions.tags
        failed = _split(tags.get(FAILED_VERSIONS))
        if rotation_id in versions.versions:
            if rotation_id in failed:
                raise StoreRefused(f"{self.location}: version {rotation_id} was marked failed")
            if not versions.labelled(rotation_id):
                # Written by an attempt that lost a race (or whose answer was lost): the token is
                # spent, so the same version becomes pending again.
                self._move(AWSPENDING, rotation_id, versions.holder(AWSPENDING))
                versions = self._require_versions()
            return self._stored(versions, rotation_id, failed)

        # Remember the id before writing: a crash in between leaves a harmless extra id.
        known = _split(tags.get(ROTATOR_VERSIONS))
        protected = {v for v in known if versions.labelled(v)} | {rotation_id}
        remembered = _bounded([*known, rotation_id], protected)
        if remembered != tags.get(ROTATOR_VERSIONS):
            self._tag({ROTATOR_VERSIONS: remembered})
        before = set(versions.versions)
        secret = value.get_secret_value()
        self._call(
            "put_value",
            lambda: self._client.put_secret_value(
                SecretId=self.secret_id,
                ClientRequestToken=rotation_id,
                SecretString=secret,
                VersionStages=[AWSPENDING],
            ),
        )
        after = self._list({**tags, ROTATOR_VERSIONS: remembered})
        if after is None:
            raise StoreVersionNotFound(f"{self.location}: the secret does not exist")
        foreign = set(after.versions) - before - {rotation_id}
        if foreign:
            # A foreign writer raced us: nothing of ours stays pending; the retry re-labels it.
            holder = after.holder(AWSCURRENT)
            self._strip(after, rotation_id, keep=(AWSCURRENT,) if holder == rotation_id else ())
            raise StoreConflict(
                f"{self.location}: {len(foreign)} version(s) written by someone else while writing "
                f"rotation {rotation_id}; re-observe and retry"
            )
        self._cache.handover.put(self.secret_id, rotation_id, value)
        return self._stored(after, rotation_id, failed)

    def promote(self, new_version: str, old_version: str | None) -> None:
        if new_version == old_version:
            raise StoreRefused(f"{self.location}: cannot promote version {new_version} over itself")
        self._carried = None
        versions = self._labels()  # labels and tags are all promote judges by
        if versions is None:
            raise StoreVersionNotFound(f"{self.location}: the secret does not exist")
        if not versions.labelled(new_version):
            raise StoreVersionNotFound(f"{self.location}: cannot promote version {new_version}: gone")
        # Judged before the move: a foreign writer's AWSCURRENT makes AWS hand AWSPREVIOUS to the
        # foreign version, stripping the old one, which must stay valid until revoke.
        old_alive = old_version is not None and versions.labelled(old_version)
        holder = versions.holder(AWSCURRENT)
        if holder != new_version:
            # AWS moves AWSPREVIOUS onto the version AWSCURRENT leaves: known without a re-read
            # (the moves below name the version they take a label from, so AWS refuses one
            # that is wrong, and _move then looks).
            self._move(AWSCURRENT, new_version, holder)
            versions = versions.moved_current(new_version, holder)
        if AWSPENDING in versions.stages(new_version):
            self._move(AWSPENDING, None, new_version)
        previous = versions.holder(AWSPREVIOUS)
        if previous is not None and previous in _split(versions.tags.get(FAILED_VERSIONS)):
            self._move(AWSPREVIOUS, None, previous)  # AWS labelled a failed version AWSPREVIOUS
            previous = None
        if (
            old_version is not None
            and old_alive
            and old_version != previous
            and AWSCURRENT not in versions.stages(old_version)
        ):
            self._move(AWSPREVIOUS, old_version, previous)

    def read_value(self, version: str) -> SecretStr:
        self._carried = None
        handed = self._cache.handover.take(self.secret_id, version)
        if handed is not None:  # just written by this process: SMCache
            return handed
        versions = self._labels()
        if (
            versions is None
            or not versions.labelled(version)
            or version in _split(versions.tags.get(FAILED_VERSIONS))
        ):
            raise StoreVersionNotFound(f"{self.location}: version {version} is revoked, failed or missing")
        response = self._call(
            "get_value",
            lambda: self._client.get_secret_value(SecretId=self.secret_id, VersionId=version),
        )
        answer: Mapping[str, Any] = response or {}
        secret = answer.get("SecretString")
        if not isinstance(secret, str):
            raise StoreError(f"{self.location}: version {version} holds no SecretString")
        SENSITIVE.add(secret)  # whatever this process holds, its logs mask
        self._carried = ("labels", versions)  # the revoke step's revoke() starts from this look
        return SecretStr(secret)

    def revoke(self, version: str) -> None:
        # The look the revoke step's read_value took a moment ago will do: every label move
        # names the version it takes the label from, so AWS refuses to strip a label the version
        # no longer holds, and one it gained since (AWSCURRENT moved back by hand) is never
        # named: the look can only make revoke do less, never strip what readers get.
        versions = self._take("labels") or self._labels()
        self._cache.handover.drop(self.secret_id)
        if versions is None:
            return
        if versions.holder(AWSCURRENT) == version:
            raise StoreRefused(f"{self.location}: refusing to revoke version {version}: it is AWSCURRENT")
        try:
            self._strip(versions, version)
        except StoreVersionNotFound:
            return  # gone meanwhile: already revoked

    def mark_failed(self, failed_version: str, restore_version: str | None) -> None:
        if restore_version == failed_version:
            raise StoreRefused(f"{self.location}: cannot restore version {failed_version} onto itself")
        self._carried = None
        self._cache.handover.drop(self.secret_id)
        versions = self._labels()
        if versions is None:
            return
        failed = _split(versions.tags.get(FAILED_VERSIONS))
        if restore_version is not None and (
            restore_version in failed or not versions.labelled(restore_version)
        ):
            raise StoreVersionNotFound(
                f"{self.location}: cannot restore version {restore_version}: revoked, failed or missing"
            )
        # Remember first, then move labels: a crash in between leaves a harmless, repeatable state.
        if failed_version not in failed:
            listed = _bounded([*failed, failed_version], {failed_version})
            self._tag({FAILED_VERSIONS: listed})
        holder = versions.holder(AWSCURRENT)
        if restore_version is not None and holder != restore_version:
            self._move(AWSCURRENT, restore_version, holder)
            versions = self._require_versions()
        # Nothing to restore and the failed version is AWSCURRENT (the engine keeps the only
        # credential there is instead): Secrets Manager cannot leave a secret without AWSCURRENT,
        # so the label stays and the failed-versions tag keeps current() from reporting it.
        keep = (AWSCURRENT,) if versions.holder(AWSCURRENT) == failed_version else ()
        self._strip(versions, failed_version, keep=keep)


__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "ROTATOR_VERSIONS",
    "AwsSecretsManagerStore",
    "SMCache",
]
