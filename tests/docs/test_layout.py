"""The README's layout table matches the tree, and the tests mirror the packages."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

README = (ROOT / "README.md").read_text()
SECTION = README[README.index("## Layout") : README.index("## License")]
#: the paths in the first column of the layout table (a cell may name several)
ROWS = [cell for cell in re.findall(r"^\| (.+?) \|", SECTION, re.MULTILINE) if cell != "path"]
PATHS = [p for cell in ROWS for p in re.findall(r"`([^`]+)`", cell)]


def _packages(top: str) -> list[str]:
    """The subpackages of ``top`` (directories with an ``__init__.py``), as ``top/name/``."""
    return sorted(
        f"{top}/{d.name}/"
        for d in (ROOT / top).iterdir()
        if (d / "__init__.py").is_file() and d.name != "stubs"
    )


def _resolve(path: str, row_paths: list[str]) -> Path:
    """A path as written in the table; ``status.py`` after ``acnet_proto/errors.py`` is in
    the same folder as the first path of its row."""
    if "/" in path.rstrip("/") or path.endswith("/") or (ROOT / path).exists():
        return ROOT / path
    return ROOT / Path(row_paths[0]).parent / path


def test_every_path_in_the_table_exists() -> None:
    missing = []
    for cell in ROWS:
        row = re.findall(r"`([^`]+)`", cell)
        missing += [p for p in row if not _resolve(p, row).exists()]
    assert not missing, f"README's layout table names paths that do not exist: {missing}"


def test_every_subpackage_has_a_row() -> None:
    packages = _packages("acnet_proto") + _packages("adapters")
    assert "acnet_proto/engine/" in packages and "adapters/dpm/" in packages
    absent = [p for p in packages if p not in PATHS]
    assert not absent, f"subpackages missing from README's layout table: {absent}"


def test_the_tests_mirror_the_packages() -> None:
    wanted = [f"tests/{p.split('/', 1)[1]}" for p in _packages("acnet_proto")]
    wanted += [f"tests/{p}" for p in _packages("adapters")]
    missing = [t for t in wanted if not any((ROOT / t).glob("test_*.py"))]
    assert not missing, f"packages without a mirrored test folder: {missing}"
