"""MkDocs hook: show mkdocstrings the installed package layout.

setuptools maps ``acnet_proto.adapters`` to the top-level ``adapters/``
directory (``package-dir`` in pyproject.toml); griffe reads the source tree
and would not find it. This rebuilds the installed layout from symlinks in
``build/docs-layout``, which mkdocs.yml gives the Python handler as its path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "build" / "docs-layout"
MAPPING = {"acnet_proto/adapters": "adapters", "acnet_proto/protos": "protos"}


def on_startup(command: str, dirty: bool) -> None:
    # startup runs before any plugin reads its configuration (and its paths)
    shutil.rmtree(TREE, ignore_errors=True)
    package = TREE / "acnet_proto"
    package.mkdir(parents=True)
    for item in (ROOT / "acnet_proto").iterdir():
        (package / item.name).symlink_to(item)
    for inside, outside in MAPPING.items():
        (TREE / inside).symlink_to(ROOT / outside)
