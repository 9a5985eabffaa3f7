"""``wait_ready``, which the KDC and the broker share: ready when the probe answers; a
:class:`ServerStartFailed` with the log's tail when the process exits first or the deadline
passes. Real processes (``sh``), a probe of the test's own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acnet_proto.adapters.sim._processes import (
    ServerStartFailed,
    stop_process_group,
    wait_ready,
)
from acnet_proto.errors import AcnetProtoError


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A long-running process writing a line to its log; it and the log."""
    log = tmp_path / "server.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["sh", "-c", "echo listening soon; exec sleep 60"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield proc, log
    stop_process_group(proc)


def test_it_returns_once_the_probe_answers(
    started: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, log = started
    answers = iter(["refused", "refused", None])
    wait_ready(proc, lambda: next(answers), [log], "fake-server", timeout=30)
    assert next(answers, "all used") == "all used" and proc.poll() is None


def test_a_process_that_exits_first_fails_with_its_code_and_log(tmp_path: Path) -> None:
    log = tmp_path / "server.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(["sh", "-c", "echo 'no such config'; exit 4"], stdout=out)
    proc.wait(timeout=30)
    with pytest.raises(ServerStartFailed) as caught:
        wait_ready(proc, lambda: "refused", [log, tmp_path / "absent.log"], "fake-server", 30)
    text = str(caught.value)
    assert "fake-server exited with 4" in text and "no such config" in text
    assert "(no log)" in text  # a log it was given that was never written
    assert isinstance(caught.value, AcnetProtoError)


def test_a_server_that_never_answers_fails_after_the_deadline(
    started: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, log = started
    began = time.monotonic()
    with pytest.raises(ServerStartFailed) as caught:
        wait_ready(proc, lambda: "connection refused", [log], "fake-server", timeout=0.5)
    assert time.monotonic() - began >= 0.5
    text = str(caught.value)
    assert "fake-server not answering after 0.5 s: connection refused" in text
    assert "listening soon" in text and proc.poll() is None  # the caller stops it
