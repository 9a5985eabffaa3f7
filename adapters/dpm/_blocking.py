"""The blocking socket link the sync and threaded adapters share: one socket, one client engine.

A :class:`_Link` connects, does the handshake, then moves bytes between its
socket and its :class:`~acnet_proto.engine.client.ClientConnection` whenever asked.
It is not thread-safe: one thread at a time owns a link.
"""

from __future__ import annotations

import math
import socket
import struct
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from acnet_proto.engine import HEARTBEAT_PERIOD
from acnet_proto.engine.client import ClientConnection, Plan
from acnet_proto.errors import ProtocolError
from acnet_proto.plans.lists import ListPlan
from acnet_proto.plans.settings import WriteBatch, WritePlan, outcome_unknown
from acnet_proto.streams.driver import StreamDriver
from acnet_proto.types import Reading

__all__ = ["_BROKEN", "_Link", "_left", "apply_settings", "open_stream", "run_plan"]

#: What a stream's connection (or an attempt to make one) dies of; a timeout is an OSError.
_BROKEN = (OSError, ProtocolError)


#: ``struct timeval`` as SO_RCVTIMEO and SO_SNDTIMEO take it: seconds, microseconds.
_TIMEVAL = struct.Struct("@ll")
#: A socket timeout is set to the whole time left only below this; above, to half of it.
_EXACT_BELOW = 0.01
_READ_SIZE = 262144


class _Link:
    """One socket and the client engine on it.

    The socket stays blocking: a deadline is kept by the kernel's SO_RCVTIMEO
    and SO_SNDTIMEO, which a call lowers only when the time it has left is
    shorter than what they hold, so the common call makes no syscall besides
    its ``recv`` or ``send`` (``settimeout()`` would poll() before each one).
    """

    def __init__(
        self, host: str, port: int, deadline: float, heartbeat_period: float = HEARTBEAT_PERIOD
    ) -> None:
        self.client = ClientConnection(heartbeat_period=heartbeat_period)
        self.sock = socket.create_connection((host, port), timeout=_left(deadline))
        # what SO_RCVTIMEO and SO_SNDTIMEO hold, in seconds (inf: nothing, block for ever)
        self._recv_wait = self._send_wait = math.inf
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.settimeout(None)
            self.send(self.client.start(), deadline)
            while not self.client.ready:
                self.pump(deadline)
        except BaseException:
            self.sock.close()  # a failed handshake must not leave its socket to the collector
            raise

    def pump(self, deadline: float) -> list[tuple[int, Reading]]:
        """Wait for bytes until ``deadline``; return the readings they made.

        Raises TimeoutError if none came by then.
        """
        grow = False  # after a wait the socket timeout ended, not the deadline
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("deadline passed")
            if left < self._recv_wait or grow:
                self._recv_wait = self._limit(socket.SO_RCVTIMEO, left)
            try:
                data = self.sock.recv(_READ_SIZE)
            except BlockingIOError:
                grow = True
                continue
            return self.client.receive(data, now=time.monotonic())

    def pump_for(self, seconds: float) -> list[tuple[int, Reading]]:
        """Wait up to ``seconds`` (0: not at all) for bytes; raises TimeoutError if none."""
        if seconds > 0:
            return self.pump(time.monotonic() + seconds)
        try:
            data = self.sock.recv(_READ_SIZE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            raise TimeoutError("no data waiting") from None
        return self.client.receive(data, now=time.monotonic())

    def send(self, data: bytes, deadline: float) -> None:
        """Send all of ``data`` by ``deadline``.

        Past the deadline, only what the socket takes without waiting goes.
        Raises TimeoutError if the peer takes in too little in time; what was
        sent of ``data`` is then unknown, and the link must be closed.
        """
        view = memoryview(data)
        grow = False  # after a wait the socket timeout ended, not the deadline
        while True:
            left = deadline - time.monotonic()
            flags = 0
            if left <= 0:
                flags = socket.MSG_DONTWAIT
            elif left < self._send_wait or grow:
                self._send_wait = self._limit(socket.SO_SNDTIMEO, left)
            try:
                sent = self.sock.send(view, flags)
            except BlockingIOError:
                if flags:
                    raise TimeoutError("the peer took in too little by the deadline") from None
                grow = True
                continue
            if sent == len(view):
                return
            view, grow = view[sent:], True

    def _limit(self, option: int, left: float) -> float:
        """Make the socket timeout ``option`` end before ``left`` seconds; return what it holds.

        Half of ``left`` (down to a floor, then all of it), so that the next
        call, with about as long left, finds it short enough already.
        """
        wait = left if left < _EXACT_BELOW else left / 2
        # rounded up, as a timeval of 0 would be no timeout at all
        timeval = _TIMEVAL.pack(*divmod(math.ceil(wait * 1e6), 1_000_000))
        self.sock.setsockopt(socket.SOL_SOCKET, option, timeval)
        return wait

    def close(self) -> None:
        self.sock.close()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def open_stream(
    host: str, port: int, driver: StreamDriver, deadline: float, heartbeat_period: float
) -> tuple[_Link, ListPlan]:
    """A new link with a fresh list of the driver's DRFs sent on it, and that list; the
    driver is told it was :meth:`~acnet_proto.streams.driver.StreamDriver.sent`.

    Each connection gets a list plan of its own: what one learned (an entry
    refused, the metadata) is learned afresh on the next. Raises what
    connecting raises (OSError, TimeoutError at ``deadline``, ProtocolError);
    nothing is left open then.
    """
    at = datetime.now(UTC)
    plan = ListPlan(driver.drfs, default_event=None)
    link = _Link(host, port, deadline, heartbeat_period)
    try:
        link.send(link.client.begin(plan, time.monotonic()), deadline)
    except BaseException:
        link.close()
        raise
    driver.sent(at, time.monotonic())
    return link, plan


class _FinitePlan(Plan, Protocol):
    """A plan that finishes on its own: a read batch, or settings (not a subscription)."""

    @property
    def done(self) -> bool: ...


def run_plan(link: _Link, plan: _FinitePlan, deadline: float) -> None:
    """Run ``plan`` (a read batch, or settings) over ``link`` until it is done, then end it.

    The plan's opening commands go in one write; whatever it answers to the
    server's replies is sent as it comes. Raises TimeoutError at
    ``deadline``, OSError or ProtocolError if the connection fails (the link
    is then mid-list and must be closed), and whatever the plan raises
    (e.g. AuthenticationError).
    """
    link.send(link.client.begin(plan, time.monotonic()), deadline)
    while not plan.done:
        link.pump(deadline)
        if answer := link.client.data_to_send():
            link.send(answer, deadline)
    if ending := link.client.end(time.monotonic()):
        link.send(ending, deadline)


def apply_settings(
    link: _Link | None, batch: WriteBatch, auth: Any, host: str, port: int, deadline: float
) -> _Link:
    """Apply ``batch`` over the settings connection ``link`` (a new one if None).

    Authenticates first when the connection's settings are not enabled yet.
    Returns the connection, authenticated, to keep for the next batch. On
    any failure the connection is closed; once the ``ApplySettings`` had left,
    the failure is raised as :class:`~acnet_proto.errors.SettingOutcomeUnknown`
    and nothing is sent again.
    """
    plan = None
    try:
        if link is None:
            link = _Link(host, port, deadline)
        plan = WritePlan(batch, auth.context, link.client.settings_enabled)
        run_plan(link, plan, deadline)
    except BaseException as exc:
        if link is not None:
            link.close()
        if (unknown := outcome_unknown(plan, exc)) is not None:
            raise unknown from exc
        raise
    return link
