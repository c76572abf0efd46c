"""The import root: ``lianka.<area>`` maps onto the top-level folders; ``platform`` stays stdlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_platform_is_the_standard_library_here() -> None:
    import platform

    assert Path(platform.__file__).name == "platform.py"
    assert "site-packages" not in platform.__file__
    assert callable(platform.system)


def test_platform_is_the_standard_library_from_the_repo_root(tmp_path: Path) -> None:
    for cwd in (ROOT, ROOT / "platform", tmp_path):
        out = subprocess.run(
            [sys.executable, "-c", "import platform, sys; print(platform.__file__); print(platform.system())"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert out[0].endswith("platform.py"), (cwd, out)
        assert out[1] == "Linux"


def test_areas_are_the_top_level_folders() -> None:
    import lianka.alliance
    import lianka.platform.db
    import lianka.tenants.models

    assert Path(lianka.platform.db.__file__).resolve() == ROOT / "platform" / "db.py"
    assert Path(lianka.tenants.models.__file__).resolve() == ROOT / "tenants" / "models.py"
    assert list(lianka.alliance.__path__)  # namespace package over alliance/


def test_no_top_level_init_files() -> None:
    for area in ("platform", "tenants", "alliance", "billing", "web"):
        assert not (ROOT / area / "__init__.py").exists(), area
