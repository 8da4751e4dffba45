"""``awsIamAccessKey``: the two-key dance on an IAM user, the zero-downtime rotation AWS documents
for access keys (IAM allows two keys per user, both valid at once).

- ``mint`` (step 1): ``CreateAccessKey`` for the user; the key id and secret are written to the
  store as pending right after (one JSON object ``{"accessKeyId", "secretAccessKey"}``).
- ``activate`` (step 2): nothing to do, a new key is active when created (the mint marker below
  is dropped).
- ``authenticate`` (step 5): ``sts:GetCallerIdentity`` signed with the new key must answer the
  user's ARN. IAM is eventually consistent (a new key can take seconds to be accepted
  everywhere), so a refusal is retried for a few seconds before it counts as a failure.
- ``retire`` (step 6; rollback for the failed new key): ``UpdateAccessKey Inactive`` then
  ``DeleteAccessKey``; a key already gone (``NoSuchEntity``) is done.

Which identity: the policy's store must be AWS Secrets Manager, and the keys are managed with the
store's own session (the namespace's identity: web identity for the namespace's service account,
or the store's static keys), never the operator's. It needs ``iam:ListAccessKeys``,
``iam:CreateAccessKey``, ``iam:UpdateAccessKey``, ``iam:DeleteAccessKey``, ``iam:ListUserTags``,
``iam:TagUser`` and ``iam:UntagUser`` on the user.

Safety rules:
- A key rotator does not track (the store's current key of this policy) is never deactivated or
  deleted, with one provable exception, the orphan below. A user that already has two keys and
  neither spare is provably rotator's is a refusal naming ``spec.credential.awsIamAccessKey.userName``
  (``TargetKeyLimitReached``), with the key ids (references, never secrets).
- The user is claimed with the tag ``rotator.dev/owner=<namespace>/<policy>`` on first use; a user
  claimed by another policy is refused (``TargetNotOwned``): two policies must not trade keys.
- Orphans: a crash (or a failed store write) between ``CreateAccessKey`` and the pending write
  loses the new secret for good, and the key would hold one of the user's two places for ever.
  So before creating, ``mint`` tags the user ``rotator.dev/minting=<rotation id> <key ids that
  exist now>``. When ``mint`` runs again *for the same rotation* (the store has no version of it,
  or generate would have adopted that), a key that is not in that list and not the tracked one
  was created after rotator announced its create: the orphan. It is deleted only if it is the
  only such key (rotator creates one key per announcement; two mean someone else created one
  too, and neither is provably ours). The tag of an earlier rotation proves nothing and is
  ignored; ``activate`` removes it once the store holds the key.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

import botocore.exceptions
from pydantic import SecretStr

from rotator.logs import SENSITIVE
from rotator.models import PermanentError, keys, reasons
from rotator.models.spec import AWS_KEY_ID_FIELD, AWS_SECRET_FIELD, AwsIamAccessKeyCredential
from rotator.targets.base import AwsClients, TargetAuthFailed, TargetUnavailable
from rotator.targets.credential import Credential

FIELD: Final = "spec.credential.awsIamAccessKey"
OWNER_TAG: Final = keys.STORE_OWNER
MINTING_TAG: Final = keys.TARGET_MINTING
#: IAM's quota of access keys per user.
KEYS_PER_USER: Final = 2
#: Seconds between the attempts of ``authenticate`` while IAM propagates a new key.
PROPAGATION_WAITS: Final = (0.5, 1.0, 2.0, 4.0)
#: STS error codes of a key it does not (yet) accept.
_KEY_REFUSED: Final = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied"})
_DENIED: Final = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_IDENTITY_REFUSED: Final = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken"})
_TEMPORARY: Final = frozenset({"Throttling", "ThrottlingException", "ServiceFailure", "ServiceUnavailable"})
_UNREACHABLE: Final = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


class _NoSuchEntity(Exception):
    """IAM answered NoSuchEntity: the user or the key does not exist."""


def is_user_arn(arn: str, user_name: str) -> bool:
    """``arn:<partition>:iam::<account>:user/[<path>/]<user>`` (user names are unique per account,
    whatever their path)."""
    return re.fullmatch(rf"arn:[a-z-]+:iam::\d+:user/(?:[^/]+/)*{re.escape(user_name)}", arn) is not None


class AwsIamAccessKeyTarget:
    kind = "awsIamAccessKey"
    remote = True

    def __init__(
        self,
        spec: AwsIamAccessKeyCredential,
        clients: Callable[[], AwsClients | None],
        owner: str,
        rotation_id: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._user = spec.user_name
        self._open_clients = clients
        self._clients: AwsClients | None = None
        self._owner = owner
        self._rotation_id = rotation_id
        self._sleep = sleep

    # --- the protocol ------------------------------------------------------------------------
    def mint(self, current: Credential | None) -> Credential:
        iam = self._iam()
        tags = self._user_tags(iam)
        self._claim(iam, tags)
        tracked = current[AWS_KEY_ID_FIELD].get_secret_value() if current is not None else None
        keys = self._drop_orphan(iam, tags.get(MINTING_TAG), self._key_ids(iam), tracked)
        if len(keys) >= KEYS_PER_USER:
            self._refuse_limit(keys, tracked)
        # Announced before the create: a crash right after it leaves a key this can prove is ours.
        self._tag(iam, MINTING_TAG, " ".join([self._rotation_id, *keys]))
        try:
            created = self._call("CreateAccessKey", iam.create_access_key, UserName=self._user)["AccessKey"]
        except PermanentError as exc:
            if exc.reason == reasons.TARGET_KEY_LIMIT:
                self._refuse_limit(self._key_ids(iam), tracked)  # a key appeared meanwhile
            raise
        secret = str(created["SecretAccessKey"])
        SENSITIVE.add(secret)  # the logs' second belt: masked wherever it shows up
        return {AWS_KEY_ID_FIELD: SecretStr(str(created["AccessKeyId"])), AWS_SECRET_FIELD: SecretStr(secret)}

    def activate(self, new: Credential) -> None:
        """A new key is active from its creation; the store holds it now, so the announcement of
        its mint has served (untagging an absent tag is a no-op: repeatable)."""
        iam = self._iam()
        self._call("UntagUser", iam.untag_user, UserName=self._user, TagKeys=[MINTING_TAG])

    def authenticate(self, credential: Credential) -> None:
        key_id = credential[AWS_KEY_ID_FIELD].get_secret_value()
        clients = self._aws()
        sts = clients.client_as("sts", key_id, credential[AWS_SECRET_FIELD].get_secret_value())
        problem = ""
        for wait in (*PROPAGATION_WAITS, None):
            try:
                arn = str(sts.get_caller_identity()["Arn"])
            except _UNREACHABLE as exc:
                raise TargetUnavailable(f"STS GetCallerIdentity: {type(exc).__name__}") from None
            except botocore.exceptions.ClientError as exc:
                code = _code(exc)
                if code in _TEMPORARY:
                    raise TargetUnavailable(f"STS GetCallerIdentity: {code}") from None
                if code not in _KEY_REFUSED:
                    raise PermanentError(reasons.TARGET_INVALID, f"{FIELD}: STS refused: {code}") from None
                problem = f"STS refused it ({code})"
            else:
                if is_user_arn(arn, self._user):
                    return
                problem = f"it authenticates as {arn}"
            if wait is not None:
                self._sleep(wait)  # IAM propagates a new key within seconds
        raise TargetAuthFailed(f"access key {key_id} of IAM user {self._user!r}: {problem}")

    def retire(self, old: Credential, keep: Credential) -> None:
        old_id = old[AWS_KEY_ID_FIELD].get_secret_value()
        if old_id == keep[AWS_KEY_ID_FIELD].get_secret_value():
            return
        iam = self._iam()
        try:
            # Inactive first: if the delete fails, the key already stopped working.
            self._call(
                "UpdateAccessKey",
                iam.update_access_key,
                UserName=self._user,
                AccessKeyId=old_id,
                Status="Inactive",
            )
            self._call("DeleteAccessKey", iam.delete_access_key, UserName=self._user, AccessKeyId=old_id)
        except _NoSuchEntity:
            return  # deleted already (a retry after a crash): nothing can use it

    def reference(self, credential: Credential) -> str:
        return f"access key {credential[AWS_KEY_ID_FIELD].get_secret_value()}"

    # --- helpers -----------------------------------------------------------------------------
    def _aws(self) -> AwsClients:
        if self._clients is None:
            clients = self._open_clients()
            if clients is None:
                raise PermanentError(
                    reasons.TARGET_INVALID,
                    f"{FIELD} needs an AWS Secrets Manager store (spec.storeRef): the store's AWS "
                    "identity manages the user's keys, and this policy's store is not on AWS",
                )
            self._clients = clients
        return self._clients

    def _iam(self) -> Any:
        return self._aws().client("iam")

    def _user_tags(self, iam: Any) -> dict[str, str]:
        try:
            answer = self._call("ListUserTags", iam.list_user_tags, UserName=self._user)
        except _NoSuchEntity:
            raise PermanentError(
                reasons.TARGET_INVALID, f"{FIELD}.userName: IAM user {self._user!r} does not exist"
            ) from None
        return {str(t["Key"]): str(t["Value"]) for t in answer.get("Tags") or []}

    def _key_ids(self, iam: Any) -> list[str]:
        try:
            answer = self._call("ListAccessKeys", iam.list_access_keys, UserName=self._user)
        except _NoSuchEntity:
            raise PermanentError(
                reasons.TARGET_INVALID, f"{FIELD}.userName: IAM user {self._user!r} does not exist"
            ) from None
        return [str(k["AccessKeyId"]) for k in answer.get("AccessKeyMetadata") or []]

    def _claim(self, iam: Any, tags: Mapping[str, str]) -> None:
        owner = tags.get(OWNER_TAG)
        if owner is None:
            self._tag(iam, OWNER_TAG, self._owner)
        elif owner != self._owner:
            raise PermanentError(
                reasons.TARGET_NOT_OWNED,
                f"{FIELD}.userName: IAM user {self._user!r} is tagged {OWNER_TAG}={owner}; "
                "rotator only manages the keys of a user no other policy claimed",
            )

    def _drop_orphan(self, iam: Any, marker: str | None, keys: list[str], tracked: str | None) -> list[str]:
        """The keys left after deleting the one key this rotation provably created and lost."""
        words = (marker or "").split()
        if not words or words[0] != self._rotation_id:
            return keys  # no announcement of this rotation: no key can be proven ours
        before = words[1:]
        orphans = [k for k in keys if k not in before and k != tracked]
        if len(orphans) != 1:
            return keys
        self.retire({AWS_KEY_ID_FIELD: SecretStr(orphans[0])}, keep={AWS_KEY_ID_FIELD: SecretStr("")})
        return [k for k in keys if k != orphans[0]]

    def _refuse_limit(self, keys: list[str], tracked: str | None) -> NoReturn:
        untracked = ", ".join(k for k in keys if k != tracked)
        if tracked in keys:
            detail = f"{untracked} is not the key this policy tracks"
        else:
            detail = f"none of them ({untracked}) is the key this policy tracks"
        raise PermanentError(
            reasons.TARGET_KEY_LIMIT,
            f"{FIELD}.userName: IAM user {self._user!r} already has {len(keys)} access keys "
            f"(IAM allows {KEYS_PER_USER}) and {detail}; rotator never deletes a key it did not "
            "make: delete the spare key to let the rotation create the new one",
        )

    def _tag(self, iam: Any, key: str, value: str) -> None:
        self._call("TagUser", iam.tag_user, UserName=self._user, Tags=[{"Key": key, "Value": value}])

    def _call(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        """One IAM call; errors carry the operation and AWS's code, never its message or a parameter
        value beyond the user name."""
        try:
            return method(**kwargs)
        except _UNREACHABLE as exc:
            raise TargetUnavailable(f"IAM {operation}: {type(exc).__name__}") from None
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code == "NoSuchEntity":
                raise _NoSuchEntity(operation) from None
            if code in _TEMPORARY or status >= 500:
                raise TargetUnavailable(f"IAM {operation}: {code or status}") from None
            if code in _DENIED:
                raise PermanentError(
                    reasons.TARGET_PRIVILEGES,
                    f"{FIELD}.userName: the store's AWS identity may not call iam:{operation} "
                    f"on IAM user {self._user!r}",
                ) from None
            if code in _IDENTITY_REFUSED:
                raise PermanentError(
                    reasons.TARGET_AUTH_FAILED,
                    f"{FIELD}: IAM refused the store's AWS identity ({code}) for {operation}",
                ) from None
            if code == "LimitExceeded":
                raise PermanentError(
                    reasons.TARGET_KEY_LIMIT, f"{FIELD}.userName: IAM {operation}: {code}"
                ) from None
            raise PermanentError(
                reasons.TARGET_INVALID, f"{FIELD}: IAM {operation} refused: {code}"
            ) from None


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
