"""The blocking socket link the sync and threaded adapters share: one socket, one client engine.

A :class:`_Link` connects, does the handshake, then moves bytes between its
socket and its :class:`~acnet_proto.engine.client.ClientConnection` whenever asked.
It is not thread-safe: one thread at a time owns a link.
"""

from __future__ import annotations

import socket
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


class _Link:
    """One socket and the client engine on it."""

    def __init__(
        self, host: str, port: int, deadline: float, heartbeat_period: float = HEARTBEAT_PERIOD
    ) -> None:
        self.client = ClientConnection(heartbeat_period=heartbeat_period)
        self.sock = socket.create_connection((host, port), timeout=_left(deadline))
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.sendall(self.client.start())
            while not self.client.ready:
                self.pump(deadline)
        except BaseException:
            self.sock.close()  # a failed handshake must not leave its socket to the collector
            raise

    def pump(self, deadline: float) -> list[tuple[int, Reading]]:
        """Wait for bytes until ``deadline``; return the readings they made."""
        return self.pump_for(_left(deadline))

    def pump_for(self, seconds: float) -> list[tuple[int, Reading]]:
        """Wait up to ``seconds`` (0: not at all) for bytes; raises TimeoutError if none."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            raise TimeoutError("no data waiting") from None
        return self.client.receive(data, now=time.monotonic())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

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
        link.send(link.client.begin(plan, time.monotonic()))
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
    link.send(link.client.begin(plan, time.monotonic()))
    while not plan.done:
        link.pump(deadline)
        if answer := link.client.data_to_send():
            link.send(answer)
    if ending := link.client.end(time.monotonic()):
        link.send(ending)


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
