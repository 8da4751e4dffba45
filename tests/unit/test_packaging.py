"""Installing rotator prints no deprecation banner: the build backend is asked, verbosely, to
build the wheel exactly as ``pip install`` would (isolated build environment), and says nothing
deprecated (``project.license`` is an SPDX expression, no License classifiers, setuptools >= 77)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_license_is_an_spdx_expression() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_building_the_package_prints_no_deprecation(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert list(tmp_path.glob("rotator-*.whl")), output
    banners = [line for line in output.splitlines() if "deprecat" in line.lower()]
    assert banners == [], "\n".join(banners)
