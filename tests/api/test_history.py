"""``Device.history`` and ``Backend.history``: what they ask for and what they return.

An in-memory peer (:class:`~acnet_proto.testing.FakeBackend`) stands for the
server: these tests check the request built from the arguments and the
unwrapping of the answer; tests/adapters/*/test_history.py read real
simulated servers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from acnet_proto.api.device import Device
from acnet_proto.errors import ConfigurationError, DeviceError, ReadError
from acnet_proto.testing import FakeBackend
from acnet_proto.types import History, ValueType

START = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
WINDOW = "LOGGER:1714996800000:1715000400000"


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    micros = np.array([1_714_996_800_000_000, 1_714_996_801_000_000])
    value = {"data": np.array([40.5, 41.0]), "micros": micros}
    fake.set_reading("M:OUTTMP", value, ValueType.TIMED_SCALAR_ARRAY)
    return fake


def test_device_history_asks_for_the_window_and_returns_arrays(backend: FakeBackend) -> None:
    history = Device("M:OUTTMP", backend=backend).history(START, END)
    assert backend.reads == [f"M:OUTTMP<-{WINDOW}"]
    assert isinstance(history, History)
    assert history.values.dtype == np.float64 and history.values.tolist() == [40.5, 41.0]
    assert history.times.tolist() == [START.replace(tzinfo=None), datetime(2024, 5, 6, 12, 0, 1)]


def test_the_device_keeps_its_property_range_and_event_and_names_the_node(
    backend: FakeBackend,
) -> None:
    backend.set_reading(
        "M:OUTTMP.SETTING", {"data": [1.0], "micros": [5]}, ValueType.TIMED_SCALAR_ARRAY
    )
    eastern = timezone(timedelta(hours=-4))
    device = Device("M_OUTTMP@p,1000", backend=backend)
    device.history(START.astimezone(eastern), END.timestamp(), node="arkiv")
    assert backend.reads == [f"M:OUTTMP.SETTING@p,1000<-{WINDOW}:ARKIV"]


@pytest.mark.parametrize(
    ("start", "end", "said"),
    [
        (START.replace(tzinfo=None), END, "start=.* is a naive datetime"),
        (START, END.replace(tzinfo=None), "end=.* is a naive datetime"),
        (END, START, "end .* is before start"),
    ],
)
def test_bad_windows_fail_before_any_read(
    backend: FakeBackend, start: datetime, end: datetime, said: str
) -> None:
    with pytest.raises(ConfigurationError, match=said):
        Device("M:OUTTMP", backend=backend).history(start, end)
    assert backend.reads == []


def test_an_error_status_is_a_device_error(backend: FakeBackend) -> None:
    backend.set_error("M:OUTTMP", "DPM_INVALID_DATASOURCE")
    with pytest.raises(DeviceError, match="DPM_INVALID_DATASOURCE") as caught:
        backend.history("M:OUTTMP", START, END)
    assert caught.value.error_code == -42


def test_no_data_in_the_window_is_an_empty_history(backend: FakeBackend) -> None:
    backend.set_error("M:OUTTMP", "DAE_LJ_NO_DATA")
    assert len(backend.history("M:OUTTMP", START, END)) == 0


def test_no_answer_is_a_read_error_naming_the_request(backend: FakeBackend) -> None:
    backend.set_silent("M:OUTTMP")
    with pytest.raises(ReadError, match=WINDOW):
        backend.history("M:OUTTMP", START, END, timeout=0.5)
