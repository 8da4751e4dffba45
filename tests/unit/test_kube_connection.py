"""The connection's I/O without a server (rotator.kube_connection): which kubeconfig files are
read and in what order settings are looked for, token files re-read as they change, and what a
connection refuses at its start. Requests, exec plugins and TLS are proven against servers in
tests/integration/test_kube_connection.py and tests/realkube/test_kube_connection_real.py; the
parsing itself is tabled in tests/unit/test_kubeconfig.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.kube import _TRANSPORT_RETRIES, connection_of
from rotator.kube_connection import KubeConnection, TokenFile, kubeconfig_paths, load_settings
from rotator.kubeconfig import KubeConfigError
from tests.unit.test_kubeconfig import kubeconfig, settings

# --- where the kubeconfig is, and loading it -----------------------------------------------------


def test_which_kubeconfig_files_are_read() -> None:
    assert kubeconfig_paths("/x", {"KUBECONFIG": "/y"}) == (["/x"], True)
    assert kubeconfig_paths(None, {"KUBECONFIG": "/y::/z"}) == (["/y", "/z"], False)
    assert kubeconfig_paths(None, {"HOME": "/home/ops"}) == (["/home/ops/.kube/config"], False)
    home = kubeconfig_paths(None, {})
    assert home[0][0].endswith("/.kube/config")
    assert home[1] is False


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_loading_prefers_an_explicit_kubeconfig_then_the_pod_then_kubeconfig_variable(tmp_path: Path) -> None:
    explicit = write(tmp_path / "explicit", kubeconfig({"server": "https://explicit"}))
    listed = write(tmp_path / "listed", kubeconfig({"server": "https://listed"}))
    mount = tmp_path / "sa"
    mount.mkdir()
    pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", "KUBECONFIG": str(listed)}
    assert load_settings(str(explicit), environ=pod, in_cluster_dir=mount).server == "https://explicit"
    # A pod without its token (automountServiceAccountToken: false): the kubeconfig variable.
    assert load_settings(environ=pod, in_cluster_dir=mount).server == "https://listed"
    (mount / "token").write_text("t")
    assert load_settings(environ=pod, in_cluster_dir=mount).server == "https://10.0.0.1:443"
    missing = {"KUBECONFIG": str(tmp_path / "absent")}
    assert load_settings(environ={**missing, "KUBECONFIG": f"{tmp_path / 'absent'}:{listed}"}).server == (
        "https://listed"
    )


LOAD_REFUSALS = [
    (
        "an explicit file that does not exist",
        "explicit-absent",
        {},
        "kubeconfig {tmp}/explicit-absent does not exist",
    ),
    (
        "no kubeconfig and not in a pod",
        None,
        {"KUBECONFIG": "{tmp}/a"},
        "no kubeconfig found (looked at {tmp}/a) (and in-cluster: not in a pod: KUBERNETES_SERVICE_HOST",
    ),
    (
        "in a pod without a token and no kubeconfig",
        None,
        {"KUBECONFIG": "{tmp}/a", "KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"},
        "(and in-cluster: no service-account token at {tmp}/sa/token)",
    ),
    ("not YAML", "bad", {}, "kubeconfig {tmp}/bad is not valid YAML"),
    ("not a mapping", "list", {}, "kubeconfig {tmp}/list: not a mapping"),
]


@pytest.mark.parametrize(
    ("explicit", "env", "message"), [row[1:] for row in LOAD_REFUSALS], ids=[row[0] for row in LOAD_REFUSALS]
)
def test_loading_refusals_name_what_was_looked_at(
    tmp_path: Path, explicit: str | None, env: dict[str, str], message: str
) -> None:
    (tmp_path / "bad").write_text("clusters: [unclosed\n")
    (tmp_path / "list").write_text("- a\n- b\n")
    (tmp_path / "sa").mkdir()
    environ = {key: value.format(tmp=tmp_path) for key, value in env.items()}
    with pytest.raises(KubeConfigError) as refused:
        load_settings(
            str(tmp_path / explicit) if explicit else None, environ=environ, in_cluster_dir=tmp_path / "sa"
        )
    assert message.format(tmp=tmp_path) in str(refused.value)


# --- token files ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_token_file_is_re_read_when_it_changed_at_the_next_look(tmp_path: Path) -> None:
    path, clock = tmp_path / "token", Clock()
    path.write_text("first\n")
    tokens = TokenFile(str(path), recheck=10.0, clock=clock)
    assert tokens.token() == "first"
    path.write_text("second")
    clock.now += 9.0
    assert tokens.token() == "first"  # not looked at yet
    clock.now += 1.0
    assert tokens.token() == "second"


def test_renewing_a_token_file_reads_it_now_and_says_whether_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first")
    tokens = TokenFile(str(path), recheck=3600.0, clock=Clock())
    assert tokens.renew() is False
    path.write_text("second")
    assert tokens.renew() is True
    assert tokens.token() == "second"


def test_a_token_file_briefly_absent_keeps_the_last_token(tmp_path: Path) -> None:
    path, clock = tmp_path / "token", Clock()
    path.write_text("kept")
    tokens = TokenFile(str(path), recheck=1.0, clock=clock)
    path.unlink()
    clock.now += 5.0
    assert tokens.token() == "kept"
    assert tokens.renew() is False
    path.write_text("")  # an empty file is no token either
    assert (tokens.renew(), tokens.token()) == (False, "kept")


def test_a_token_file_missing_or_empty_at_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match=r"token file .* is missing or empty"):
        TokenFile(str(tmp_path / "absent"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(KubeConfigError, match="is missing or empty"):
        TokenFile(str(tmp_path / "empty"))


def test_kopf_is_never_handed_a_tls_server_name_it_would_not_honour() -> None:
    found = settings(kubeconfig({"tls-server-name": "kubernetes.default.svc"}, {"token": "t"}))
    connection = KubeConnection(found, maxsize=1, retries=_TRANSPORT_RETRIES)
    try:
        assert connection.credentials().token == "t"  # rotator's own requests honour it
        with pytest.raises(KubeConfigError, match="tls-server-name is not supported by Kopf's client"):
            connection_of(connection)
    finally:
        connection.close()


def test_a_missing_token_file_names_where_it_was_configured(tmp_path: Path) -> None:
    found = settings(kubeconfig(user={"tokenFile": str(tmp_path / "absent")}))
    with pytest.raises(KubeConfigError) as refused:
        KubeConnection(found, maxsize=1, retries=_TRANSPORT_RETRIES)
    assert str(refused.value) == (
        f"kubeconfig /cfg/kube/config, context main: token file {tmp_path / 'absent'} is missing or empty"
    )
