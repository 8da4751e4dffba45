"""Safe manifest parsing: alias bombs, oversized and deeply nested input are refused quickly, with
the file named; ordinary multi-document files parse as before. Also ``rotator validate`` on them,
and the shipped install: two replicas under leader election (manifests and chart alike)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rotator import cli
from rotator.models import LeaderElection
from rotator.models.manifests import (
    MAX_DEPTH,
    MAX_MANIFEST_BYTES,
    ManifestError,
    load_manifests,
    parse_manifests,
)

ROOT = Path(__file__).resolve().parents[2]

POLICY = """\
apiVersion: rotator.dev/v1alpha1
kind: RotationPolicy
metadata: {name: orders-db, namespace: shop}
spec:
  secret: {name: orders-db-credentials}
  credential: {password: {}}
  storeRef: {kind: ClusterRotationStore, name: vault-prod}
  path: orders-db
"""

# The classic "billion laughs": nine levels of nine aliases, 10**9 strings once expanded.
BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_multi_document_files_parse() -> None:
    text = POLICY + "---\n" + POLICY.replace("orders-db,", "billing-db,") + "---\n---\n{kind: ConfigMap}\n"
    docs = parse_manifests(text)
    assert [d["metadata"]["name"] for d in docs[:2]] == ["orders-db", "billing-db"]
    assert docs[2] == {"kind": "ConfigMap"}
    assert len(docs) == 3  # the empty document is dropped


def test_json_and_a_bom_parse() -> None:
    assert parse_manifests(b'\xef\xbb\xbf{"kind": "RotationPolicy", "spec": {"suspend": true}}') == [
        {"kind": "RotationPolicy", "spec": {"suspend": True}}
    ]


def test_anchors_without_aliases_are_harmless_and_accepted() -> None:
    assert parse_manifests("a: &x {b: 1}\n") == [{"a": {"b": 1}}]


def test_billion_laughs_is_refused_at_the_first_alias() -> None:
    with pytest.raises(ManifestError) as refused:
        parse_manifests(BILLION_LAUGHS, "bomb.yaml")
    assert refused.value.source == "bomb.yaml"
    assert refused.value.problem.startswith("YAML alias at line 2, column 8: aliases are not supported")
    assert str(refused.value).startswith("bomb.yaml: YAML alias")


def test_a_single_alias_is_refused_too() -> None:
    with pytest.raises(ManifestError, match="line 2, column 4: aliases are not supported"):
        parse_manifests("a: &x 1\nb: *x\n")


def test_oversized_input_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * MAX_MANIFEST_BYTES + b"\n")
    with pytest.raises(ManifestError) as refused:
        load_manifests(big)
    assert refused.value.source == str(big)
    assert refused.value.problem == "larger than 1 MiB (manifest files are limited to it)"
    with pytest.raises(ManifestError, match="larger than 10 bytes"):
        parse_manifests("kind: ConfigMap\n", max_bytes=10)


def test_input_just_under_the_limit_parses() -> None:
    text = "kind: ConfigMap\n# " + "x" * (MAX_MANIFEST_BYTES - 40) + "\n"
    assert parse_manifests(text) == [{"kind": "ConfigMap"}]


def test_deep_nesting_is_refused_without_a_recursion_error() -> None:
    with pytest.raises(ManifestError, match=f"nesting deeper than {MAX_DEPTH} levels"):
        parse_manifests("[" * 200_000 + "]" * 200_000)
    assert parse_manifests("[" * MAX_DEPTH + "]" * MAX_DEPTH)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"a: [1, 2\n", "invalid YAML: while parsing a flow sequence"),
        (b"kind: \xff\xfe\n", "not UTF-8 text (invalid start byte at byte 6)"),
    ],
)
def test_broken_input_names_the_problem(data: bytes, problem: str) -> None:
    with pytest.raises(ManifestError) as refused:
        parse_manifests(data, "x.yaml")
    assert refused.value.problem.startswith(problem)


def test_a_missing_file_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"missing\.yaml: cannot read: No such file or directory"):
        load_manifests(tmp_path / "missing.yaml")


# --- rotator validate ---------------------------------------------------------------------------


def validate(capsys: pytest.CaptureFixture[str], *files: Path) -> tuple[int, list[str]]:
    code = cli.main(["validate", *map(str, files)])
    return code, capsys.readouterr().out.splitlines()


def test_validate_refuses_an_alias_bomb_and_still_checks_the_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(POLICY + "---\n" + BILLION_LAUGHS)
    good = tmp_path / "good.yaml"
    good.write_text(POLICY)
    code, lines = validate(capsys, bomb, good)
    assert code == 1
    assert lines == [
        f"{bomb}: invalid: YAML alias at line 11, column 8: aliases are not supported "
        "(Kubernetes stores JSON, which has none); write the value out",
        f"{good}: orders-db: ok",
    ]


def test_validate_refuses_an_oversized_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(POLICY + "#" * MAX_MANIFEST_BYTES)
    code, lines = validate(capsys, big)
    assert (code, lines) == (1, [f"{big}: invalid: larger than 1 MiB (manifest files are limited to it)"])


def test_validate_reports_broken_yaml_and_odd_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: RotationPolicy\nspec: [\n")
    odd = tmp_path / "odd.yaml"
    odd.write_text("kind: RotationPolicy\nmetadata: [x]\nspec: {}\n")
    code, lines = validate(capsys, broken, odd)
    assert code == 1
    assert lines[0].startswith(f"{broken}: invalid: invalid YAML: ")
    assert lines[1] == f"{odd}: ?: invalid: spec.secret: field required"


def test_validate_accepts_a_multi_document_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    both = tmp_path / "both.yaml"
    both.write_text(POLICY + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n" + POLICY)
    assert validate(capsys, both) == (0, [f"{both}: orders-db: ok", f"{both}: orders-db: ok"])


# --- the shipped install ------------------------------------------------------------------------


def test_the_shipped_deployment_runs_two_replicas_under_leader_election() -> None:
    """manifests/base/deployment.yaml: two replicas, so a standby is running when the leader
    dies; only the Lease holder reconciles (leader election on, as its args parse with the real
    CLI), in the pod's namespace, under the pod's name; the Lease timings are the documented ones."""
    (deployment,) = load_manifests(ROOT / "manifests" / "base" / "deployment.yaml")
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = cli.build_parser().parse_args(["run", *container["args"]])
    assert args.leader_election, "two replicas without leader election would both rotate"
    election = cli.leader_election_settings(args)
    defaults = LeaderElection()
    assert (election.lease_duration, election.renew_deadline, election.retry_period) == (
        defaults.lease_duration,
        defaults.renew_deadline,
        defaults.retry_period,
    )
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    assert env["POD_NAMESPACE"] == "metadata.namespace", "the Lease lives in the operator's namespace"
    assert env["POD_NAME"] == "metadata.name", "the holder identity names the pod"
    (kustomization,) = load_manifests(ROOT / "manifests" / "base" / "kustomization.yaml")
    assert "leader-election-role.yaml" in kustomization["resources"], "the Lease verbs are granted"


def test_the_chart_runs_two_replicas_by_default() -> None:
    (values,) = load_manifests(ROOT / "charts" / "rotator" / "values.yaml")
    assert values["replicas"] == 2
    defaults = LeaderElection()
    assert values["leaderElection"] == {
        "leaseDuration": defaults.lease_duration,
        "renewDeadline": defaults.renew_deadline,
        "retryPeriod": defaults.retry_period,
    }
    assert "--leader-election" not in " ".join(values["extraArgs"]), "on unless turned off"
