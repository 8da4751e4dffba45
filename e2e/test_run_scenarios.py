"""e2e/run.sh's step 9 runs the suite's own rotation scenarios on kind: its pytest command, with
the variable it sets, selects tests/integration/test_rotation.py's scenarios on the "kubeconfig"
backend. Renaming the backend, its variable or the module would otherwise leave kind running no
scenario, found only by someone with Docker. (Checked without a pytest run of its own: that
would cost the suite seconds of imports for the same facts.)"""

from __future__ import annotations

import re
from pathlib import Path

from tests.fixtures.kube_backends import BACKENDS, KUBECONFIG, KUBECONFIG_ENV, backends
from tests.integration import test_rotation

REPO = Path(__file__).resolve().parent.parent
RUN_SH = REPO / "e2e" / "run.sh"


def test_step_9_selects_the_rotation_scenarios_on_the_kubeconfig_backend() -> None:
    script = RUN_SH.read_text()
    command = re.search(r"-m pytest (?P<args>[^\n]*?) -k (?P<expr>\S+)\n", script)
    assert command is not None, "run.sh's step 9 pytest command not found"
    paths = [arg for arg in command["args"].split() if arg.startswith("tests/")]
    assert paths == ["tests/integration/test_rotation.py"]
    assert (REPO / paths[0]) == Path(test_rotation.__file__).resolve()
    assert f"{KUBECONFIG_ENV}=" in script
    # -k matches the parameter id, the backend's name; no scenario's name contains it.
    assert command["expr"] == KUBECONFIG
    assert not [name for name in dir(test_rotation) if name.startswith("test_") and KUBECONFIG in name]
    # With the variable set the module's parametrisation offers the backend; without, it does not.
    marks = test_rotation.pytestmark
    [mark] = [m for m in (marks if isinstance(marks, list) else [marks]) if m.name == "parametrize"]
    assert mark.args[0] == "kube_backend"
    assert mark.args[1] is BACKENDS
    assert KUBECONFIG in backends({KUBECONFIG_ENV: "kind.kubeconfig"})
    assert KUBECONFIG not in backends({})
