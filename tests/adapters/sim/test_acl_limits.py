"""The simulated ACL CGI under attack, on a real server over loopback, with small limits.

Each test is one of issue 14's attacks: an idle-socket flood, half-open and slow requests,
``/pendwait`` amplification and abandoned waits, oversized requests and DRFs, and refusal
logging. The normal read that must still be answered goes through our ACL backend.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from acnet_proto.adapters.acl import ACLBackend
from acnet_proto.adapters.sim.acl import CGI_PATH, MAX_REQUEST_LINE, ACLSimServer
from acnet_proto.drf import MAX_DRF_LENGTH
from acnet_proto.errors import ACLError
from acnet_proto.limits import ServerLimits
from acnet_proto.sim import DeviceModel
from tests.adapters import test_acl
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

DEADLINE = 10.0  # generous: nothing here should take more than a couple of seconds
SLOW_EVENT = 0x77  # a clock event that fires every SLOW_PERIOD s: its /pendwait holds
SLOW_PERIOD = 60.0
PENDWAIT = f"{CGI_PATH}?acl=read/pendwait+M:OUTTMP/event=%27e,{SLOW_EVENT:x}%27"
LOGGER = "acnet_proto.adapters.sim.acl"

tls = test_acl.tls  # the self-signed server context of the ACL tests


@contextlib.contextmanager
def simulator(**limits: Any) -> Iterator[ACLSimServer]:
    model = DeviceModel.default()
    model.clock_periods[SLOW_EVENT] = SLOW_PERIOD
    with ACLSimServer(model, limits=ServerLimits(**limits)) as sim:
        yield sim


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    """Raw client sockets, all closed at the end."""
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def connect(sim: ACLSimServer, source: str | None = None) -> socket.socket:
    """A raw connection to ``sim``, from the address ``source`` if given (another peer)."""
    return socket.create_connection(
        (sim.host, sim.port), DEADLINE, None if source is None else (source, 0)
    )


def send_get(sock: socket.socket, target: str, extra: str = "") -> None:
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: sim\r\n{extra}\r\n".encode())


def response(sock: socket.socket) -> tuple[int, str]:
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    return answer.status, answer.read().decode()


def read_normally(sim: ACLSimServer, timeout: float = 5.0) -> float:
    with ACLBackend(sim.base_url, timeout=timeout) as backend:
        value = backend.read("M:OUTTMP")
    assert isinstance(value, float)
    return value


def start_waits(
    sim: ACLSimServer, opened: list[socket.socket], n: int, source: str | None = None
) -> None:
    """``n`` /pendwait requests from ``source`` that hold (their event is SLOW_PERIOD away)."""
    before = sim.waiting
    for _ in range(n):
        sock = connect(sim, source)
        opened.append(sock)
        send_get(sock, PENDWAIT)
    wait_until(lambda: sim.waiting == before + n, "sim.waiting == before + n", DEADLINE)


# ================================================================ connections


def test_an_idle_socket_flood_does_not_keep_a_normal_read_out() -> None:
    with (
        simulator(max_connections=16, handshake_timeout=30, idle_timeout=30) as sim,
        sockets() as flood,
    ):
        threads_before = threading.active_count()
        for _ in range(300):
            flood.append(connect(sim))
        start = time.monotonic()
        assert abs(read_normally(sim, timeout=5.0) - 41.7) <= 0.3
        assert time.monotonic() - start < 5.0
        # one thread per admitted connection, and never more than the cap of them
        assert sim.connections <= 16
        assert threading.active_count() <= threads_before + 16 + 1


def test_when_every_connection_is_busy_the_newest_gets_503() -> None:
    limits = {"max_connections": 3, "max_streams_per_peer": 3, "max_streams": 3}
    with simulator(**limits) as sim, sockets() as opened:
        start_waits(sim, opened, 3)
        newest = connect(sim)
        opened.append(newest)
        send_get(newest, f"{CGI_PATH}?acl=read+M:OUTTMP")
        status, body = response(newest)
        assert status == 503
        assert "max_connections=3" in body and body.count("\n") == 1
        assert newest.recv(1) == b""  # and closed


def test_a_half_open_request_is_closed_after_the_handshake_deadline() -> None:
    with simulator(handshake_timeout=0.5) as sim, sockets() as opened:
        silent, partial = connect(sim), connect(sim)
        opened += [silent, partial]
        start = time.monotonic()
        partial.sendall(f"GET {CGI_PATH}?acl=re".encode())
        for sock in (silent, partial):
            status, body = response(sock)
            assert status == 408 and "handshake_timeout" in body
            assert sock.recv(1) == b""
        assert 0.4 <= time.monotonic() - start < 0.5 + DEADLINE / 2


def test_a_slow_loris_is_closed_at_the_deadline_though_bytes_keep_coming() -> None:
    with simulator(handshake_timeout=0.5) as sim, sockets() as opened:
        sock = connect(sim)
        opened.append(sock)
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        with contextlib.suppress(ConnectionError):
            # a header byte every 50 ms: no read ever waits long, only the whole request does
            while not select.select([sock], [], [], 0.05)[0]:
                assert time.monotonic() - start < DEADLINE, "never closed"
                sock.sendall(b"X")
        assert 0.4 <= time.monotonic() - start < 0.5 + DEADLINE / 2


def test_a_kept_alive_connection_that_says_nothing_is_closed_after_the_idle_timeout() -> None:
    with simulator(idle_timeout=0.5) as sim, sockets() as opened:
        sock = connect(sim)
        opened.append(sock)
        send_get(sock, f"{CGI_PATH}?acl=read+G:AMANDA")
        assert response(sock)[0] == 200
        start = time.monotonic()
        assert sock.recv(1) == b""  # closed without a word: no 408 on an idle connection
        assert 0.4 <= time.monotonic() - start < 0.5 + DEADLINE / 2
        wait_until(lambda: sim.connections == 0, "sim.connections == 0", DEADLINE)


def test_silent_connections_do_not_hold_up_tls_handshakes(tls: tuple[ssl.SSLContext, str]) -> None:
    context, ca = tls
    limits = ServerLimits(handshake_timeout=0.5)
    with ACLSimServer(ssl_context=context, limits=limits) as sim, sockets() as silent:
        for _ in range(5):  # no ClientHello: each handshake waits in a thread of its own
            silent.append(connect(sim))
        with ACLBackend(sim.base_url, timeout=5.0, verify=ca) as backend:
            assert abs(backend.read("M:OUTTMP") - 41.7) <= 0.3
        for sock in silent:
            assert sock.recv(1) == b""  # closed at the handshake deadline
        wait_until(lambda: sim.connections == 0, "sim.connections == 0", DEADLINE)


# ================================================================ /pendwait


def test_pendwait_amplification_from_one_peer_is_refused_and_reads_go_on() -> None:
    limits = {"max_connections": 16, "max_streams_per_peer": 3, "max_streams": 8}
    with simulator(**limits) as sim, sockets() as opened:
        threads_before = threading.active_count()
        start_waits(sim, opened, 3)

        def extra(_: int) -> tuple[int | None, str, float]:
            start = time.monotonic()
            with connect(sim) as sock:
                send_get(sock, PENDWAIT)
                try:
                    status, body = response(sock)
                except (http.client.RemoteDisconnected, ConnectionError):
                    status, body = None, ""  # closed to make room: refused too
            return status, body, time.monotonic() - start

        with ThreadPoolExecutor(40) as pool:
            outcomes = list(pool.map(extra, range(80)))
        statuses = {status for status, _, _ in outcomes}
        assert statuses <= {503, None} and 503 in statuses
        assert max(seconds for _, _, seconds in outcomes) < DEADLINE / 2
        refusals = {body for status, body, _ in outcomes if status == 503}
        assert any("max_streams_per_peer=3" in body for body in refusals)
        assert all(body.count("\n") == 1 for body in refusals)
        assert sim.waiting == 3
        assert threading.active_count() <= threads_before + 16 + 1
        assert abs(read_normally(sim) - 41.7) <= 0.3


def test_the_server_wide_wait_cap_refuses_other_peers_too() -> None:
    limits = {"max_streams_per_peer": 2, "max_streams": 3}
    with simulator(**limits) as sim, sockets() as opened:
        start_waits(sim, opened, 2)
        start_waits(sim, opened, 1, "127.0.0.2")
        other = connect(sim, "127.0.0.2")
        opened.append(other)
        send_get(other, PENDWAIT)
        status, body = response(other)
        assert (status, sim.waiting) == (503, 3)
        assert "max_streams=3" in body


def test_a_pendwait_whose_client_goes_frees_its_slot_at_once() -> None:
    with simulator(max_streams_per_peer=2) as sim, sockets() as opened:
        start_waits(sim, opened, 2)
        refused = connect(sim)
        opened.append(refused)
        send_get(refused, PENDWAIT)
        assert response(refused)[0] == 503
        opened.pop(0).close()
        assert wait_until(lambda: sim.waiting == 1, "sim.waiting == 1", DEADLINE) < 1.5
        start_waits(sim, opened, 1)  # the freed slot can be taken again
        start = time.monotonic()
    assert time.monotonic() - start < DEADLINE / 2  # stopping ends the waits too


def test_a_pendwait_ends_within_max_wait() -> None:
    with simulator(max_wait=1.0) as sim, ACLBackend(sim.base_url, timeout=5.0) as backend:
        start = time.monotonic()
        late = backend.get_many([f"M:OUTTMP@e,{SLOW_EVENT:x}"])[0]
        assert late.status.name == "DIO_TIMEOUT" and "1 s a request may wait" in late.message
        assert time.monotonic() - start < DEADLINE / 2
        assert sim.waiting == 0
        prompt = backend.get("M:OUTTMP@e,2")  # the default 1 s period: due within max_wait
        assert prompt.ok
        text = sim.run_script([f"read/pendwait M:OUTTMP/event='e,{SLOW_EVENT:x}'"])
        assert text.endswith("- DIO_TIMEOUT\n")


# ================================================================ sizes


def test_requests_too_large_are_refused_with_their_http_status() -> None:
    with simulator(max_request_bytes=4096) as sim, sockets() as opened:
        long_line, many_headers, big_body = connect(sim), connect(sim), connect(sim)
        opened += [long_line, many_headers, big_body]
        send_get(long_line, f"{CGI_PATH}?acl=read+M:OUTTMP" + "+" * 5000)
        send_get(many_headers, f"{CGI_PATH}?acl=read+M:OUTTMP", "X-Filler: y\r\n" * 400)
        send_get(big_body, f"{CGI_PATH}?acl=read+M:OUTTMP", "Content-Length: 1000000\r\n")
        expected = [(long_line, 414), (many_headers, 431), (big_body, 413)]
        for sock, code in expected:
            status, body = response(sock)
            assert status == code and "max_request_bytes=4096" in body
        assert not sim.queries  # nothing of them was kept
        assert abs(read_normally(sim) - 41.7) <= 0.3


def test_the_request_line_is_bounded_with_the_default_limits() -> None:
    with simulator() as sim, sockets() as opened:
        sock = connect(sim)
        opened.append(sock)
        send_get(sock, f"{CGI_PATH}?acl=read+M:OUTTMP" + "+" * MAX_REQUEST_LINE)
        assert response(sock)[0] == 414


def test_a_device_name_over_the_drf_limit_stops_the_script_before_it_is_kept() -> None:
    name = "Z:" + "A" * MAX_DRF_LENGTH
    with simulator() as sim, ACLBackend(sim.base_url, timeout=5.0) as backend:
        with pytest.raises(ACLError, match=r"Device name of 1026 characters.*CLIB_SYNTAX"):
            backend.execute(f"read M:OUTTMP; read {name}")
        assert list(sim.queries) == []
        assert backend.execute("read G:AMANDA").startswith("G:AMANDA")
        assert len(sim.queries) == 1


# ================================================================ logging


def test_refusals_are_logged_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with simulator(max_streams_per_peer=1, quiet_period=0.3) as sim, sockets() as opened:
        start_waits(sim, opened, 1)
        for _ in range(6):
            sock = connect(sim)
            opened.append(sock)
            send_get(sock, PENDWAIT)
            assert response(sock)[0] == 503
        firsts = [r for r in caplog.records if "max_streams_per_peer=1" in r.getMessage()]
        assert len(firsts) == 1 and "/pendwait refused from '127.0.0.1'" in firsts[0].getMessage()

        def totals() -> list[str]:
            return [r.getMessage() for r in caplog.records if "in the last burst" in r.getMessage()]

        wait_until(lambda: len(totals()) == 1, "len(totals()) == 1", DEADLINE)
        assert totals() == ["simulated ACL: /pendwait refused: 6 in the last burst"]


def test_request_lines_are_logged_escaped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with simulator() as sim, sockets() as opened:
        sock = connect(sim)
        opened.append(sock)
        sock.sendall(b"GET /\x1b[31mred\x7f" + b"x" * 5000 + b" HTTP/1.1\r\nHost: s\r\n\r\n")
        assert response(sock)[0] == 404
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any("\\x1b[31mred" in m for m in messages)
    assert not any("\x1b" in m or "\x7f" in m or len(m) > 1000 for m in messages)
