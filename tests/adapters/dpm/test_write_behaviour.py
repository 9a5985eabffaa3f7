"""Settings as every writing adapter does them (tests/support/clients.py): the seeds' writing guide.

Real Kerberos (the session KDC) and the simulator enforcing :data:`POLICY`:
``operator`` (the KDC's default ticket) holds ``testing``, which may set
``Z:*``; ``outsider`` holds nothing. Each client talks to the simulator
through a :class:`Relay`, which forwards bytes untouched while it notes
every request the client sends, and can cut a connection right after the
server applied its settings without the reply reaching the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from acnet_proto.engine.framing import FrameSplitter, HandshakeReader
from acnet_proto.errors import (
    AuthenticationError,
    ConnectionLost,
    ProtocolError,
    SettingOutcomeUnknown,
)
from acnet_proto.pc import dpm
from acnet_proto.sim import SettingsPolicy
from acnet_proto.status import Status
from acnet_proto.types import BasicControl
from tests.support.clients import ADAPTERS, WRITERS, Client
from tests.support.servers.kdc import KDC

pytest.importorskip("gssapi")
from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim.dpm import SimServer

pytestmark = pytest.mark.integration

POLICY = SettingsPolicy.from_toml(
    """
[roles.testing]
allow = ["Z:*"]

[principals."operator@FNAL.GOV"]
roles = ["testing"]
"""
)
DPM_PRIV = Status.from_name("DPM_PRIV")
NO_SUCH = Status.from_name("DPM_PEND")  # the lab's DPM's answer for a device it lacks
APPLY = "ApplySettingsRequest"
AUTHENTICATE = "AuthenticateRequest"


class Relay:
    """A TCP relay in front of ``upstream`` that reads what clients send.

    :attr:`requests` holds, per connection in accept order, the names of the
    requests the client sent. With :attr:`cut_at` set to a request name, the
    next connection to send that request is cut: right away, the request
    withheld; or, for ``ApplySettings``, once the server has answered it, the
    answer withheld: the settings took effect, and the client cannot know.
    With :attr:`hold` the cut connection is not closed: the client hears
    nothing more.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.requests: list[list[str]] = []
        self.cut_at: str | None = None
        self.hold = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._spawn(self._accept)

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        _hang_up(self._listener)  # shutdown() is what wakes a thread blocked in accept()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _hang_up(sock)
        for thread in self._threads:
            thread.join(5)

    def count(self, name: str) -> int:
        """How many ``name`` requests clients sent, over every connection."""
        return sum(sent.count(name) for sent in self.requests)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed: the relay is done
                return
            server = socket.create_connection(self.upstream)
            sent: list[str] = []
            cut = threading.Event()
            with self._lock:
                self._sockets += [client, server]
                self.requests.append(sent)
            self._spawn(self._client_to_server, client, server, sent, cut)
            self._spawn(self._server_to_client, server, client, cut)

    def _client_to_server(
        self, client: socket.socket, server: socket.socket, sent: list[str], cut: threading.Event
    ) -> None:
        handshake: HandshakeReader | None = HandshakeReader()
        frames = FrameSplitter()
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                rest = data
                if handshake is not None:
                    rest = handshake.feed(data)
                    if rest is None:
                        server.sendall(data)
                        continue
                    handshake = None
                for payload in frames.feed(rest):
                    name = type(dpm.decode_request(payload)).__name__
                    sent.append(name)
                    if name == self.cut_at:
                        self.cut_at = None
                        cut.set()  # before it reaches the server, so no answer slips through
                        if name != APPLY:
                            _hang_up(client)
                            _hang_up(server)
                            return
                server.sendall(data)
        _hang_up(server)

    def _server_to_client(
        self, server: socket.socket, client: socket.socket, cut: threading.Event
    ) -> None:
        frames = FrameSplitter()
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                replies = [type(dpm.decode_reply(p)).__name__ for p in frames.feed(data)]
                if not cut.is_set():
                    client.sendall(data)
                elif "ApplySettingsReply" in replies and not self.hold:
                    break  # the server applied them: hang up on the client instead of answering
        _hang_up(client)
        _hang_up(server)


def _hang_up(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture(params=WRITERS)
def adapter(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    return start_sim(keytab=kdc.keytab, policy=POLICY)


@pytest.fixture
def relay(sim: SimServer) -> Iterator[Relay]:
    with Relay((sim.host, sim.port)) as r:
        yield r


@pytest.fixture
def connect(adapter: str, relay: Relay) -> Iterator[Callable[..., Client]]:
    """``connect(auth=..., role=...)``: a client of ``adapter`` through the relay, closed after."""
    clients: list[Client] = []

    def open_client(**credentials: Any) -> Client:
        client = ADAPTERS[adapter](relay.host, relay.port, **credentials)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()


@pytest.fixture
def client(connect: Callable[..., Client]) -> Client:
    """A client as the operator, in the ``testing`` role."""
    return connect(auth=KerberosAuth(), role="testing")


def status_of(result: Any) -> tuple[int, int]:
    return result.facility_code, result.error_code


# ------------------------------------------------------------------------- values


def test_scalar_write_changes_the_device(client: Client) -> None:
    result = client.write("Z:ACLTST", 45.0)
    assert result.success and result.drf == "Z:ACLTST" and result.message is None
    assert client.read("Z:ACLTST.SETTING") == 45.0


@pytest.mark.parametrize(
    "values", [[1.0, 2.0, 3.0], np.array([4.5, -5.0, 6.25])], ids=["list", "numpy"]
)
def test_array_write_sets_the_range(client: Client, values: Any) -> None:
    before = client.read("Z:ACLTS1.SETTING")
    assert client.write("Z:ACLTS1[1:3]", values).ok
    after = client.read("Z:ACLTS1.SETTING")
    assert after[1:4].tolist() == list(values)
    assert after[0] == before[0] and after[4:].tolist() == before[4:].tolist()


def test_text_write(client: Client) -> None:
    assert client.write("Z:STRTST", "hello").ok
    assert client.read("Z:STRTST.SETTING") == "hello"


def test_raw_write_bypasses_scaling(client: Client) -> None:
    dec_12_5 = bytes.fromhex("48420000")  # Z:ACLTST's raw setting is DEC F_floating
    assert client.write("Z:ACLTST.SETTING.RAW", dec_12_5).ok
    assert client.read("Z:ACLTST.SETTING") == 12.5
    assert client.read("Z:ACLTST.SETTING.RAW") == dec_12_5


@pytest.mark.parametrize("target", ["Z|ACLTST", "Z&ACLTST"])
def test_basic_control_through_status_or_control(client: Client, target: str) -> None:
    assert client.write(target, BasicControl.OFF).ok
    assert client.read("Z|ACLTST")["on"] is False
    assert client.write(target, BasicControl.ON).ok
    assert client.read("Z|ACLTST")["on"] is True
    assert client.write(target, BasicControl.NEGATIVE).ok
    assert client.read("Z|ACLTST")["positive"] is False


def test_alarm_fields(client: Client) -> None:
    assert client.write("Z@ACLTST.MAX", 50.0).ok
    assert client.write("Z@ACLTST.MIN", 40.0).ok
    assert client.write("Z@ACLTST.ABORT_INHIBIT", 1).ok
    assert client.write("Z$ACLTST.NOM", 0x0001).ok
    assert client.write("Z$ACLTST.MASK", 0x00FF).ok
    analog, digital = client.read("Z@ACLTST"), client.read("Z$ACLTST")
    assert (analog["minimum"], analog["maximum"], analog["abort_inhibit"]) == (40.0, 50.0, True)
    assert (digital["nominal"], digital["mask"]) == (0x0001, 0x00FF)


# -------------------------------------------------------------------- dict writes


def test_dict_alarm_write_sets_each_field_in_its_own_settings(client: Client, relay: Relay) -> None:
    applied = relay.count(APPLY)
    values = {"minimum": 40.0, "maximum": 50.0, "alarm_enable": False, "abort_inhibit": True}
    result = client.write("Z@ACLTST", values)
    assert result.ok and result.drf == "Z@ACLTST"
    assert relay.count(APPLY) - applied == 4  # sequential: fields share one hardware block
    alarm = client.read("Z@ACLTST")
    assert {key: alarm[key] for key in values} == values


def test_dict_digital_alarm_write(client: Client) -> None:
    assert client.write("Z$ACLTST", {"nominal": 0x5, "mask": 0xF, "tries_needed": 3}).ok
    alarm = client.read("Z$ACLTST")
    assert (alarm["nominal"], alarm["mask"], alarm["tries_needed"]) == (0x5, 0xF, 3)


def test_dict_alarm_write_stops_at_the_first_refused_field(client: Client, relay: Relay) -> None:
    before = client.read("Z@ACLTST")
    applied = relay.count(APPLY)
    # tries_needed beyond int32: the simulator refuses it (DIO_RANGE), as a front end would
    result = client.write("Z@ACLTST", {"minimum": 1.0, "tries_needed": 2**40, "maximum": 9.0})
    assert not result.ok and "TRIES_NEEDED" in result.message
    assert relay.count(APPLY) - applied == 2
    after = client.read("Z@ACLTST")
    assert after["minimum"] == 1.0  # the field before the failure stays set
    assert (after["maximum"], after["tries_needed"]) == (before["maximum"], before["tries_needed"])


# ------------------------------------------------------------------ batches, refusals


def test_write_many_partial_failure_in_input_order(client: Client) -> None:
    results = client.write_many(
        [("Z:ACLTST", 7.0), ("Z:NOTFND", 1.0), ("G:AMANDA", 3.0), ("Z:ACLTS1[0:2]", [1, 2, 3])]
    )
    assert [r.drf for r in results] == ["Z:ACLTST", "Z:NOTFND", "G:AMANDA", "Z:ACLTS1[0:2]"]
    assert [r.ok for r in results] == [True, False, False, True]
    assert status_of(results[1]) == (NO_SUCH.facility, NO_SUCH.error)
    assert status_of(results[2]) == (DPM_PRIV.facility, DPM_PRIV.error)  # G: is not testing's
    assert client.read("Z:ACLTST.SETTING") == 7.0
    assert client.read("Z:ACLTS1.SETTING[0:2]").tolist() == [1.0, 2.0, 3.0]


def test_refused_setting_leaves_the_device_unchanged(client: Client) -> None:
    before = client.read("G:AMANDA.SETTING")
    result = client.write("G:AMANDA", before + 10)
    assert not result.success and status_of(result) == (DPM_PRIV.facility, DPM_PRIV.error)
    assert result.message and "DPM_PRIV" in result.message
    assert client.read("G:AMANDA.SETTING") == before


def test_principal_without_the_role_is_refused(kdc: KDC, connect: Callable[..., Client]) -> None:
    outsider = connect(auth=KerberosAuth(ccache=kdc.kinit("outsider")), role="testing")
    before = outsider.read("Z:ACLTST.SETTING")
    result = outsider.write("Z:ACLTST", before + 1)
    assert not result.ok and status_of(result) == (DPM_PRIV.facility, DPM_PRIV.error)
    assert outsider.read("Z:ACLTST.SETTING") == before


# ------------------------------------------------------------- the seeds' error table


def test_no_auth_is_not_configured_for_authenticated_settings(
    connect: Callable[..., Client], relay: Relay
) -> None:
    with pytest.raises(AuthenticationError, match="not configured for authenticated"):
        connect().write("Z:ACLTST", 1.0)
    assert relay.requests == []  # refused before connecting


def test_auth_without_a_role_is_role_required(connect: Callable[..., Client], relay: Relay) -> None:
    with pytest.raises(AuthenticationError, match="Role required"):
        connect(auth=KerberosAuth()).write("Z:ACLTST", 1.0)
    assert relay.requests == []


def test_dict_to_a_reading_is_a_value_error(client: Client, relay: Relay) -> None:
    with pytest.raises(ValueError, match="Cannot write dict to READING property"):
        client.write("Z:ACLTST", {"minimum": 1.0})
    with pytest.raises(ValueError, match="unknown analog alarm key"):
        client.write("Z@ACLTST", {"minimum": 1.0, "bogus": 2})
    assert relay.requests == []


@pytest.mark.parametrize("target", ["Z|ACLTST", "Z&ACLTST"])
def test_dict_to_status_or_control_points_at_basic_control(
    client: Client, relay: Relay, target: str
) -> None:
    with pytest.raises(ValueError, match=r"BasicControl\.ON"):
        client.write(target, {"on": True})
    assert relay.requests == []


# ---------------------------------------------------------- the settings connection


def test_write_connection_is_reused_and_authenticated_once(client: Client, relay: Relay) -> None:
    assert client.write("Z:ACLTST", 1.0).ok
    assert all(r.ok for r in client.write_many([("Z:ACLTST", 2.0), ("Z:ACLTS1[0:0]", [5.0])]))
    writers = [sent for sent in relay.requests if APPLY in sent]
    assert len(writers) == 1, "both settings must go over one connection"
    assert writers[0].count(APPLY) == 2
    # authenticated once: the service-name ask, the token, then never again
    assert writers[0].count(AUTHENTICATE) == 2
    assert writers[0].count("EnableSettingsRequest") == 1
    assert client.read("Z:ACLTST.SETTING") == 2.0


def test_connection_lost_after_apply_is_outcome_unknown_and_not_replayed(
    client: Client, relay: Relay
) -> None:
    assert client.write("Z:ACLTST", 1.0).ok
    relay.cut_at = APPLY
    with pytest.raises(SettingOutcomeUnknown) as caught:
        client.write("Z:ACLTST", 33.0)
    assert caught.value.drfs == ["Z:ACLTST"]
    assert "read the devices back" in str(caught.value)
    assert relay.count(APPLY) == 2, "the setting was sent again"
    # it did take effect: exactly why the outcome is "unknown", not "failed"
    assert client.read("Z:ACLTST.SETTING") == 33.0
    # the broken connection is dropped; the next setting authenticates a new one
    assert client.write("Z:ACLTST", 34.0).ok
    assert relay.count(APPLY) == 3
    assert sum(1 for sent in relay.requests if APPLY in sent) == 2
    assert client.read("Z:ACLTST.SETTING") == 34.0


def test_connection_lost_before_apply_is_an_ordinary_failure(client: Client, relay: Relay) -> None:
    before = client.read("Z:ACLTST.SETTING")
    relay.cut_at = "EnableSettingsRequest"
    with pytest.raises((OSError, ProtocolError, ConnectionLost)) as caught:
        client.write("Z:ACLTST", before + 1)
    assert not isinstance(caught.value, SettingOutcomeUnknown)
    assert relay.count(APPLY) == 0
    assert client.read("Z:ACLTST.SETTING") == before
    assert client.write("Z:ACLTST", before + 2).ok  # a new connection, authenticated afresh
    assert client.read("Z:ACLTST.SETTING") == before + 2


def test_no_answer_within_the_timeout_after_apply_is_outcome_unknown(
    client: Client, relay: Relay
) -> None:
    relay.cut_at, relay.hold = APPLY, True
    with pytest.raises(SettingOutcomeUnknown, match="Z:ACLTST"):
        client.write("Z:ACLTST", 21.0, timeout=0.5)
    assert relay.count(APPLY) == 1
    assert client.read("Z:ACLTST.SETTING") == 21.0


# ------------------------------------------------- cancellation from outside (async only)


def test_asyncio_outer_cancellation_after_apply_goes_through_as_it_is(relay: Relay) -> None:
    from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend

    async def main() -> None:
        async with AsyncioDPMBackend(
            relay.host, relay.port, auth=KerberosAuth(), role="testing"
        ) as backend:
            task = asyncio.create_task(backend.write("Z:ACLTST", 3.0))
            async with asyncio.timeout(5):
                while relay.count(APPLY) == 0:  # the settings have left
                    await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    relay.cut_at, relay.hold = APPLY, True
    asyncio.run(main())


def test_trio_outer_cancel_scope_after_apply_is_not_turned_into_an_error(relay: Relay) -> None:
    trio = pytest.importorskip("trio")
    from acnet_proto.adapters.dpm.trio import TrioDPMBackend

    async def main() -> None:
        async with TrioDPMBackend(
            relay.host, relay.port, auth=KerberosAuth(), role="testing"
        ) as backend:
            with trio.move_on_after(0.3) as scope:
                await backend.write("Z:ACLTST", 3.0)
            assert scope.cancelled_caught
            assert relay.count(APPLY) == 1

    relay.cut_at, relay.hold = APPLY, True
    trio.run(main)
