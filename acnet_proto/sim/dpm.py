"""A simulated DPM's side of one client connection, with no I/O: what to send, and when.

The server (``acnet_proto.adapters.sim.dpm``) owns the socket and the timer;
a :class:`DPMSession` owns everything else: the server-role engine, the list,
its schedule and its settings. Hand it what arrived, and what is due, and
write what it returns::

    session = DPMSession(model, clock, settings, new_list_id)
    out = session.receive(data, now=loop.time(), wall=time.time())   # b"" when closed
    ...
    out = session.tick(now=loop.time(), wall=time.time())  # at session.next_due()

What is sent, and in what order (as in the recorded conversations of
``tests/shared/transcripts``):

- after the handshake, ``OpenList_reply`` with a fresh list id;
- per ``AddToList``, its ``AddToList_reply`` (a refused entry carries the
  model's status, e.g. ``DPM_NO_SUCH_DEVICE``); ``#KEY:value`` entries are
  list properties (``#ROLE:testing`` claims a settings role);
- per ``StartList``: a ``DeviceInfo_reply`` per accepted entry,
  ``StartList_reply(status=0)``, a ``Status_reply`` per refused entry whose
  event streams (periodic or clock), then one reply per ``@I`` entry. A
  refused one-shot entry gets nothing beyond its ``AddToList_reply``, which
  already settled it; clients that count one answer per entry (pacsys's
  ``get_many``) would otherwise count it twice;
- the streams as :mod:`acnet_proto.sim.schedule` says (``@p``, ``@q``, ``@e``);
- ``ListStatus_reply`` every :attr:`DPMConnection.heartbeat_period` once the
  list is open, the first one period after the open;
- settings: ``Authenticate``/``EnableSettings`` as
  :class:`~acnet_proto.sim.settings.ServerSettings` answers them; each
  ``ApplySettings`` entry is then authorized by principal, ``#ROLE:`` and
  device and refused with ``DPM_PRIV``/``DPM_DBPRIV``, or applied to the
  model. ``ApplySettings`` without enabled settings refuses every entry with
  ``DPM_PRIV`` — unless ``insecure_settings``, which applies them unchecked.

A client that breaks the protocol makes :meth:`DPMSession.receive` raise
:class:`~acnet_proto.errors.RemoteProtocolError`: the server drops it.
"""

from __future__ import annotations

from collections.abc import Callable

from acnet_proto import drf
from acnet_proto.engine import (
    NEED_DATA,
    ConnectionClosed,
    ConnectionState,
    DPMConnection,
    Handshake,
    Role,
    SettingsNotEnabled,
)
from acnet_proto.errors import RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.sim.binding import Entry, status_reply
from acnet_proto.sim.codes import DPM_BAD_REQUEST
from acnet_proto.sim.model import DeviceModel
from acnet_proto.sim.policy import DPM_PRIV
from acnet_proto.sim.schedule import ClockEvents, Group, fire_due, next_due, schedule
from acnet_proto.sim.settings import ServerSettings

__all__ = ["FIRST_LIST_ID", "DPMSession"]

#: Where the real DPM's list id pool starts.
FIRST_LIST_ID = 4096


class DPMSession:
    """One client connection of a simulated DPM: its engine, its list, its schedule.

    ``model`` and ``clock`` are the server's, shared by every session;
    ``settings`` is this connection's settings state; ``new_list_id()``
    gives the id of the list this connection opens. ``note(text)`` is told
    why each setting was refused (for the server's log).
    ``insecure_settings`` applies settings without authentication (only
    "is it on the list" is checked).
    """

    def __init__(
        self,
        model: DeviceModel,
        clock: ClockEvents,
        settings: ServerSettings,
        new_list_id: Callable[[], int],
        *,
        insecure_settings: bool = False,
        heartbeat_period: float | None = None,
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model
        self.clock = clock
        self.settings = settings
        self.insecure_settings = insecure_settings
        if heartbeat_period is None:
            self.conn = DPMConnection(Role.SERVER)
        else:
            self.conn = DPMConnection(Role.SERVER, heartbeat_period=heartbeat_period)
        self._new_list_id = new_list_id
        self._note = note
        self.entries: dict[int, Entry] = {}
        # refused entries whose event streams: ref -> status, reported at StartList
        self.refused: dict[int, int] = {}
        #: list properties (``#ROLE:testing`` -> {"ROLE": "testing"})
        self.properties: dict[str, str] = {}
        self.groups: list[Group] = []
        self.opened_at: float | None = None
        #: True once the client closed its side: the server stops serving it
        self.closed = False

    # -- receiving ---------------------------------------------------------------------

    def receive(self, data: bytes, now: float, wall: float) -> bytes:
        """Take ``data`` from the client (``b""``: it closed); return the bytes to send back.

        Raises :class:`RemoteProtocolError` when the client broke the
        protocol: drop the connection then.
        """
        conn = self.conn
        conn.receive_data(data, now=now)
        send = conn.send
        out: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if isinstance(event, dpm.AddToListRequest):
                out.append(send(self._add(event)))
            elif isinstance(event, dpm.StartListRequest):
                out.extend(send(reply) for reply in self._start(now, wall))
            elif isinstance(event, dpm.StopListRequest):
                self.groups = []
            elif isinstance(event, dpm.ClearListRequest):
                self.groups = []
                self.entries.clear()
                self.refused.clear()
            elif isinstance(event, dpm.RemoveFromListRequest):
                self.entries.pop(event.ref_id, None)
                self.refused.pop(event.ref_id, None)
                reply = dpm.RemoveFromListReply(
                    list_id=event.list_id, ref_id=event.ref_id, status=0
                )
                out.append(send(reply))
            elif isinstance(event, Handshake):
                out.append(send(dpm.OpenListReply(list_id=self._new_list_id())))
                self.opened_at = now
            elif isinstance(event, dpm.AuthenticateRequest):
                out.append(send(*self.settings.on_authenticate(event)))
            elif isinstance(event, dpm.EnableSettingsRequest):
                out.append(send(*self.settings.on_enable(event)))
                if self.settings.refusal:
                    self._tell(f"settings refused: {self.settings.refusal}")
            elif isinstance(event, dpm.ApplySettingsRequest):
                out.append(send(self._apply(event)))
            elif isinstance(event, SettingsNotEnabled):
                request = event.request
                # the engine reports only an ApplySettings this way
                assert isinstance(request, dpm.ApplySettingsRequest)
                if self.insecure_settings:
                    out.append(send(self._apply(request)))
                else:
                    out.append(send(_refuse_settings(request, DPM_PRIV.status)))
            elif isinstance(event, ConnectionClosed):
                self.closed = True
                break
            else:
                raise RemoteProtocolError(f"this simulator does not serve {event!r}")
        return b"".join(out)

    def _add(self, request: dpm.AddToListRequest) -> dpm.AddToListReply:
        ref, text = request.ref_id, request.drf_request
        if text.startswith("#"):
            # a list property such as #ROLE:testing, kept for the settings layer
            key, sep, value = text[1:].partition(":")
            ok = bool(key and sep)
            if ok:
                self.properties[key] = value
            status = 0 if ok else DPM_BAD_REQUEST
            return dpm.AddToListReply(list_id=request.list_id, ref_id=ref, status=status)
        reply, entry = self.model.add_to_list(request.list_id, ref, text)
        if entry is not None:
            self.entries[ref] = entry
        elif _streams(text):
            self.refused[ref] = reply.status
        return reply

    def _start(self, now: float, wall: float) -> list[Message]:
        replies: list[Message] = [entry.device_info(ref) for ref, entry in self.entries.items()]
        replies.append(dpm.StartListReply(list_id=self.conn.list_id, status=0))
        replies.extend(status_reply(ref, status, wall) for ref, status in self.refused.items())
        immediate, self.groups = schedule(self.entries.items(), now, self.clock)
        replies.extend(entry.reply(ref, wall) for ref, entry in immediate)
        return replies

    def _apply(self, request: dpm.ApplySettingsRequest) -> dpm.ApplySettingsReply:
        """Authorize each setting (principal, role, device), then apply the allowed ones."""
        values: dict[int, object] = {}
        for array in (request.raw_array, request.scaled_array, request.text_array):
            for setting in array or ():
                values[setting.ref_id] = setting.data
        listed = {ref: entry.drf for ref, entry in self.entries.items()}
        if "ROLE" in self.properties:
            listed[0] = "#ROLE:" + self.properties["ROLE"]
        model = self.model

        def protection(name: str) -> int:
            device = model.device(name)
            return device.protection if device is not None else 0

        if self.insecure_settings and not self.settings.enabled:
            verdicts = {ref: None if ref in self.entries else DPM_PRIV for ref in values}
        else:
            verdicts = self.settings.authorize(listed, list(values), protection)
        statuses = []
        for ref, value in values.items():
            refusal = verdicts[ref]
            if refusal is None:
                status = model.apply_setting(self.entries[ref], value)
            else:
                status = refusal.status
                self._tell(f"refused setting ref {ref}: {refusal}")
            statuses.append(dpm.SettingStatus(ref_id=ref, status=status))
        return dpm.ApplySettingsReply(status=statuses)

    def _tell(self, text: str) -> None:
        if self._note is not None:
            self._note(text)

    # -- time ---------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When :meth:`tick` has something to send next (monotonic); None: nothing scheduled."""
        dues = [due for due in (next_due(self.groups), self._heartbeat_due()) if due is not None]
        return min(dues, default=None)

    def tick(self, now: float, wall: float) -> bytes:
        """Everything due by ``now``: the data of every group that fired, and the heartbeat."""
        conn = self.conn
        if conn.state is not ConnectionState.OPEN:
            return b""  # the client has gone; the server is about to stop serving it
        send = conn.send
        out = [send(reply) for reply in fire_due(self.groups, now, wall, self.clock)]
        heartbeat = self._heartbeat_due()
        if heartbeat is not None and heartbeat <= now:
            out.append(conn.heartbeat(now))
        return b"".join(out)

    def _heartbeat_due(self) -> float | None:
        due = self.conn.heartbeat_due_at()
        if due is None or self.opened_at is None:
            return None
        return max(due, self.opened_at + self.conn.heartbeat_period)


def _streams(drf_text: str) -> bool:
    """True if ``drf_text`` names a periodic or clock event (one that keeps sending)."""
    try:
        event = drf.parse(drf_text).event
    except drf.DRFError:
        return False
    return isinstance(event, drf.PeriodicEvent | drf.ClockEvent)


def _refuse_settings(request: dpm.ApplySettingsRequest, status: int) -> dpm.ApplySettingsReply:
    settings = (request.raw_array or (), request.scaled_array or (), request.text_array or ())
    return dpm.ApplySettingsReply(
        status=[dpm.SettingStatus(ref_id=s.ref_id, status=status) for a in settings for s in a]
    )
