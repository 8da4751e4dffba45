"""``RotationPolicy.spec`` as frozen pydantic models that mirror the CRD schema field by field.

The CRD is what users hit first (kubectl gets a 422); these models are what the operator trusts.
Both must agree, which tests/unit/test_crd_table.py checks over a table of good and bad specs:
same constraints, same defaults, and an error naming the same ``spec.…`` field. Strings, ints and
bools are strict because the API server never coerces ``"32"`` into 32.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from rotator.models.durations import (
    TEN_YEARS,
    CronExpression,
    GoDuration,
    duration_within,
    parse_duration,
)
from rotator.models.errors import InvalidSpecError
from rotator.models.memo import Memo
from rotator.models.zones import load_zone

DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN: Final = r"^[-._a-zA-Z0-9]+$"
URL_PATTERN: Final = r"^https?://[^\s/?#]+(/[^\s]*)?$"
VAULT_PATH_PATTERN: Final = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"
AWS_REGION_PATTERN: Final = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"
MAX_RESTART_TARGETS: Final = 50
MIN_INTERVAL: Final = timedelta(minutes=1)
# Duration maxima (see models/durations.py for why every duration is bounded at all). Each is far
# beyond any sensible value and far below what datetime arithmetic or Go's int64 can hold:
MAX_SCHEDULE: Final = TEN_YEARS  # interval, maxAge, jitter: 87600h; "never" is leaving them unset
MAX_VERIFY_TIMEOUT: Final = timedelta(hours=24)  # a rollout that needs a day is a stuck rollout
MAX_GRACE_PERIOD: Final = timedelta(hours=720)  # 30 days of stragglers; the old credential stays
# valid all that time, which is the opposite of what rotating it is for

ResourceName = Annotated[str, StringConstraints(strict=True, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
SecretKey = Annotated[str, StringConstraints(strict=True, max_length=253, pattern=SECRET_KEY_PATTERN)]
Url = Annotated[str, StringConstraints(strict=True, max_length=2048, pattern=URL_PATTERN)]
MountPath = Annotated[str, StringConstraints(strict=True, max_length=256, pattern=VAULT_PATH_PATTERN)]
#: A PostgreSQL role name rotator may create: lower-case, unquoted-identifier safe, short enough
#: for the ``_a``/``_b`` suffixes within PostgreSQL's 63-byte limit.
PG_ROLE_PATTERN: Final = r"^[a-z_][a-z0-9_]*$"
PgRoleName = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=61, pattern=PG_ROLE_PATTERN)
]
#: An IAM user name (IAM's own rule: 1-64 of letters, digits and ``+=,.@_-``).
IAM_USER_PATTERN: Final = r"^[A-Za-z0-9+=,.@_-]{1,64}$"
IamUserName = Annotated[str, StringConstraints(strict=True, pattern=IAM_USER_PATTERN)]
MAX_TEMPLATE_KEYS: Final = 16
TemplateText = Annotated[str, StringConstraints(strict=True, max_length=1024)]


def _no_dot_segments(path: str) -> str:
    # The CRD's CEL rule on spec.path: '.'/'..' would let an HTTP client climb out of the prefix.
    if any(segment in (".", "..") for segment in path.split("/")):
        raise PydanticCustomError("dot_segment", "must not contain '.' or '..' segments")
    return path


VaultPath = Annotated[
    str,
    StringConstraints(strict=True, max_length=512, pattern=VAULT_PATH_PATTERN),
    AfterValidator(_no_dot_segments),
]
Interval = Annotated[GoDuration, AfterValidator(duration_within(MAX_SCHEDULE, minimum=MIN_INTERVAL))]
ScheduleDuration = Annotated[GoDuration, AfterValidator(duration_within(MAX_SCHEDULE))]
VerifyTimeout = Annotated[GoDuration, AfterValidator(duration_within(MAX_VERIFY_TIMEOUT))]
GracePeriod = Annotated[GoDuration, AfterValidator(duration_within(MAX_GRACE_PERIOD))]


class Alphabet(StrEnum):
    """Characters a generated password is drawn from."""

    ALPHANUMERIC = "alphanumeric"
    ASCII_PRINTABLE = "ascii-printable"
    HEX = "hex"


class WorkloadKind(StrEnum):
    """Workloads rotator can restart (pod-template annotation) and watch roll out."""

    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"


class StoreKind(StrEnum):
    """Which store a spec names; the value is ``status.storeKind`` (the Store printer column)."""

    VAULT = "Vault"
    AWS_SECRETS_MANAGER = "AWSSecretsManager"


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are a bug, values immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


def _exactly_one(model: BaseModel, message: str) -> None:
    """The CRD's "exactly one of" CEL rule: one member set, named on the parent field."""
    if sum(getattr(model, name) is not None for name in type(model).model_fields) != 1:
        raise PydanticCustomError("exactly_one", message)


class DeletionPolicy(StrEnum):
    """What happens to the Secret when its policy is deleted (default: it stays, consumers keep
    working; ``Delete`` makes it owned by the policy, so Kubernetes' garbage collector removes it)."""

    RETAIN = "Retain"
    DELETE = "Delete"


class SecretSpec(_Model):
    """The Kubernetes Secret that carries the credential into the namespace.

    ``key`` holds the password (or secret access key), ``usernameKey`` the user name (or access
    key id) of credentials that have one (``CredentialSpec.secret_field``/``name_field``), and
    ``template`` further keys rendered from the credential's fields (``{{ .username }}``,
    ``{{ .password | urlquery }}``; see :mod:`rotator.targets.shape`).
    """

    name: ResourceName
    key: SecretKey = "password"
    username_key: SecretKey = "username"
    previous_key: SecretKey | None = None
    template: Annotated[dict[SecretKey, TemplateText], Field(max_length=MAX_TEMPLATE_KEYS)] = Field(
        default_factory=dict
    )
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN

    @property
    def delete_with_policy(self) -> bool:
        return self.deletion_policy is DeletionPolicy.DELETE

    @model_validator(mode="after")
    def _keys_differ(self) -> Self:
        if self.previous_key is not None and self.previous_key == self.key:
            raise PydanticCustomError("keys_differ", "previousKey must differ from key")
        if self.username_key == self.key:
            raise PydanticCustomError("keys_differ", "usernameKey must differ from key")
        taken = {self.key, self.username_key, self.previous_key}
        if taken & set(self.template):
            raise PydanticCustomError(
                "keys_differ", "template keys must differ from key, usernameKey and previousKey"
            )
        return self


class PasswordCredential(_Model):
    """A random password made by the operator (the ``password`` target needs no remote call)."""

    length: Annotated[StrictInt, Field(ge=16, le=256)] = 32
    alphabet: Alphabet = Alphabet.ALPHANUMERIC


class SecretKeyRef(_Model):
    """A key of a Secret in the policy's namespace."""

    name: ResourceName
    key: SecretKey


class PostgresConnectionRef(SecretKeyRef):
    """The admin connection: a libpq URI (``postgresql://admin:pw@host:5432/db``) under ``key``."""

    key: SecretKey = "dsn"


class PostgresRoleCredential(_Model):
    """Alternating PostgreSQL login roles ``<role>_a`` / ``<role>_b``, both members of
    ``groupRole`` (which holds the grants): each rotation sets a fresh password on the inactive
    one and, once the new one is verified, locks the old one (NOLOGIN, password reset)."""

    connection_secret_ref: PostgresConnectionRef
    role: PgRoleName
    group_role: PgRoleName
    length: Annotated[StrictInt, Field(ge=16, le=256)] = 32
    alphabet: Alphabet = Alphabet.ALPHANUMERIC

    @model_validator(mode="after")
    def _distinct_roles(self) -> Self:
        if self.group_role in (self.role, f"{self.role}_a", f"{self.role}_b"):
            raise PydanticCustomError("distinct_roles", "groupRole must differ from the login roles")
        return self

    @property
    def login_roles(self) -> tuple[str, str]:
        return f"{self.role}_a", f"{self.role}_b"


#: A Vault database role name (``<mount>/creds/<role>``): one path segment.
VAULT_ROLE_PATTERN: Final = r"^[A-Za-z0-9._-]+$"
VaultRoleName = Annotated[
    str,
    StringConstraints(strict=True, max_length=128, pattern=VAULT_ROLE_PATTERN),
    AfterValidator(_no_dot_segments),
]
#: A host name or an IP address to log in to (no scheme, no port).
HOST_PATTERN: Final = r"^[A-Za-z0-9]([-A-Za-z0-9.:]*[A-Za-z0-9])?$"
DB_NAME_PATTERN: Final = r"^[A-Za-z0-9_][-A-Za-z0-9_.]*$"


class VaultDatabaseLogin(_Model):
    """Where step 5 logs in with the new credential (PostgreSQL), to prove the database accepts
    it. The Vault connection URL of the database is not readable with the policy's Vault
    session, so it is named here."""

    host: Annotated[str, StringConstraints(strict=True, max_length=253, pattern=HOST_PATTERN)]
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 5432
    database: Annotated[str, StringConstraints(strict=True, max_length=63, pattern=DB_NAME_PATTERN)]


class VaultDatabaseCredential(_Model):
    """Vault's database secrets engine: each rotation reads ``<mount>/creds/<role>`` (a new
    database user and lease) with the store's Vault session; the old lease is revoked after
    verification; the current lease is renewed while renewable."""

    mount: Annotated[MountPath, AfterValidator(_no_dot_segments)] = "database"
    role: VaultRoleName
    #: When set, verify logs in to PostgreSQL there; otherwise verify looks the lease up in Vault.
    verify: VaultDatabaseLogin | None = None


#: The fields of an ``awsIamAccessKey`` credential (the JSON object in the store, template names).
AWS_KEY_ID_FIELD: Final = "accessKeyId"
AWS_SECRET_FIELD: Final = "secretAccessKey"


class AwsIamAccessKeyCredential(_Model):
    """The access keys of an IAM user, rotated by the two-key dance: each rotation creates the
    user's second key, consumers move to it, ``sts:GetCallerIdentity`` proves it, and only then is
    the old key deactivated and deleted. Needs an AWS Secrets Manager store: its identity (the
    namespace's) manages the keys (see :mod:`rotator.targets.aws_iam`)."""

    user_name: IamUserName


class CredentialKind(StrEnum):
    """``status.credentialKind`` and the ``kind`` label of the target metrics."""

    PASSWORD = "password"
    POSTGRES_ROLE = "postgresRole"
    VAULT_DATABASE = "vaultDatabase"
    AWS_IAM_ACCESS_KEY = "awsIamAccessKey"


class CredentialSpec(_Model):
    """How a new credential is made; exactly one kind."""

    password: PasswordCredential | None = None
    postgres_role: PostgresRoleCredential | None = None
    vault_database: VaultDatabaseCredential | None = None
    aws_iam_access_key: AwsIamAccessKeyCredential | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(
            self, "exactly one of password, postgresRole, vaultDatabase or awsIamAccessKey must be set"
        )
        return self

    @property
    def kind(self) -> CredentialKind:
        if self.vault_database is not None:
            return CredentialKind.VAULT_DATABASE
        if self.aws_iam_access_key is not None:
            return CredentialKind.AWS_IAM_ACCESS_KEY
        return CredentialKind.POSTGRES_ROLE if self.postgres_role is not None else CredentialKind.PASSWORD

    @property
    def fields(self) -> tuple[str, ...]:
        """The credential's fields, as templates name them (``{{ .username }}``)."""
        if self.kind is CredentialKind.AWS_IAM_ACCESS_KEY:
            return (AWS_KEY_ID_FIELD, AWS_SECRET_FIELD)
        return ("password",) if self.kind is CredentialKind.PASSWORD else ("username", "password")

    @property
    def secret_field(self) -> str:
        """The field ``secret.key`` (and ``secret.previousKey``) carries: the secret part."""
        return AWS_SECRET_FIELD if self.kind is CredentialKind.AWS_IAM_ACCESS_KEY else "password"

    @property
    def name_field(self) -> str | None:
        """The field ``secret.usernameKey`` carries (the user name, the access key id), if any."""
        return next((f for f in self.fields if f != self.secret_field), None)


class StoreRef(_Model):
    """Which admin-defined store holds the credential (DESIGN §6): a ``RotationStore`` of this
    namespace, or a ``ClusterRotationStore`` that allows this namespace."""

    kind: Annotated[
        str, StringConstraints(strict=True, pattern=r"^(RotationStore|ClusterRotationStore)$")
    ] = "RotationStore"
    name: ResourceName


def _delta(text: str | None) -> timedelta | None:
    return parse_duration(text) if text is not None else None


TIME_ZONE_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
WALL_CLOCK_PATTERN: Final = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def _known_zone(name: str) -> str:
    # The CRD can only check the shape; whether the tz database knows the name is the models'
    # (like a cron line that never fires): the operator says InvalidSpec naming the field.
    try:
        load_zone(name)
    except ValueError as exc:
        raise PydanticCustomError("time_zone", str(exc)) from None
    return name


TimeZoneName = Annotated[
    str, StringConstraints(strict=True, max_length=64, pattern=TIME_ZONE_PATTERN), AfterValidator(_known_zone)
]
WallClock = Annotated[str, StringConstraints(strict=True, pattern=WALL_CLOCK_PATTERN)]


class Weekday(StrEnum):
    """``schedule.window.days``: the day a window opens on."""

    MON = "Mon"
    TUE = "Tue"
    WED = "Wed"
    THU = "Thu"
    FRI = "Fri"
    SAT = "Sat"
    SUN = "Sun"


ALL_DAYS: Final = tuple(Weekday)


class WindowSpec(_Model):
    """A maintenance window: scheduled and maxAge rotations start only inside it.

    ``start``/``end`` are wall-clock ``HH:MM`` in ``timeZone`` (default: the schedule's, else
    UTC); ``end`` before ``start`` runs past midnight. ``days`` names the day it opens.
    """

    days: Annotated[tuple[Weekday, ...], Field(min_length=1, max_length=7)] = ALL_DAYS
    start: WallClock
    end: WallClock
    time_zone: TimeZoneName | None = None

    @field_validator("days")
    @classmethod
    def _unique_days(cls, days: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        # The CRD's x-kubernetes-list-type: set.
        for index, day in enumerate(days):
            if day in days[:index]:
                raise PydanticCustomError(
                    "duplicate", "duplicate value {day}", {"index": index, "day": str(day)}
                )
        return days

    @model_validator(mode="after")
    def _spans_time(self) -> Self:
        if self.start == self.end:
            raise PydanticCustomError("empty_window", "start and end must differ")
        return self


class ScheduleSpec(_Model):
    """When to rotate; without interval or cron only force and maxAge trigger a rotation.

    ``interval`` is 1m to 87600h, ``maxAge`` and ``jitter`` at most 87600h (ten years); ``cron``
    is read in ``timeZone`` (an IANA name, default UTC); ``window`` gates scheduled and maxAge
    rotations.
    """

    interval: Interval | None = None
    cron: CronExpression | None = None
    time_zone: TimeZoneName | None = None
    max_age: ScheduleDuration | None = None
    jitter: ScheduleDuration | None = None
    window: WindowSpec | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        # Same order and wording as the CRD's x-kubernetes-validations on spec.schedule.
        if self.interval is not None and self.cron is not None:
            raise PydanticCustomError("exclusive", "interval and cron are mutually exclusive")
        interval, max_age = self.interval_delta, self.max_age_delta
        if interval is not None and max_age is not None and max_age < interval:
            raise PydanticCustomError("max_age", "maxAge must not be shorter than interval")
        return self

    @property
    def interval_delta(self) -> timedelta | None:
        return _delta(self.interval)

    @property
    def max_age_delta(self) -> timedelta | None:
        return _delta(self.max_age)

    @property
    def jitter_delta(self) -> timedelta | None:
        return _delta(self.jitter)


class RestartTarget(_Model):
    """A workload in the policy's namespace that consumes the Secret."""

    kind: WorkloadKind
    name: ResourceName


class RestartSpec(_Model):
    """Workloads restarted after the Secret changes, at most ``max_concurrent`` at a time.

    ``auto`` adds, Reloader-style, every Deployment, StatefulSet and DaemonSet of the policy's
    namespace whose pod template reads the Secret (found from the pod templates, see
    :mod:`rotator.workloads.discovery`) to the explicit ``targets``.
    """

    targets: Annotated[tuple[RestartTarget, ...], Field(max_length=MAX_RESTART_TARGETS)] = ()
    auto: StrictBool = False
    max_concurrent: Annotated[StrictInt, Field(ge=1, le=50)] = 5

    @field_validator("targets")
    @classmethod
    def _unique(cls, targets: tuple[RestartTarget, ...]) -> tuple[RestartTarget, ...]:
        # The CRD's x-kubernetes-list-type: map keyed by (kind, name); the index names the item.
        seen: set[tuple[str, str]] = set()
        for index, target in enumerate(targets):
            key = (str(target.kind), target.name)
            if key in seen:
                raise PydanticCustomError(
                    "duplicate",
                    "duplicate value {kind}/{name}",
                    {"index": index, "kind": key[0], "name": key[1]},
                )
            seen.add(key)
        return targets


class VerifySpec(_Model):
    """How long the rollout and the new credential get to prove themselves: at most 24h."""

    timeout: VerifyTimeout = "10m"

    @property
    def timeout_delta(self) -> timedelta:
        return parse_duration(self.timeout)


class RevokeSpec(_Model):
    """How long after verification the old credential stays valid for stragglers: at most 720h."""

    grace_period: GracePeriod = "5m"

    @property
    def grace_period_delta(self) -> timedelta:
        return parse_duration(self.grace_period)


class RotationPolicySpec(_Model):
    """``RotationPolicy.spec``: see crds/rotationpolicies.rotator.dev.yaml for the documentation."""

    secret: SecretSpec
    credential: CredentialSpec
    store_ref: StoreRef
    path: VaultPath
    adopt: StrictBool = False
    schedule: ScheduleSpec = ScheduleSpec()
    restart: RestartSpec = RestartSpec()
    verify: VerifySpec = VerifySpec()
    revoke: RevokeSpec = RevokeSpec()
    suspend: StrictBool = False
    dry_run: StrictBool = False

    @model_validator(mode="after")
    def _templates_name_known_fields(self) -> Self:
        for key, text in self.secret.template.items():
            problem = template_problem(text, self.credential.fields)
            if problem is not None:
                # The error names the template entry (ctx "field"), the way the API server would.
                raise PydanticCustomError(
                    "template", "{problem}", {"field": f"secret.template[{key}]", "problem": problem}
                )
        return self


_TEMPLATE_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_TEMPLATE_FIELD = re.compile(r"^\s*\.([a-zA-Z]+)\s*(\|\s*urlquery\s*)?$")


def template_problem(text: str, fields: tuple[str, ...]) -> str | None:
    """Why ``text`` is not a template rotator renders, or None. The language is a small subset of
    Go's (as External Secrets templates): ``{{ .field }}`` and ``{{ .field | urlquery }}``."""
    for action in _TEMPLATE_ACTION.findall(text):
        match = _TEMPLATE_FIELD.match(action)
        if match is None:
            return "only {{ .field }} and {{ .field | urlquery }} are supported"
        if match.group(1) not in fields:
            return (
                f"unknown field .{match.group(1)} (this credential has {', '.join('.' + f for f in fields)})"
            )
    rest = _TEMPLATE_ACTION.sub("", text)
    if "{{" in rest or "}}" in rest:
        return "unbalanced {{ }}"
    return None


def _drop_nulls(value: Any) -> Any:
    """kube-apiserver drops null in non-nullable fields (defaulting them if it can); no spec field
    is nullable, so an explicit ``key: null`` means "default", as on a real cluster."""
    if isinstance(value, Mapping):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _field_path(loc: tuple[int | str, ...], ctx: Mapping[str, Any] | None) -> str:
    path = "spec"
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}"
    if ctx and isinstance(ctx.get("index"), int):
        path = f"{path}[{ctx['index']}]"
    if ctx and isinstance(ctx.get("field"), str):
        path = f"{path}.{ctx['field']}"
    return path


#: Specs validated lately, by their encoding: a policy's spec is validated on every reconcile
#: (three or four in a rotation) and rarely changes, and the model is frozen, so one can be
#: shared. One per policy up to 2,048 (~5.5 KiB each with its key: 11 MiB at most): with fewer
#: entries than policies, a mass rotation evicts each spec before its policy's next reconcile.
_PARSED: Final[Memo[RotationPolicySpec]] = Memo(2048)


def parse_spec(raw: Mapping[str, Any]) -> RotationPolicySpec:
    """Validate a raw ``spec`` mapping; raise :class:`InvalidSpecError` naming the first bad field."""
    return _PARSED.get(raw, _validate_spec)


def _validate_spec(raw: Mapping[str, Any]) -> RotationPolicySpec:
    try:
        return RotationPolicySpec.model_validate(_drop_nulls(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "field not declared in schema"
        message = message[:1].lower() + message[1:]
        raise InvalidSpecError(_field_path(tuple(first["loc"]), first.get("ctx")), message) from None
