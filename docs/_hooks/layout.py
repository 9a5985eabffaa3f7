"""MkDocs hook: show mkdocstrings the installed package layout.

setuptools maps ``acnet_proto.adapters`` to the top-level ``adapters/``
directory (``package-dir`` in pyproject.toml); griffe reads the source tree
and would not find it. :func:`build_tree` rebuilds the installed layout from
links, here in ``build/docs-layout``, which mkdocs.yml gives the Python
handler as its path. The type check (``tests/test_typed.py``) uses it too.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "build" / "docs-layout"


def build_tree(dest: Path) -> Path:
    """``dest/acnet_proto`` laid out as installed, every file a link to the checkout's."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = {
        package.replace(".", "/"): folder
        for package, folder in setuptools["package-dir"].items()
        if package != "acnet_proto"
    }
    shutil.rmtree(dest, ignore_errors=True)
    package = dest / "acnet_proto"
    package.mkdir(parents=True)
    for item in (ROOT / "acnet_proto").iterdir():
        (package / item.name).symlink_to(item)
    for inside, outside in mapped.items():
        (dest / inside).symlink_to(ROOT / outside)
    return package


def on_startup(command: str, dirty: bool) -> None:
    # startup runs before any plugin reads its configuration (and its paths)
    build_tree(TREE)
