"""resume(): the one reconnection loop of the blocking streams, driven with no server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from acnet_proto.adapters._streams import resume
from acnet_proto.errors import AuthenticationError, ConnectionLost
from acnet_proto.streams.driver import StreamDriver, Wait
from acnet_proto.streams.reconnect import Gap, Reconnect

DRFS = ["M:OUTTMP@p,1000"]
QUICK = Reconnect(max_retries=5, initial_backoff=0.001, max_backoff=0.001, jitter=0.0)


class Attempts:
    """``connect()`` failing with each of ``failures`` in turn, then succeeding."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.made = 0

    def __call__(self) -> None:
        self.made += 1
        if self.failures:
            raise self.failures.pop(0)


def broke(driver: StreamDriver) -> Wait:
    step = driver.broke("the server closed the connection", datetime.now(UTC), 0.0)
    assert isinstance(step, Wait)
    return step


def test_the_open_gap_is_delivered_before_the_first_pause() -> None:
    driver = StreamDriver(DRFS, QUICK)
    delivered: list[Gap] = []
    paused: list[int] = []

    def stopped_after(seconds: float) -> bool:
        paused.append(len(delivered))  # how many gaps were out when it paused
        return False

    connect = Attempts(ConnectionRefusedError("refused"), ConnectionRefusedError("refused"))
    assert resume(driver, broke(driver), connect, stopped_after, (OSError,), delivered.append)
    [opened] = delivered  # once, however many attempts failed
    assert opened.open and opened.cause == "the server closed the connection"
    assert paused == [1, 1, 1] and connect.made == 3
    assert driver.down  # the closed gap comes when the list runs


def test_refused_credentials_end_the_stream_at_the_first_attempt() -> None:
    driver = StreamDriver(DRFS, Reconnect(max_retries=None, initial_backoff=0.001))
    expired = AuthenticationError("the Kerberos ticket expired: run kinit")
    connect = Attempts(expired, expired)
    with pytest.raises(AuthenticationError) as raised:
        resume(
            driver,
            broke(driver),
            connect,
            lambda seconds: False,
            (OSError, AuthenticationError),
            lambda gap: None,
        )
    assert raised.value is expired and connect.made == 1  # not retried


def test_giving_up_raises_the_drivers_error_from_the_last_failure() -> None:
    driver = StreamDriver(DRFS, Reconnect(max_retries=1, initial_backoff=0.001))
    last = ConnectionRefusedError("refused again")
    connect = Attempts(last)
    with pytest.raises(ConnectionLost, match="gave up after 1 reconnection") as raised:
        resume(driver, broke(driver), connect, lambda s: False, (OSError,), lambda gap: None)
    assert raised.value.__cause__ is last


def test_stop_during_a_pause_ends_it_quietly() -> None:
    driver = StreamDriver(DRFS, QUICK)
    connect = Attempts()
    delivered: list[Gap] = []
    assert not resume(driver, broke(driver), connect, lambda s: True, (OSError,), delivered.append)
    assert connect.made == 0 and len(delivered) == 1
