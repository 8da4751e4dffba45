"""The schedule's time zone and maintenance window rows, judged by a real kube-apiserver (its
structural schema, list-type set and CEL), as tests/realkube/test_control_plane.py does for the
main CRD table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rotator.sandbox.realkube import ApiError, RealKubeServer
from tests.realkube.test_control_plane import _dry_run_create, crd_installed  # noqa: F401 (fixture)
from tests.unit.test_crd_schedule_table import BAD, GOOD

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def shop(real_kube: RealKubeServer, crd_installed: None) -> str:  # noqa: F811
    """The rows live in ``shop``; the control-plane module may have made it already."""
    try:
        real_kube.api("POST", "/api/v1/namespaces", {"metadata": {"name": "shop"}})
    except ApiError as exc:
        if exc.status != 409:
            raise
    return "shop"


@pytest.mark.parametrize("build", GOOD)
def test_schedule_good_rows_are_accepted_by_the_real_server(
    real_kube: RealKubeServer, shop: str, build: Callable[[], Obj]
) -> None:
    _dry_run_create(real_kube, build())


@pytest.mark.parametrize(("build", "field"), BAD)
def test_schedule_bad_rows_are_refused_by_the_real_server(
    real_kube: RealKubeServer, shop: str, build: Callable[[], Obj], field: str
) -> None:
    with pytest.raises(ApiError) as refused:
        _dry_run_create(real_kube, build())
    assert refused.value.status == 422, refused.value
    assert field in str(refused.value), refused.value
