"""The package type-checks: mypy, strict (pyproject's [tool.mypy]), on the installed layout.

mypy cannot follow setuptools' package-dir mapping (``acnet_proto.adapters``
is ``adapters/``), so it checks a tree of links laid out as the wheel
installs it (the docs build uses the same tree). Errors are reported with
the checkout's paths. By hand: ``.venv/bin/mypy build/type-layout/acnet_proto`` after
this test has built the tree.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.support import ROOT


def _build_tree() -> object:
    spec = importlib.util.spec_from_file_location("layout", ROOT / "docs" / "_hooks" / "layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tree


def test_mypy_finds_nothing() -> None:
    api = pytest.importorskip("mypy.api", reason="mypy is in the [test] extra")
    # a fixed place, so that mypy's cache (which remembers paths) stays right
    package = _build_tree()(ROOT / "build" / "type-layout")
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(package),
        ]
    )
    shown = str(package.relative_to(ROOT))  # as mypy prints it: relative to the checkout
    report = (
        stdout.replace(f"{shown}/adapters/", "adapters/")
        .replace(f"{shown}/protos/", "protos/")
        .replace(f"{shown}/", "acnet_proto/")
    )
    assert status == 0, f"mypy:\n{report}{stderr}"
