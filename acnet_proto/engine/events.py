"""Events that :meth:`DPMConnection.next_event` returns besides protocol messages.

Most events *are* messages (``acnet_proto.pc.dpm`` classes). These few
say something no single message says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message

__all__ = [
    "NEED_DATA",
    "ConnectionClosed",
    "ConnectionEvent",
    "DataReply",
    "Handshake",
    "NeedData",
    "SettingsNotEnabled",
    "StaleReply",
]


class NeedData:
    """The type of :data:`NEED_DATA`, its one instance: no complete event yet; call
    ``receive_data`` with more bytes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()


@dataclass(frozen=True, slots=True)
class Handshake:
    """(Server role) the client's HTTP-style handshake arrived; send ``OpenListReply`` next."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side of the connection cleanly (at a frame boundary)."""


@dataclass(frozen=True, slots=True)
class StaleReply:
    """A reply for an entry this side already stopped, cleared or removed.

    It raced the ``StopList``/``ClearList``/``RemoveFromList`` on the wire; it
    is not an error, and its data belongs to the old list. ``message`` is the
    reply itself.
    """

    message: Message


@dataclass(frozen=True, slots=True)
class SettingsNotEnabled:
    """(Server role) an ``ApplySettings`` arrived on a list whose settings are not enabled.

    The lab's servers answer this with a ``DPM_PRIV`` status per setting rather
    than dropping the connection, so the engine reports it instead of raising;
    the server must still send an ``ApplySettingsReply`` refusing every entry.
    """

    request: dpm.ApplySettingsRequest


#: What :meth:`~acnet_proto.engine.connection.DPMConnection.next_event` returns, besides
#: :data:`NEED_DATA`: a DPM message (a :class:`~acnet_proto.pc.Message`) or one of the above.
ConnectionEvent: TypeAlias = (
    Message | Handshake | ConnectionClosed | StaleReply | SettingsNotEnabled
)

#: The replies that carry an entry's data (a value, a status block, an alarm block).
DataReply: TypeAlias = (
    dpm.ScalarReply
    | dpm.ScalarArrayReply
    | dpm.RawReply
    | dpm.TextReply
    | dpm.TextArrayReply
    | dpm.TimedScalarArrayReply
    | dpm.AnalogAlarmReply
    | dpm.DigitalAlarmReply
    | dpm.BasicStatusReply
)
