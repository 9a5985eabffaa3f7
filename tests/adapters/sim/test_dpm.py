"""The simulated DPM over real loopback sockets, spoken to through a client-role engine."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from acnet_proto.adapters.sim.dpm import SimServer, serve
from acnet_proto.engine import transcript
from acnet_proto.engine._state import Role
from acnet_proto.engine.connection import DPMConnection
from acnet_proto.engine.events import ConnectionClosed, StaleReply
from acnet_proto.engine.framing import HANDSHAKE, FrameSplitter, frame
from acnet_proto.pc import dpm
from acnet_proto.status import Status
from tests.support.peers import SocketPeer
from tests.support.vectors import SHARED

pytestmark = pytest.mark.integration

DEADLINE = 10.0  # generous: nothing here should take more than a couple of seconds
DPM_PRIV = Status.from_name("DPM_PRIV").status
DPM_PEND = Status.from_name("DPM_PEND").status
DATA = (dpm.ScalarReply, dpm.ScalarArrayReply, dpm.StatusReply)


@pytest.fixture
def client(sim: SimServer) -> Iterator[SocketPeer]:
    c = SocketPeer(sim)
    yield c
    c.close()


def count(events: list[Any], cls: type, ref_id: int | None = None) -> int:
    return sum(1 for e in events if isinstance(e, cls) and (ref_id is None or e.ref_id == ref_id))


def recorded(name: str) -> tuple[list[Any], list[Any]]:
    """(requests after the handshake, replies after OpenList) of a transcript."""
    c2s: list[Any] = []
    s2c: list[Any] = []
    for line, items in transcript.messages_of(transcript.load(SHARED / "transcripts" / name)):
        (c2s if line.direction == "c2s" else s2c).extend(items)
    return c2s[1:], s2c[1:]


def with_list_id(message: Any, list_id: int) -> Any:
    return message.replace(list_id=list_id) if "list_id" in message.field_names else message


# --------------------------------------------------------------- transcripts


def test_one_shot_read_comes_in_the_recorded_order(client: SocketPeer) -> None:
    requests, replies = recorded("read-one-shot.jsonl")
    setup = [with_list_id(m, client.list_id) for m in requests[:2]]  # AddToList, StartList
    assert [type(m) for m in setup] == [dpm.AddToListRequest, dpm.StartListRequest]
    for _ in range(2):  # the second time on the same connection, as pools reuse it
        client.send(*setup)
        events = client.until(dpm.ScalarReply, 1)
        assert [type(e) for e in events] == [type(m) for m in replies]
        assert events[0] == with_list_id(replies[0], client.list_id)  # AddToList, status 0
        assert events[1] == replies[1]  # DeviceInfo, exactly as recorded
        assert events[2] == with_list_id(replies[2], client.list_id)  # StartList, status 0
        reading = events[3]
        assert reading.ref_id == 1 and reading.status == 0
        assert abs(reading.data - 41.7) <= 0.3
        assert abs(reading.timestamp - time.time() * 1000) < 60_000
        client.send(*[with_list_id(m, client.list_id) for m in requests[2:]])  # Stop, Clear


def test_stream_comes_in_the_recorded_order_with_heartbeats(client: SocketPeer) -> None:
    requests, replies = recorded("stream-with-heartbeat.jsonl")
    client.send(*[with_list_id(m, client.list_id) for m in requests[:4]])  # 3 adds, start
    events = client.until(dpm.ScalarArrayReply, 2, ListStatusReply=1)
    head = [with_list_id(m, client.list_id) for m in replies[:7]]
    assert [type(e) for e in events[:7]] == [type(m) for m in head]
    # the AddToList statuses as recorded, but Z:NOTFND's: the recording's server said
    # DPM_NO_SUCH_DEVICE, where the lab's DPM (and so the sim) says DPM_PEND
    assert events[:2] == head[:2] and events[2] == head[2].replace(status=DPM_PEND)
    # Z:ACLTS1 has left di 140013, which the lab's DevDB gives Z:ACLTST
    lab = [head[3], head[4].replace(di=140032)]
    assert [e.replace(format_hint=None) for e in events[3:5]] == lab
    assert events[5] == head[5]  # StartList
    refused = events[6]
    assert (refused.ref_id, refused.status) == (3, DPM_PEND)
    data = [e for e in events[7:] if not isinstance(e, dpm.ListStatusReply)]
    assert [type(e) for e in data[:4]] == [type(m) for m in replies[7:9] + replies[10:12]]
    assert all(e.ref_id in (1, 2) for e in data)
    # as recorded: the first sample comes one period after the start
    assert data[0].timestamp - refused.timestamp >= 990
    heartbeat = next(e for e in events if isinstance(e, dpm.ListStatusReply))
    assert heartbeat == dpm.ListStatusReply(list_id=client.list_id, status=0)


# --------------------------------------------------------------------- events


def test_periodic_entries_keep_coming(client: SocketPeer) -> None:
    client.add("Z:SIM0001@p,20")
    events = client.until(dpm.ScalarReply, 20)
    stamps = [e.timestamp for e in events if isinstance(e, dpm.ScalarReply)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


def test_clock_events_fire_at_their_rates(client: SocketPeer) -> None:
    client.add("Z:SIM0001@e,02", "Z:SIM0002@e,8f")  # 15 Hz and 1 Hz
    events = client.until(dpm.ScalarReply, 2, 2)
    # between two firings of 8f (one second apart) 02 fires fifteen times
    assert count(events, dpm.ScalarReply, 1) >= 8


def test_never_immediate_and_default_events(client: SocketPeer) -> None:
    client.add("M:OUTTMP@N", "Z:ACLTST@I", "Z:ACLTST@U", "Z:SIM0003@p,20")
    events = client.until(dpm.ScalarReply, 5, 4)
    assert count(events, dpm.DeviceInfoReply) == 4
    assert count(events, dpm.ScalarReply, 1) == 0  # @N: never
    assert count(events, dpm.ScalarReply, 2) == 1  # @I: once
    assert count(events, dpm.ScalarReply, 3) == 1  # @U: Z:ACLTST's default, immediate


def test_q_events_send_only_changes(client: SocketPeer) -> None:
    client.add("M~OUTTMP@q,20", "Z:SIM0006@q,20")
    events = client.until(dpm.ScalarReply, 5, 2)
    assert count(events, dpm.TextReply, 1) == 1  # a description never changes


def test_stop_and_clear_end_the_stream_and_the_list_is_reused(client: SocketPeer) -> None:
    client.add("Z:SIM0004@p,20")
    client.until(dpm.ScalarReply, 3)
    stop = [
        dpm.StopListRequest(list_id=client.list_id),
        dpm.ClearListRequest(list_id=client.list_id),
    ]
    client.send(*stop)
    client.add("Z:ACLTST@I")
    before = client.until(dpm.StartListReply)
    after = client.until(dpm.ListStatusReply)  # a heartbeat: two seconds of the new list
    # old samples that crossed the StopList on the wire are stale, never current data
    stale = (StaleReply, dpm.AddToListReply, dpm.DeviceInfoReply, dpm.ListStatusReply)
    assert all(isinstance(e, stale) for e in before[:-1])
    data = [e for e in after if not isinstance(e, dpm.ListStatusReply)]
    assert len(data) == 1  # the one-shot, and nothing from the stopped 50 Hz stream
    assert abs(data[0].data - 45.0) < 1


def test_remove_from_list(client: SocketPeer) -> None:
    client.add("M:OUTTMP@I", "Z:ACLTST@I", start=False)
    client.send(
        dpm.RemoveFromListRequest(list_id=client.list_id, ref_id=2),
        dpm.StartListRequest(list_id=client.list_id),
    )
    events = client.until(dpm.ScalarReply, 1)
    removed = next(e for e in events if isinstance(e, dpm.RemoveFromListReply))
    assert (removed.ref_id, removed.status) == (2, 0)
    assert [e.ref_id for e in events if isinstance(e, dpm.DeviceInfoReply)] == [1]
    assert [e.ref_id for e in events if isinstance(e, dpm.ScalarReply)] == [1]


def test_refused_entries(client: SocketPeer) -> None:
    drfs = ["Z:NOTFND@I", "Z:NOTFND@p,1000", "M_OUTTMP@I", "Z:ACLTS1[99]@e,0f", "M:OUTTMP@I"]
    client.add(*drfs)
    events = client.until(dpm.ScalarReply, 1)
    statuses = [e.status for e in events if isinstance(e, dpm.AddToListReply)]
    model = client_model()
    assert statuses == [model.add_to_list(0, 0, d)[0].status for d in drfs]
    assert [Status.from_int(s).name for s in statuses[:4]] == [
        "DPM_PEND",
        "DPM_PEND",
        "DBM_NOPROP",
        "DPM_OUT_OF_BOUNDS",
    ]
    # refused streams are told once more after the start; refused one-shots are settled
    assert [(e.ref_id, e.status) for e in events if isinstance(e, dpm.StatusReply)] == [
        (2, statuses[1]),
        (4, statuses[3]),
    ]


def client_model() -> Any:
    from acnet_proto.sim import DeviceModel

    return DeviceModel.default()


# ------------------------------------------------------------------ big lists


def test_a_ten_thousand_entry_list_streams(client: SocketPeer) -> None:
    n = 10_000
    client.add(*(f"Z:SIM{i:04d}@p,500" for i in range(n)))
    events = client.until(dpm.ScalarReply, n)
    assert count(events, dpm.AddToListReply) == n
    assert all(e.status == 0 for e in events if isinstance(e, dpm.AddToListReply))
    infos = [e for e in events if isinstance(e, dpm.DeviceInfoReply)]
    assert [e.name for e in infos] == [f"Z:SIM{i:04d}" for i in range(n)]
    readings = {e.ref_id: e for e in events if isinstance(e, dpm.ScalarReply)}
    assert sorted(readings) == list(range(1, n + 1))  # one round: each entry once
    assert len({e.timestamp for e in readings.values()}) == 1  # all in the same tick


def test_many_clients_at_once(sim: SimServer) -> None:
    clients = [SocketPeer(sim) for _ in range(20)]
    try:
        assert len({c.list_id for c in clients}) == 20
        for c in clients:
            c.add("M:OUTTMP@I")
        for c in clients:
            events = c.until(dpm.ScalarReply, 1)
            assert [type(e) for e in events][-2:] == [dpm.StartListReply, dpm.ScalarReply]
    finally:
        for c in clients:
            c.close()


# --------------------------------------------------------------- bad clients


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(DEADLINE)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def test_bad_clients_are_dropped_and_others_keep_streaming(
    sim: SimServer, client: SocketPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="acnet_proto.adapters.sim.dpm")
    client.add("Z:SIM0005@p,20")
    client.until(dpm.ScalarReply, 2)

    garbage = socket.create_connection((sim.host, sim.port))
    garbage.sendall(b"\x00\x00\x00\x05hello, is this DPM?\r\n\r\n")
    rude = socket.create_connection((sim.host, sim.port), timeout=DEADLINE)
    rude.sendall(HANDSHAKE)
    (opened,) = FrameSplitter().feed(rude.recv(65536))
    list_id = dpm.decode_reply(opened).list_id
    # a well-formed frame that breaks the rules: StartList on an empty list
    rude.sendall(frame(dpm.encode(dpm.StartListRequest(list_id=list_id))))
    try:
        assert closed_by_server(garbage)
        assert closed_by_server(rude)
    finally:
        garbage.close()
        rude.close()

    events = client.until(dpm.ScalarReply, 5)
    assert all(isinstance(e, dpm.ScalarReply | dpm.ListStatusReply) for e in events)
    dropped = [r for r in caplog.records if "dropped client" in r.getMessage()]
    assert len(dropped) >= 2
    assert any("expected 'GET /dpm HTTP/1.1'" in r.getMessage() for r in dropped)
    assert any("StartList is not allowed while the list is idle" in r.getMessage() for r in dropped)


def test_a_client_that_leaves_mid_stream_does_not_disturb_the_server(sim: SimServer) -> None:
    leaving = SocketPeer(sim)
    leaving.add(*(f"Z:SIM{i:04d}@p,10" for i in range(200)))
    leaving.until(dpm.ScalarReply, 200)
    leaving.close()
    staying = SocketPeer(sim)
    try:
        staying.add("M:OUTTMP@I")
        assert count(staying.until(dpm.ScalarReply, 1), dpm.ScalarReply)
    finally:
        staying.close()


# ------------------------------------------------------------------- settings


def test_apply_settings_without_authentication_is_refused(sim: SimServer) -> None:
    # Our own client engine will not send this, so the bytes are made by hand.
    sock = socket.create_connection((sim.host, sim.port), timeout=DEADLINE)
    splitter = FrameSplitter()
    replies: list[Any] = []

    def read_until(cls: type) -> Any:
        while not any(isinstance(r, cls) for r in replies):
            replies.extend(dpm.decode_reply(f) for f in splitter.feed(sock.recv(65536)))
        return next(r for r in replies if isinstance(r, cls))

    try:
        sock.sendall(HANDSHAKE)
        list_id = read_until(dpm.OpenListReply).list_id
        setup = [
            dpm.AddToListRequest(list_id=list_id, ref_id=1, drf_request="Z:ACLTST.SETTING@N"),
            dpm.AddToListRequest(list_id=list_id, ref_id=2, drf_request="Z:RAWTST.SETTING@N"),
            dpm.StartListRequest(list_id=list_id),
        ]
        sock.sendall(b"".join(frame(dpm.encode(m)) for m in setup))
        read_until(dpm.StartListReply)
        apply = dpm.ApplySettingsRequest(
            user_name="operator@FNAL.GOV",
            list_id=list_id,
            raw_array=[dpm.RawSetting(ref_id=2, data=b"\x01" * 16)],
            scaled_array=[dpm.ScaledSetting(ref_id=1, data=[1.0])],
        )
        sock.sendall(frame(dpm.encode(apply)))
        reply = read_until(dpm.ApplySettingsReply)
    finally:
        sock.close()
    assert [(s.ref_id, s.status) for s in reply.status] == [(2, DPM_PRIV), (1, DPM_PRIV)]
    assert sim.model.resolve("Z_ACLTST").reply(1, time.time()).data == 45.0


def test_authenticate_without_a_keytab_is_refused_cleanly(client: SocketPeer) -> None:
    client.send(dpm.AuthenticateRequest(list_id=client.list_id, token=b""))
    (named,) = client.until(dpm.AuthenticateReply)
    assert named.service_name == "daeset/bd"
    client.send(dpm.AuthenticateRequest(list_id=client.list_id, token=b"not a GSS token"))
    refusal = client.until(dpm.StatusReply)[-1]
    assert isinstance(refusal, dpm.StatusReply)
    assert (refusal.ref_id, refusal.status) == (0, DPM_PRIV)
    client.add("M:OUTTMP@I")  # the connection still reads
    assert count(client.until(dpm.ScalarReply, 1), dpm.ScalarReply) == 1


# ----------------------------------------------------------------- the API


def test_serve_runs_until_cancelled() -> None:
    async def main() -> tuple[Any, bool]:
        ready: asyncio.Future[SimServer] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve("127.0.0.1", 0, ready=ready.set_result))
        server = await asyncio.wait_for(ready, DEADLINE)
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(HANDSHAKE)
        conn = DPMConnection(Role.CLIENT)
        conn.initiate()
        conn.receive_data(await reader.read(65536))
        opened = conn.next_event()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        conn.receive_data(await asyncio.wait_for(reader.read(65536), DEADLINE))
        closed = isinstance(conn.next_event(), ConnectionClosed)
        writer.close()
        return opened, closed

    opened, closed = asyncio.run(main())
    assert isinstance(opened, dpm.OpenListReply)
    assert closed  # cancelling serve() dropped the client


def test_in_thread_raises_when_the_port_is_taken(sim: SimServer) -> None:
    with pytest.raises(OSError), SimServer.in_thread(port=sim.port):
        pass


def test_in_thread_stops_listening_on_exit() -> None:
    with SimServer.in_thread() as server:
        port = server.port
        socket.create_connection((server.host, port)).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)


def _apply_unauthenticated(server: SimServer) -> Any:
    """Set Z:ACLTST to 12.5 (and a ref not on the list) with no Kerberos; the reply."""
    sock = socket.create_connection((server.host, server.port), timeout=DEADLINE)
    splitter, replies = FrameSplitter(), []

    def read_until(cls: type) -> Any:
        while not any(isinstance(r, cls) for r in replies):
            replies.extend(dpm.decode_reply(f) for f in splitter.feed(sock.recv(65536)))
        return next(r for r in replies if isinstance(r, cls))

    with sock:
        sock.sendall(HANDSHAKE)
        list_id = read_until(dpm.OpenListReply).list_id
        setup = [
            dpm.AddToListRequest(list_id=list_id, ref_id=1, drf_request="Z:ACLTST.SETTING@N"),
            dpm.StartListRequest(list_id=list_id),
        ]
        sock.sendall(b"".join(frame(dpm.encode(m)) for m in setup))
        read_until(dpm.StartListReply)
        settings = [
            dpm.ScaledSetting(ref_id=1, data=[12.5]),
            dpm.ScaledSetting(ref_id=9, data=[1.0]),
        ]
        apply = dpm.ApplySettingsRequest(user_name="nobody", list_id=list_id, scaled_array=settings)
        sock.sendall(frame(dpm.encode(apply)))
        return read_until(dpm.ApplySettingsReply)


def test_insecure_settings_apply_without_authentication() -> None:
    """``insecure_settings`` (``--insecure-settings``, off by default) skips authentication."""
    with SimServer.in_thread(insecure_settings=True) as server:
        reply = _apply_unauthenticated(server)
        assert [(s.ref_id, s.status) for s in reply.status] == [(1, 0), (9, DPM_PRIV)]
        assert server.model.resolve("Z_ACLTST").reply(1, time.time()).data == 12.5
    with SimServer.in_thread() as secure:
        reply = _apply_unauthenticated(secure)
        assert {s.status for s in reply.status} == {DPM_PRIV}
