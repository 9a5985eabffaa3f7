"""The atheris harness: a bounded libFuzzer run, and the harness driven by hypothesis.

The libFuzzer run is ``slow`` (about 50 s: 40 s of fuzzing plus start-up); the
hypothesis tests are quick and run everywhere, even without atheris.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.vectors import SHARED

FUZZ_DIR = Path(__file__).resolve().parents[1] / "fuzz"
HARNESS = FUZZ_DIR / "fuzz_codec.py"
CORPUS = FUZZ_DIR / "corpus" / "codec"
FUZZ_SECONDS = 40
# Start-up (instrumenting the package, loading the corpus) comes on top of
# FUZZ_SECONDS; this only stops a wedged run, it is not the budget.
SUBPROCESS_TIMEOUT = 180
DONE = re.compile(rb"^Done \d+ runs in \d+ second", re.MULTILINE)

try:
    import atheris  # noqa: F401

    HAVE_ATHERIS = True
except ImportError:
    HAVE_ATHERIS = False


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stub_atheris() -> types.ModuleType:
    """Just enough of atheris for the harness module to import without it."""
    stub = types.ModuleType("atheris")
    stub.instrument_imports = contextlib.nullcontext  # type: ignore[attr-defined]
    return stub


def _load_harness() -> types.ModuleType:
    if HAVE_ATHERIS:
        return _load("fuzz_codec", HARNESS)
    real = sys.modules.get("atheris")
    sys.modules["atheris"] = _stub_atheris()
    try:
        return _load("fuzz_codec", HARNESS)
    finally:
        # Leave no fake atheris behind for anything imported later.
        if real is None:
            del sys.modules["atheris"]
        else:
            sys.modules["atheris"] = real


harness = _load_harness()


def _seed_corpus(dest: Path) -> int:
    """Copy the committed corpus to ``dest`` (libFuzzer adds to it); return the file count.

    Without a committed corpus, the seeds of fuzz/make_corpus.py are written
    straight to ``dest`` so the repository is never touched.
    """
    if CORPUS.is_dir() and any(CORPUS.iterdir()):
        shutil.copytree(CORPUS, dest)
    else:
        dest.mkdir(parents=True)
        make_corpus = _load("make_corpus", FUZZ_DIR / "make_corpus.py")
        for i, seed in enumerate(make_corpus.seeds(SHARED)):
            (dest / f"seed-{i:04d}").write_bytes(seed)
    return sum(1 for _ in dest.iterdir())


def _corpus_files() -> Iterator[Path]:
    return iter(sorted(CORPUS.iterdir())) if CORPUS.is_dir() else iter(())


# ----------------------------------------------------------- hypothesis side


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=512))
def test_harness_accepts_any_input(data: bytes) -> None:
    # test_one_input swallows ProtocolError only; anything else is a finding.
    harness.test_one_input(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=256))
def test_harness_accepts_any_body_for_every_target(selector: int, body: bytes) -> None:
    # Pick the target explicitly so the framer and handshake branches (rare
    # first bytes under st.binary) get as many examples as the decoders.
    harness.test_one_input(bytes([selector]) + body)


@pytest.mark.parametrize("path", list(_corpus_files()), ids=lambda p: p.name[:12])
def test_harness_accepts_every_committed_seed(path: Path) -> None:
    harness.test_one_input(path.read_bytes())


# ------------------------------------------------------------- libFuzzer side


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ATHERIS, reason="atheris is not importable; libFuzzer run skipped")
def test_bounded_libfuzzer_run(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    assert _seed_corpus(corpus) > 0
    command = [
        sys.executable,
        str(HARNESS),
        str(corpus),
        f"-max_total_time={FUZZ_SECONDS}",
        "-rss_limit_mb=2048",
        "-timeout=10",
        # Crash files go to the tmp dir, never into the working tree.
        f"-artifact_prefix={tmp_path}/",
    ]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    tail = result.stdout[-4000:].decode("utf-8", "replace")
    assert result.returncode == 0, f"fuzzer exited {result.returncode}:\n{tail}"
    assert DONE.search(result.stdout), f"no libFuzzer 'Done N runs' line:\n{tail}"
