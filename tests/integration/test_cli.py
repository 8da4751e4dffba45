"""The command line as a user meets it: `rotator sandbox --once` for both scenarios, `rotator
validate`, and the package layout rule (`import operator` is still the standard library)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.descendants import watch_leftovers
from tests.fixtures.rotation import Bench


def rotator(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rotator", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [("rotation", "result: Succeeded"), ("failed-rollout", "result: RolledBack")],
)
def test_sandbox_once_runs_the_scenario_and_stops_everything(
    tmp_path: Path, scenario: str, expected: str
) -> None:
    with watch_leftovers() as leftovers:
        result = rotator("sandbox", "--once", "--scenario", scenario, "--dir", str(tmp_path / "sandbox"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert expected in out
    assert f"scenario {scenario}: as expected" in out
    for step in ("generate", "dual", "sync", "restart", "verify"):
        assert f" {step} " in out, f"timeline lacks {step}"
    assert ("revoke" if scenario == "rotation" else "rollback") in out
    assert "rotator_rotations_total" in out
    assert "kubectl --kubeconfig" in out
    assert (tmp_path / "sandbox" / "kubeconfig").exists()
    if scenario == "rotation":
        # The alternating-users demo: the role moves, consumers log in throughout, none refused.
        assert "PostgreSQL demo (demo-pg): active role demo_app_a" in out
        assert "role demo_app_a -> demo_app_b (demo_app_a locked: NOLOGIN)" in out
        assert ", 0 refused" in out
    assert leftovers.pids == set(), "the sandbox left processes behind"


def test_validate_names_the_offending_field(tmp_path: Path) -> None:
    good = Path(__file__).parents[2] / "manifests" / "examples" / "vault-rotationpolicy.yaml"
    assert rotator("validate", str(good)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: rotator.dev/v1alpha1\nkind: RotationPolicy\nmetadata: {name: x}\n"
        "spec:\n  secret: {name: s}\n  credential: {password: {length: 8}}\n"
        "  store: {vault: {address: http://v:8200, path: p, auth: {tokenSecretRef: {name: t}}}}\n"
    )
    result = rotator("validate", str(bad))
    assert result.returncode == 1
    assert "spec.credential.password.length" in result.stdout


def test_import_operator_is_still_the_standard_library() -> None:
    import operator

    import rotator

    assert operator.__file__ is not None
    assert "site-packages" not in operator.__file__
    assert Path(operator.__file__).name == "operator.py"
    assert hasattr(operator, "itemgetter")
    assert Path(rotator.__file__).parent.parent.name == "operator"
    assert not (Path(rotator.__file__).parent.parent / "__init__.py").exists()


def test_force_and_status_commands_drive_a_live_operator(bench: Bench) -> None:
    bench.seed()
    bench.operator.start()
    bench.wait_rotations(1)
    kubeconfig = str(bench.operator.kubeconfig)
    forced = rotator("force", "demo-db", "-n", "shop", "--kubeconfig", kubeconfig, "--value", "cli-1")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "rotator.dev/force-rotate=cli-1" in forced.stdout
    bench.wait_rotations(2)
    listing = rotator("status", "--kubeconfig", kubeconfig).stdout.splitlines()
    assert listing[0].split()[:4] == ["NAMESPACE", "NAME", "STORE", "PHASE"]
    row = next(line.split() for line in listing if " demo-db " in f" {line} ")
    assert row[:5] == ["shop", "demo-db", "Vault", "Idle", "2"]
    missing = rotator("force", "nope", "-n", "shop", "--kubeconfig", kubeconfig)
    assert missing.returncode == 1
    assert "shop/nope" in missing.stdout


def test_sandbox_keeps_running_until_ctrl_c_then_stops_everything(tmp_path: Path) -> None:
    with watch_leftovers() as leftovers:
        process = subprocess.Popen(
            [sys.executable, "-m", "rotator", "sandbox", "--dir", str(tmp_path / "sandbox")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert process.stdout is not None
            seen = []
            for line in process.stdout:
                seen.append(line)
                if "press Ctrl-C" in line:
                    break
            assert any("scenario rotation: as expected" in line for line in seen), "".join(seen)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
    assert leftovers.pids == set(), "Ctrl-C left processes behind"


ABANDON_A_SERVER = "import subprocess; subprocess.Popen(['sleep', '60'], start_new_session=True)"


def test_leftover_watch_sees_what_a_command_abandons_and_nothing_else() -> None:
    """The check above can fail: a command that leaves a server running in its own session."""
    with watch_leftovers() as leftovers:
        subprocess.run([sys.executable, "-c", ABANDON_A_SERVER], check=True)
    assert len(leftovers.pids) == 1
    with watch_leftovers() as nothing:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert nothing.pids == set()
