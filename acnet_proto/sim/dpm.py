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
  model's status, e.g. ``DPM_PEND``, a warning with no data, for a device
  the model lacks); ``#KEY:value`` entries are
  list properties (``#ROLE:testing`` claims a settings role);
- per ``StartList``: a ``DeviceInfo_reply`` per accepted entry,
  ``StartList_reply(status=0)``, a ``Status_reply`` per refused entry whose
  event streams (periodic or clock), then one reply per ``@I`` entry. A
  refused one-shot entry gets nothing beyond its ``AddToList_reply``, which
  already settled it; clients that count one answer per entry (pacsys's
  ``get_many``) would otherwise count it twice;
- the streams as :mod:`acnet_proto.sim.schedule` says (``@p``, ``@q``, ``@e``);
- entries with a ``<-LOGGER`` or ``<-FTP`` source as :mod:`acnet_proto.sim.history`
  says: after ``StartList_reply``, a ``Status_reply`` for each it refuses; then
  ``TimedScalarArray_reply`` chunks, a logger's ending with an empty one.
  Chunks are made a slice per :meth:`DPMSession.tick` (at most
  :data:`~acnet_proto.sim.history.TICK_CHUNKS` for all the list's feeds,
  see :class:`~acnet_proto.sim.history.Feeds`), so a long window is never
  made all at once and other clients are answered between two slices;
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

Limits (:class:`~acnet_proto.limits.ServerLimits`), decided here so that
every server built on a session enforces the same ones:

- a frame longer than ``max_request_bytes`` breaks the protocol (the engine
  refuses its length prefix before reading the frame);
- a DRF longer than :data:`~acnet_proto.drf.MAX_DRF_LENGTH` is refused with
  ``DPM_BAD_REQUEST`` before it is parsed or kept;
- the list keeps at most ``max_list_entries`` entries (list properties and
  refused streaming entries included): the one beyond is refused with
  :data:`TOO_MANY_ENTRIES`;
- the engine keeps every ref a client added, refused or not, until it is
  removed (so the client may remove it), and of an over-long DRF its first
  ``MAX_DRF_LENGTH + 1`` characters: a client that makes it keep more than
  twice ``max_list_entries`` refs, or that sends more than
  ``max_request_bytes`` characters of over-long DRFs on its list (work the
  server must decode and refuse), is dropped;
- a ``StartList`` of a list that streams (a periodic or clock entry) beyond
  ``max_streams_per_peer`` streaming lists of its peer, or ``max_streams`` of
  the server (counted by a shared :class:`~acnet_proto.limits.StreamQuota`), is answered
  ``StartList_reply(status=TOO_MANY_STREAMS)`` and sends nothing more:
  clients report that status for every entry of the list. A list answered
  at once (``@I``) holds no stream: its work is done by the StartList reply.

The limits default to :data:`~acnet_proto.limits.DEFAULT_LIMITS`.
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
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits, StreamQuota
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.sim.binding import Entry, status_reply
from acnet_proto.sim.codes import DPM_BAD_REQUEST
from acnet_proto.sim.history import Feeds, dpm_reply
from acnet_proto.sim.model import DeviceModel
from acnet_proto.sim.policy import DPM_PRIV
from acnet_proto.sim.schedule import ClockEvents, Group, fire_due, next_due, schedule
from acnet_proto.sim.settings import ServerSettings
from acnet_proto.status import Status

__all__ = ["FIRST_LIST_ID", "TOO_MANY_ENTRIES", "TOO_MANY_STREAMS", "DPMSession"]

#: Where the real DPM's list id pool starts.
FIRST_LIST_ID = 4096

#: An entry beyond ``max_list_entries``: ``DPM_OUTOMEM`` (17/-9, "Out of memory"), what
#: DPM answers when it will not allocate more for a list. ``DPM_LARGE_LIST`` (17/3) names
#: the cause better but is a warning (positive), which clients may take for success.
TOO_MANY_ENTRIES = Status.from_name("DPM_OUTOMEM").status

#: A ``StartList`` beyond ``max_streams_per_peer`` / ``max_streams``: ``ACNET_BUSY``
#: (1/-8, "Destination task busy"): an error (clients fail every entry of the list),
#: and one that passes: the same list starts once the peer's other lists stop.
TOO_MANY_STREAMS = Status.from_name("ACNET_BUSY").status


class DPMSession:
    """One client connection of a simulated DPM: its engine, its list, its schedule.

    ``model`` and ``clock`` are the server's, shared by every session;
    ``settings`` is this connection's settings state; ``new_list_id()``
    gives the id of the list this connection opens. ``note(text)`` is told
    why each setting was refused (for the server's log).
    ``insecure_settings`` applies settings without authentication (only
    "is it on the list" is checked).

    ``limits`` are the server's (see the module docstring for what this
    session enforces); ``quota`` counts streaming lists across the server's
    sessions, under the key ``peer`` (the client's address); without one,
    the session counts its own. ``refused(limit, text)`` is told each time a
    limit refused a request: which limit and why, for the server to log once
    per burst.
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
        limits: ServerLimits = DEFAULT_LIMITS,
        quota: StreamQuota | None = None,
        peer: str = "",
        refused: Callable[[str, str], None] | None = None,
    ) -> None:
        self.model = model
        self.clock = clock
        self.settings = settings
        self.insecure_settings = insecure_settings
        self.limits = limits
        frames = limits.max_request_bytes
        if heartbeat_period is None:
            self.conn = DPMConnection(Role.SERVER, max_frame_size=frames)
        else:
            self.conn = DPMConnection(
                Role.SERVER, max_frame_size=frames, heartbeat_period=heartbeat_period
            )
        self.quota = quota if quota is not None else StreamQuota(limits)
        self.peer = peer
        self._refused = refused
        #: True while this session holds a slot of :attr:`quota` (its started list streams)
        self.streaming = False
        # the refs the engine keeps -> characters the client sent for each over-long DRF
        self._held: dict[int, int] = {}
        self._held_chars = 0
        self._new_list_id = new_list_id
        self._note = note
        self.entries: dict[int, Entry] = {}
        # refused entries whose event streams: ref -> status, reported at StartList
        self.refused: dict[int, int] = {}
        #: list properties (``#ROLE:testing`` -> {"ROLE": "testing"})
        self.properties: dict[str, str] = {}
        self.groups: list[Group] = []
        # the started entries with a <- source (logger windows, fast time plots)
        self.feeds = Feeds()
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
                self._stop()
            elif isinstance(event, dpm.ClearListRequest):
                self._stop()
                self.entries.clear()
                self.refused.clear()
                self._held.clear()
                self._held_chars = 0
            elif isinstance(event, dpm.RemoveFromListRequest):
                self.entries.pop(event.ref_id, None)
                self.refused.pop(event.ref_id, None)
                self._held_chars -= self._held.pop(event.ref_id, 0)
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
                self.release()
                break
            else:
                raise RemoteProtocolError(f"this simulator does not serve {event!r}")
        return b"".join(out)

    def _add(self, request: dpm.AddToListRequest) -> dpm.AddToListReply:
        ref, text = request.ref_id, request.drf_request
        self._hold(ref, len(text) if len(text) > drf.MAX_DRF_LENGTH else 0)
        refusal = self._over_limit(text)
        if refusal is not None:
            return dpm.AddToListReply(list_id=request.list_id, ref_id=ref, status=refusal)
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

    def _hold(self, ref: int, over_long: int) -> None:
        """Count what the engine now keeps for ``ref``; raise if a client made it keep too much."""
        self._held[ref] = over_long
        self._held_chars += over_long
        entries, request = self.limits.max_list_entries, self.limits.max_request_bytes
        if len(self._held) > 2 * entries:
            raise RemoteProtocolError(
                f"the client kept adding past max_list_entries={entries}: "
                f"its list holds {len(self._held)} refs"
            )
        if self._held_chars > request:
            raise RemoteProtocolError(
                f"the client kept sending DRFs over {drf.MAX_DRF_LENGTH} characters: its "
                f"list holds {self._held_chars} of their characters, over "
                f"max_request_bytes={request}"
            )

    def _over_limit(self, text: str) -> int | None:
        """The status refusing ``text`` by a limit (checked before it is parsed), or None."""
        if len(text) > drf.MAX_DRF_LENGTH:
            self._limit("drf length", f"the limit is {drf.MAX_DRF_LENGTH}, got {len(text)}")
            return DPM_BAD_REQUEST
        entries = self.limits.max_list_entries
        if len(self.entries) + len(self.refused) + len(self.properties) >= entries:
            self._limit("list entries", f"max_list_entries={entries}")
            return TOO_MANY_ENTRIES
        return None

    def _limit(self, limit: str, text: str) -> None:
        if self._refused is not None:
            self._refused(limit, text)

    def _stop(self) -> None:
        self.groups = []
        self.feeds = Feeds()
        self.release()

    def release(self) -> None:
        """Give back the list's stream slot: the list stopped, or the connection ended."""
        if self.streaming:
            self.streaming = False
            self.quota.give_back(self.peer)

    @property
    def opened(self) -> bool:
        """True once the handshake is done (the list is open)."""
        return self.opened_at is not None

    def _start(self, now: float, wall: float) -> list[Message]:
        live = [(ref, e) for ref, e in self.entries.items() if e.request.source is None]
        immediate, groups = schedule(live, now, self.clock)
        feeds, failed = Feeds.start(self.entries.items(), now, wall)
        for ref, rejected in failed:
            self._tell(f"ref {ref}: {rejected.reason}")
        if not groups and not feeds:
            self.release()  # answered at once: it holds no stream
        elif not self.streaming:
            refusal = self.quota.take(self.peer)
            if refusal is not None:
                self.groups = []
                self._limit("streams", refusal)
                return [dpm.StartListReply(list_id=self.conn.list_id, status=TOO_MANY_STREAMS)]
            self.streaming = True
        self.groups = groups
        self.feeds = feeds
        replies: list[Message] = [entry.device_info(ref) for ref, entry in self.entries.items()]
        replies.append(dpm.StartListReply(list_id=self.conn.list_id, status=0))
        replies.extend(status_reply(ref, status, wall) for ref, status in self.refused.items())
        replies.extend(entry.reply(ref, wall) for ref, entry in immediate)
        replies.extend(status_reply(ref, e.status, wall) for ref, e in failed)
        return replies

    def _apply(self, request: dpm.ApplySettingsRequest) -> dpm.ApplySettingsReply:
        """Authorize each setting (principal, role, the name of the model device its entry
        was bound to), then apply the allowed ones."""
        values: dict[int, object] = {}
        for array in (request.raw_array, request.scaled_array, request.text_array):
            for setting in array or ():
                values[setting.ref_id] = setting.data
        # the model's names, not the DRFs: roles must see G:AMANDA however it was spelled
        listed = {ref: entry.device.name for ref, entry in self.entries.items()}
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
        dues = [next_due(self.groups), self._heartbeat_due(), self.feeds.next_due()]
        return min((due for due in dues if due is not None), default=None)

    def tick(self, now: float, wall: float) -> bytes:
        """Everything due by ``now``: the data of every group that fired, and the heartbeat."""
        conn = self.conn
        if conn.state is not ConnectionState.OPEN:
            return b""  # the client has gone; the server is about to stop serving it
        send = conn.send
        out = [send(reply) for reply in fire_due(self.groups, now, wall, self.clock)]
        out.extend(send(reply) for reply in self._fire_feeds(now, wall))
        heartbeat = self._heartbeat_due()
        if heartbeat is not None and heartbeat <= now:
            out.append(conn.heartbeat(now))
        return b"".join(out)

    def _fire_feeds(self, now: float, wall: float) -> list[Message]:
        """This tick's slice of the feeds' chunks; a list whose feeds all ended and that
        has nothing else to stream gives its stream slot back."""
        replies: list[Message] = [
            dpm_reply(ref, chunk, wall) for ref, chunk in self.feeds.fire(now, wall)
        ]
        if replies and not self.groups and not self.feeds:
            self.release()
        return replies

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
