"""acnet_proto.adapters._refusals: the servers' refusal log and thread-safe stream slots."""

from __future__ import annotations

import logging
import threading

import pytest

from acnet_proto.adapters._refusals import RefusalLog, StreamSlots


def test_a_burst_is_one_line_then_its_total_and_the_peer_cannot_forge_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RefusalLog("the test server", logging.getLogger("refusals-test"), quiet_period=60.0)
    with caplog.at_level(logging.WARNING, logger="refusals-test"):
        for _ in range(50):
            log.refused("idle connection", "1.2.3.4\nERROR forged\x1b[31m", "x" * 10_000)
        log.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("the test server: idle connection from ")
    assert "\n" not in lines[0] and "\x1b" not in lines[0] and len(lines[0]) < 600
    assert lines[1] == "the test server: idle connection: 50 in the last burst"


def test_kinds_are_counted_apart(caplog: pytest.LogCaptureFixture) -> None:
    log = RefusalLog("srv", logging.getLogger("refusals-test"), quiet_period=60.0)
    with caplog.at_level(logging.WARNING, logger="refusals-test"):
        log.refused("a", None, "why")
        log.refused("b", None, "why")
        log.refused("a", None, "why")
        log.flush()
    assert [r.getMessage() for r in caplog.records] == [
        "srv: a: 'why' (more like it are counted, not logged, until 60 s pass without one)",
        "srv: b: 'why' (more like it are counted, not logged, until 60 s pass without one)",
        "srv: a: 2 in the last burst",
        "srv: b: 1 in the last burst",
    ]


def test_stream_slots_hold_under_threads_and_count_by_address() -> None:
    slots = StreamSlots(per_peer=5, total=8)
    taken: list[str | None] = []
    lock = threading.Lock()

    def grab(port: int) -> None:
        refusal = slots.take(f"ipv4:10.0.0.1:{port}")
        with lock:
            taken.append(refusal)

    threads = [threading.Thread(target=grab, args=(port,)) for port in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken.count(None) == 5  # one address, whatever its ports
    assert slots.open("ipv4:10.0.0.1:1") == 5 == slots.open()
    for port in range(5):
        slots.give_back(f"ipv4:10.0.0.1:{port}")
    assert slots.open() == 0
