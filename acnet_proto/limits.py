"""How much one peer may take of a server: the limits our servers enforce, and burst logging.

The simulators (DPM, gRPC DAQ, DevDB, ACL) and the supervised proxy all
face clients they cannot trust: anyone who can reach the port, before any
authentication. :class:`ServerLimits` is what each of them enforces, so that
no unauthenticated client can take the service away from the others; the
security page of the docs says how each attack is refused.

Pure: no clocks (callers pass ``now``), no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["DEFAULT_LIMITS", "Burst", "ServerLimits"]


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
    - ``max_list_entries``: entries one DPM list may hold.
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
    max_list_entries: int = 4096
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
                raise ValueError(f"ServerLimits.{spec.name} must be {wanted}, got {value!r}")


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
