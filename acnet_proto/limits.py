"""How much one peer may take of a server: the limits our servers enforce, and burst logging.

The simulators (DPM, gRPC DAQ, DevDB, ACL) and the supervised proxy all
face clients they cannot trust: anyone who can reach the port, before any
authentication. :class:`ServerLimits` is what each of them enforces, so that
no unauthenticated client can take the service away from the others; the
security page of the docs says how each attack is refused.

The decisions the servers share are made here: which address a peer is
counted under (:func:`peer_address`), whether a request lists too much
(:func:`request_problem`), whether a peer may open one more stream
(:class:`StreamQuota`), and which refusals to log (:class:`Bursts`).

Pure: no clocks (callers pass ``now``), no I/O, no threads (a threaded
server holds its own lock around a :class:`StreamQuota` or :class:`Bursts`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields

from acnet_proto._text import decimal, shown
from acnet_proto.drf import MAX_DRF_LENGTH
from acnet_proto.errors import ConfigurationError

__all__ = [
    "DEFAULT_LIMITS",
    "Burst",
    "Bursts",
    "ServerLimits",
    "StreamQuota",
    "peer_address",
    "request_problem",
    "unavailable",
]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one server allows its clients; the defaults suit a lab service on one host.

    - ``handshake_timeout``: seconds a new connection has to finish its
      opening (DPM: the handshake; HTTP: the request line and headers;
      gRPC: the HTTP/2 preface) before it is closed.
    - ``idle_timeout``: seconds a connection may hold nothing open (no
      list started, no call or stream in flight) and say nothing before it is
      closed. A connection with a running list or stream is never idle.
    - ``max_connections``: open connections per server. Beyond it, a
      connection that holds nothing open is shed first (the oldest); if
      none can be, the newest is refused with a status saying why.
    - ``max_streams_per_peer``: concurrent streams (gRPC ``Read`` streams,
      started DPM lists, ACL ``/pendwait`` commands) per peer address;
      ``max_streams``: per server. The newest beyond either is refused.
    - ``max_list_entries``: entries one DPM list, or one gRPC request, may
      hold; 10,000 by default, so that the simulator's 10,000-device family
      (``Z:SIM0000`` .. ``Z:SIM9999``) is read as one list.
    - ``max_request_bytes``: the largest request (a DPM frame, a gRPC
      message, an HTTP request) read from a peer; larger ones are refused
      before they are stored.
    - ``max_buffered_bytes``: bytes a connection may leave unsent (a client
      that does not read) before it is dropped.
    - ``max_wait``: seconds one blocking request (ACL ``/pendwait``) may wait.
    - ``quiet_period``: seconds without a refusal of a kind that end its
      burst (see :class:`Burst`).
    """

    handshake_timeout: float = 10.0
    idle_timeout: float = 300.0
    max_connections: int = 512
    max_streams_per_peer: int = 16
    max_streams: int = 128
    max_list_entries: int = 10_000
    max_request_bytes: int = 1024 * 1024
    max_buffered_bytes: int = 16 * 1024 * 1024
    max_wait: float = 60.0
    quiet_period: float = 10.0

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.type == "int":
                ok = type(value) is int and value >= 1
                wanted = "a positive integer"
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                ok = ok and math.isfinite(value) and value > 0
                wanted = "a positive, finite number of seconds"
            if not ok:
                raise ConfigurationError(
                    f"ServerLimits.{spec.name} must be {wanted}, got {value!r}"
                )


#: The limits a server enforces when it is given none.
DEFAULT_LIMITS = ServerLimits()


class Burst:
    """Refusals of one kind, logged once per burst rather than once each.

    Call :meth:`refused` for each refusal: it returns True for the first of a
    burst (log that one, saying more may follow). A burst ends after
    ``quiet_period`` seconds without a refusal; :meth:`ended` then returns how
    many the burst refused in all (log that once), else None.
    """

    def __init__(self, quiet_period: float = DEFAULT_LIMITS.quiet_period) -> None:
        self.quiet_period = quiet_period
        self.count = 0
        self._last: float | None = None

    def refused(self, now: float) -> bool:
        """Count one refusal at ``now``; True if it starts a burst."""
        starts = self._last is None
        self.count = 1 if starts else self.count + 1
        self._last = now
        return starts

    def ended(self, now: float) -> int | None:
        """The burst's total if it ended by ``now`` (then forgets it); else None."""
        if self._last is None or now - self._last < self.quiet_period:
            return None
        total, self.count, self._last = self.count, 0, None
        return total


class Bursts:
    """Refusals of several kinds (``"shed"``, ``"a stream"``), each counted in bursts of its
    own as :class:`Burst` counts them; a kind is forgotten once its burst has ended."""

    def __init__(self, quiet_period: float = DEFAULT_LIMITS.quiet_period) -> None:
        self.quiet_period = quiet_period
        self._bursts: dict[str, Burst] = {}

    def refused(self, kind: str, now: float) -> tuple[bool, int | None]:
        """Count one refusal of ``kind`` at ``now``: whether it starts a burst (log it), and
        the total of the kind's previous burst if that ended by ``now`` (log it first)."""
        burst = self._bursts.setdefault(kind, Burst(self.quiet_period))
        total = burst.ended(now)
        return burst.refused(now), total

    def ended_all(self, now: float) -> list[tuple[str, int]]:
        """``(kind, total)`` of every burst that ended by ``now`` (``math.inf``: all), each
        reported once."""
        ended = []
        for kind, burst in list(self._bursts.items()):
            total = burst.ended(now)
            if total is not None:
                ended.append((kind, total))
                del self._bursts[kind]
        return ended


def peer_address(peer: str) -> str:
    """The address a peer is counted under: a grpc peer string without its port, so that
    ``ipv4:10.0.0.1:5000`` and ``ipv4:10.0.0.1:6000`` are both ``ipv4:10.0.0.1``
    (``ipv6:[::1]:5000``: ``ipv6:[::1]``); anything else (a bare host, ``unix:...``, a
    string without a decimal port) as it is."""
    kind, _, rest = peer.partition(":")
    address, colon, port = rest.rpartition(":")
    if kind in ("ipv4", "ipv6") and colon and decimal(port) is not None:
        return f"{kind}:{address}"
    return peer


def request_problem(names: Sequence[str | int], what: str, limits: ServerLimits) -> str | None:
    """Why a request listing ``names`` (DRFs, device names, ids) is refused before it is looked
    at: more than ``limits.max_list_entries`` of them, or a text longer than ``MAX_DRF_LENGTH``.
    None if neither. ``what`` names the request (``"ReadingList"``) in the reason, which
    shows the offending text bounded and escaped."""
    if len(names) > limits.max_list_entries:
        return (
            f"the {what} has {len(names)} entries; this server takes at most "
            f"{limits.max_list_entries} (max_list_entries): split it into smaller requests"
        )
    for index, name in enumerate(names):
        if isinstance(name, str) and len(name) > MAX_DRF_LENGTH:
            return (
                f"entry {index} of the {what} ({shown(name, 40)}) is {len(name)} characters "
                f"long; the limit is {MAX_DRF_LENGTH}"
            )
    return None


class StreamQuota:
    """Streams open per peer address and per server, held to ``limits.max_streams_per_peer``
    and ``limits.max_streams``. ``what`` names the streams in refusals (``"streams"``,
    ``"/pendwait requests"``).

    :meth:`take` a slot before a stream starts, :meth:`give_back` it when
    the stream ends. Addresses are the caller's (see :func:`peer_address`).
    """

    def __init__(self, limits: ServerLimits = DEFAULT_LIMITS, what: str = "streams") -> None:
        self.limits = limits
        self.what = what
        self._open: Counter[str] = Counter()
        self._total = 0

    def take(self, address: str) -> str | None:
        """Hold a slot for a stream of ``address`` and return None; or, if the server or the
        address has no slot left, hold nothing and return why (the limit, its value, and
        what to do)."""
        limits, what = self.limits, self.what
        if self._total >= limits.max_streams:
            return (
                f"this server already serves {self._total} {what} (max_streams): "
                f"max_streams={limits.max_streams} allows no more; retry when one ends"
            )
        held = self._open[address]
        if held >= limits.max_streams_per_peer:
            return (
                f"this client address already has {held} {what} open (max_streams_per_peer): "
                f"max_streams_per_peer={limits.max_streams_per_peer} allows no more; "
                "end one first"
            )
        self._open[address] = held + 1
        self._total += 1
        return None

    def give_back(self, address: str) -> None:
        """Free a slot :meth:`take` held for ``address``; a LookupError if it holds none (a
        caller's bug, which would otherwise raise the server's capacity in silence)."""
        if self._open[address] <= 0:
            del self._open[address]
            raise LookupError(f"{shown(address)} holds no {self.what} slot to give back")
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]
        self._total -= 1

    def open(self, address: str | None = None) -> int:
        """How many streams are open: of ``address``, or in all (None)."""
        return self._total if address is None else self._open.get(address, 0)


def unavailable(reason: str) -> bytes:
    """A whole ``HTTP/1.1 503 Service Unavailable`` answer whose body is ``reason``: how a
    server at its connection limit turns a newcomer away before any protocol starts (an HTTP
    client shows the body; our DPM clients raise
    :class:`~acnet_proto.errors.ConnectionRefusedByProxy` with status 503)."""
    body = f"{reason}\n".encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body
