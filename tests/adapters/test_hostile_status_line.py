"""A proxy that answers with a status line no number can be read from: only our errors.

The attack: a proxy answering ``HTTP/1.1 ²...`` made every client flavour raise a bare
``ValueError`` (``"²".isdigit()`` is true, ``int("²")`` raises). Here a real server on
loopback answers every connection that way, and every client flavour (DPM/TCP, ACL over
HTTP, DPM over gRPC) must fail with the project's error, saying what the server sent.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from acnet_proto.errors import AcnetProtoError, ConnectionRefusedByProxy
from tests.support.clients import ADAPTERS, GRPC_ADAPTERS, READ_ADAPTERS, Client

pytestmark = pytest.mark.integration

STATUS_LINE = "HTTP/1.1 ²00 Pr²xy error"
ANSWER = f"{STATUS_LINE}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
TIMEOUT = 5.0


class HostileProxy:
    """Answers every connection, once its first bytes arrive, with :data:`ANSWER`."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(TIMEOUT)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(ANSWER)

    def close(self) -> None:
        self._listener.close()
        self._thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def proxy() -> Iterator[HostileProxy]:
    server = HostileProxy()
    yield server
    server.close()


def read_through(make: object, proxy: HostileProxy) -> BaseException:
    assert callable(make)
    client: Client = make(proxy.host, proxy.port)
    try:
        with pytest.raises(Exception) as raised:
            client.get_many(["M:OUTTMP"], timeout=TIMEOUT)
    finally:
        client.close()
    return raised.value


def chain(error: BaseException | None) -> list[BaseException]:
    seen = []
    while error is not None and len(seen) < 10:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


@pytest.mark.parametrize("flavour", list(READ_ADAPTERS) + list(GRPC_ADAPTERS))
def test_every_client_fails_with_our_error(flavour: str, proxy: HostileProxy) -> None:
    make = READ_ADAPTERS.get(flavour) or GRPC_ADAPTERS[flavour]
    error = read_through(make, proxy)
    assert isinstance(error, AcnetProtoError), f"{flavour}: {type(error).__name__}: {error}"
    if flavour in ADAPTERS:  # DPM/TCP reads the status line itself: it says what it was
        refused = [e for e in chain(error) if isinstance(e, ConnectionRefusedByProxy)]
        assert refused, f"{flavour}: {error!r} does not come from the refusal"
        assert refused[0].status_code is None and refused[
            0
        ].status_line == STATUS_LINE.encode().decode("latin-1")
        assert "HTTP/1.1" in str(refused[0])
