"""tests/shared is an exact copy of the project's shared wire facts, when those are at hand."""

from __future__ import annotations

import filecmp

import pytest

from tests.support import ROOT
from tests.support.vectors import SHARED

ORIGINAL = ROOT.parent / "shared"


@pytest.mark.parametrize("part", ["vectors", "transcripts", "spec"])
def test_copy_matches_the_shared_directory(part: str) -> None:
    if not (ORIGINAL / part).is_dir() or ORIGINAL.resolve() == SHARED.resolve():
        pytest.skip("no ../shared next to this checkout to compare with")
    comparison = filecmp.dircmp(ORIGINAL / part, SHARED / part)
    differences = []
    pending = [comparison]
    while pending:
        c = pending.pop()
        differences += c.left_only + c.right_only + c.diff_files
        pending += c.subdirs.values()
    assert not differences, f"tests/shared/{part} differs from ../shared/{part}: {differences}"
