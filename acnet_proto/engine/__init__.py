"""The DPM/TCP conversation as a sans-I/O state machine, in either role.

Everything an embedder needs is importable from here::

    from acnet_proto.engine import NEED_DATA, DPMConnection, Role
    from acnet_proto.pc import dpm

    conn = DPMConnection(Role.CLIENT)
    sock.sendall(conn.initiate())              # the handshake
    conn.receive_data(sock.recv(65536))        # bytes in ...
    while (event := conn.next_event()) is not NEED_DATA:
        ...                                    # ... events out: OpenListReply(list_id=...)
    sock.sendall(conn.send(dpm.StartListRequest(list_id=conn.list_id)))

The modules, one concern each:

- :mod:`~acnet_proto.engine.connection`: :class:`DPMConnection`, the rules;
- ``_state``: the states and the transition tables, as data;
- :mod:`~acnet_proto.engine.events`: the events that are not messages;
- :mod:`~acnet_proto.engine.framing`: the handshake and length-prefixed frames;
- :mod:`~acnet_proto.engine.client`: :class:`ClientConnection`, the engine and
  the plan (a read, a stream, a write) running on it;
- :mod:`~acnet_proto.engine.transcript`: recorded conversations, replayed.
"""

from acnet_proto.engine._state import (
    CONNECTION_TRANSITIONS,
    LIST_TRANSITIONS,
    SETTINGS_TRANSITIONS,
    ConnectionState,
    ListState,
    Role,
    SettingsState,
)
from acnet_proto.engine.client import ClientConnection, Plan
from acnet_proto.engine.connection import (
    DATA_REPLIES,
    HEARTBEAT_PERIOD,
    MISSED_HEARTBEATS,
    DPMConnection,
)
from acnet_proto.engine.events import (
    NEED_DATA,
    ConnectionClosed,
    ConnectionEvent,
    DataReply,
    Handshake,
    SettingsNotEnabled,
    StaleReply,
)
from acnet_proto.engine.framing import DEFAULT_MAX_FRAME_SIZE, HANDSHAKE, FrameSplitter, frame
from acnet_proto.errors import (
    ConnectionRefusedByProxy,
    DecodeError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)

__all__ = [
    "CONNECTION_TRANSITIONS",
    "DATA_REPLIES",
    "DEFAULT_MAX_FRAME_SIZE",
    "HANDSHAKE",
    "HEARTBEAT_PERIOD",
    "LIST_TRANSITIONS",
    "MISSED_HEARTBEATS",
    "NEED_DATA",
    "SETTINGS_TRANSITIONS",
    "ClientConnection",
    "ConnectionClosed",
    "ConnectionEvent",
    "ConnectionRefusedByProxy",
    "ConnectionState",
    "DPMConnection",
    "DataReply",
    "DecodeError",
    "FrameSplitter",
    "Handshake",
    "ListState",
    "LocalProtocolError",
    "Plan",
    "ProtocolError",
    "RemoteProtocolError",
    "Role",
    "SettingsNotEnabled",
    "SettingsState",
    "StaleReply",
    "frame",
]
