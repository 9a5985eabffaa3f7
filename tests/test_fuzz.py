"""The atheris harnesses (codec, engine, text): bounded libFuzzer runs, and hypothesis driving them.

The libFuzzer runs are ``slow`` (about 70 s together: 30 s on the codec, 20 s
on the engine, 10 s on the parsers of peer text, plus start-up); the
hypothesis tests are quick and run everywhere, even without atheris. A
longer run is one command, see ``fuzz/fuzz_codec.py``, ``fuzz/fuzz_engine.py``
and ``fuzz/fuzz_text.py``.
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

from tests.support import ROOT
from tests.support.vectors import SHARED

FUZZ_DIR = ROOT / "fuzz"
#: name -> seconds of libFuzzer in the bounded run
FUZZ_SECONDS = {"codec": 30, "engine": 20, "text": 10}
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
    # fuzz_text.py names what to instrument: take and ignore it
    stub.instrument_imports = lambda **_: contextlib.nullcontext()  # type: ignore[attr-defined]
    return stub


def _load_harness(name: str) -> types.ModuleType:
    path = FUZZ_DIR / f"fuzz_{name}.py"
    if HAVE_ATHERIS:
        return _load(f"fuzz_{name}", path)
    real = sys.modules.get("atheris")
    sys.modules["atheris"] = _stub_atheris()
    try:
        return _load(f"fuzz_{name}", path)
    finally:
        # Leave no fake atheris behind for anything imported later.
        if real is None:
            del sys.modules["atheris"]
        else:
            sys.modules["atheris"] = real


harness = _load_harness("codec")
engine_harness = _load_harness("engine")
text_harness = _load_harness("text")


def _seed_corpus(name: str, dest: Path) -> int:
    """Copy the committed corpus to ``dest`` (libFuzzer adds to it); return the file count.

    Without a committed corpus, the seeds of fuzz/make_corpus.py are written
    straight to ``dest`` so the repository is never touched.
    """
    corpus = FUZZ_DIR / "corpus" / name
    if corpus.is_dir() and any(corpus.iterdir()):
        shutil.copytree(corpus, dest)
    else:
        dest.mkdir(parents=True)
        make_corpus = _load("make_corpus", FUZZ_DIR / "make_corpus.py")
        for i, seed in enumerate(make_corpus.SEEDS[name](SHARED)):
            (dest / f"seed-{i:04d}").write_bytes(seed)
    return sum(1 for _ in dest.iterdir())


def _corpus_files(name: str) -> Iterator[Path]:
    corpus = FUZZ_DIR / "corpus" / name
    return iter(sorted(corpus.iterdir())) if corpus.is_dir() else iter(())


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


@pytest.mark.parametrize("path", list(_corpus_files("codec")), ids=lambda p: p.name[:12])
def test_harness_accepts_every_committed_seed(path: Path) -> None:
    harness.test_one_input(path.read_bytes())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_engine_harness_accepts_any_program(data: bytes) -> None:
    # a RemoteProtocolError must leave the engine in ERROR; any other escape is a finding
    engine_harness.test_one_input(data)


@pytest.mark.parametrize("path", list(_corpus_files("engine")), ids=lambda p: p.name[:12])
def test_engine_harness_accepts_every_committed_seed(path: Path) -> None:
    engine_harness.test_one_input(path.read_bytes())


def test_engine_seeds_replay_whole_conversations() -> None:
    """The transcript seeds drive the engine through every recorded exchange, not just a prefix."""
    make_corpus = _load("make_corpus", FUZZ_DIR / "make_corpus.py")
    seeds = make_corpus.SEEDS["engine"](SHARED)
    assert len(seeds) == 2 * len(list((SHARED / "transcripts").glob("*.jsonl")))
    for seed in seeds:
        engine_harness.test_one_input(seed)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(sorted(text_harness.SELECTORS)), st.binary(max_size=512))
def test_text_harness_accepts_any_input_for_every_parser(target: str, body: bytes) -> None:
    # each parser of peer text may raise only its own typed errors; anything else is a finding
    text_harness.test_one_input(bytes([text_harness.SELECTORS[target]]) + body)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(text_harness.SELECTORS)), st.text(max_size=300))
def test_text_harness_accepts_any_text_for_every_parser(target: str, text: str) -> None:
    # st.binary rarely makes valid UTF-8 beyond ASCII: give the text parsers any code point
    body = text.encode("utf-8", "surrogatepass")
    text_harness.test_one_input(bytes([text_harness.SELECTORS[target]]) + body)


@pytest.mark.parametrize("path", list(_corpus_files("text")), ids=lambda p: p.name[:12])
def test_text_harness_accepts_every_committed_seed(path: Path) -> None:
    text_harness.test_one_input(path.read_bytes())


def test_text_seeds_reach_every_parser_in_the_harness_order() -> None:
    make_corpus = _load("make_corpus", FUZZ_DIR / "make_corpus.py")
    assert list(make_corpus.TEXT_SEEDS) == list(text_harness.SELECTORS)
    seeds = make_corpus.SEEDS["text"](SHARED)
    assert {seed[0] for seed in seeds} == set(text_harness.SELECTORS.values())
    for seed in seeds:
        text_harness.test_one_input(seed)


# ------------------------------------------------------------- libFuzzer side


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ATHERIS, reason="atheris is not importable; libFuzzer run skipped")
@pytest.mark.parametrize("name", sorted(FUZZ_SECONDS))
def test_bounded_libfuzzer_run(name: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    assert _seed_corpus(name, corpus) > 0
    command = [
        sys.executable,
        str(FUZZ_DIR / f"fuzz_{name}.py"),
        str(corpus),
        f"-max_total_time={FUZZ_SECONDS[name]}",
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
