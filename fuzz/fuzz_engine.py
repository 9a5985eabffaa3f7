"""atheris harness: the DPM engine, in either role, under arbitrary frame sequences.

    python fuzz/fuzz_engine.py fuzz/corpus/engine -max_total_time=3600

An input is a program. Byte 0 picks the role (even: client, odd: server).
Then each operation starts with one byte:

* ``op % 4 == 0``: the next byte ``n`` and ``n`` bytes arrive from the peer;
* ``op % 4 == 1``: this side tries to send one command made from the next
  two bytes (a request for a client, a reply for a server);
* ``op % 4 == 2``: the peer closes (``receive_data(b"")``);
* ``op % 4 == 3``: the clock moves on ``op`` seconds; the time queries run.

The engine may refuse a command (``LocalProtocolError``) or the peer's bytes
(``RemoteProtocolError``, after which the connection must be in the error
state); anything else escaping is a bug.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from acnet_proto.engine._state import ConnectionState, Role
    from acnet_proto.engine.connection import DPMConnection
    from acnet_proto.engine.events import NEED_DATA, ConnectionClosed
    from acnet_proto.errors import LocalProtocolError, RemoteProtocolError
    from acnet_proto.pc import dpm


def _request(kind: int, arg: int, list_id: int) -> object:
    commands = (
        lambda: dpm.AddToListRequest(list_id=list_id, ref_id=arg % 5, drf_request="M:OUTTMP@I"),
        lambda: dpm.StartListRequest(list_id=list_id),
        lambda: dpm.StopListRequest(list_id=list_id),
        lambda: dpm.ClearListRequest(list_id=list_id),
        lambda: dpm.RemoveFromListRequest(list_id=list_id, ref_id=arg % 5),
        lambda: dpm.AuthenticateRequest(list_id=list_id, token=bytes(arg % 3)),
        lambda: dpm.EnableSettingsRequest(list_id=list_id, mic=b"m", message=b"1234"),
        lambda: dpm.ApplySettingsRequest(
            user_name="u",
            list_id=list_id,
            scaled_array=[dpm.ScaledSetting(ref_id=arg % 5, data=[1.0])],
        ),
    )
    return commands[kind % len(commands)]()


def _reply(kind: int, arg: int, list_id: int) -> object:
    ref = arg % 5
    commands = (
        lambda: dpm.OpenListReply(list_id=list_id),
        lambda: dpm.AddToListReply(list_id=list_id, ref_id=ref, status=0),
        lambda: dpm.StartListReply(list_id=list_id, status=0),
        lambda: dpm.ScalarReply(ref_id=ref, timestamp=1, cycle=0, status=0, data=1.0),
        lambda: dpm.StatusReply(ref_id=ref, timestamp=1, cycle=0, status=-(arg % 2)),
        lambda: dpm.ListStatusReply(list_id=list_id, status=0),
        lambda: dpm.AuthenticateReply(service_name="daeset/bd"),
        lambda: dpm.ApplySettingsReply(status=[dpm.SettingStatus(ref_id=ref, status=0)]),
    )
    return commands[kind % len(commands)]()


def _drain(conn: DPMConnection) -> None:
    # ConnectionClosed repeats once the peer closed (as h11's does): stop there
    while (event := conn.next_event()) is not NEED_DATA:
        if isinstance(event, ConnectionClosed):
            return


def test_one_input(data: bytes) -> None:
    if not data:
        return
    role = Role.SERVER if data[0] & 1 else Role.CLIENT
    conn = DPMConnection(role, max_frame_size=1 << 12)
    now, i = 0.0, 1
    if role is Role.CLIENT:
        conn.initiate()
    while i < len(data):
        op = data[i]
        i += 1
        try:
            if op % 4 == 0:
                n = data[i] if i < len(data) else 0
                conn.receive_data(data[i + 1 : i + 1 + n], now=now)
                i += 1 + n
                _drain(conn)
            elif op % 4 == 1:
                kind, arg = (data[i : i + 2] + b"\0\0")[:2]
                i += 2
                make = _request if role is Role.CLIENT else _reply
                conn.send(make(kind, arg, conn.list_id or 1), now=now)
            elif op % 4 == 2:
                conn.receive_data(b"", now=now)
                _drain(conn)
            else:
                now += op
                conn.peer_overdue(now)
                conn.heartbeat_due_at()
        except LocalProtocolError:
            pass
        except RemoteProtocolError:
            if conn.state is not ConnectionState.ERROR:
                raise AssertionError("a remote violation must leave the engine in ERROR") from None
            return


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
