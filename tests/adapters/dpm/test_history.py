"""Historical data and fast time plots over DPM/TCP, from the simulated DPM, on every adapter.

The server is the project's simulated DPM on loopback (its packaged model);
the oracle for what was logged is a fresh model of the same kind, asked for
the device's value at each returned time: the logger keeps the motion the
live simulator serves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import numpy as np
import pytest

from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend
from acnet_proto.adapters.dpm.sync import SyncClient
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.api.device import Device
from acnet_proto.drf import DRFError
from acnet_proto.errors import ConfigurationError, DeviceError
from acnet_proto.pc import dpm
from acnet_proto.plans.history import CHUNK_POINTS, history_of
from acnet_proto.sim import DeviceModel
from acnet_proto.status import Status
from acnet_proto.types import History, Reading, ValueType
from tests.support.clients import ADAPTERS, READ_ADAPTERS, Client

pytestmark = pytest.mark.integration

SECOND_US = 1_000_000


@pytest.fixture(params=list(ADAPTERS))
def client(request: pytest.FixtureRequest, sim: SimServer) -> Iterator[Client]:
    opened = ADAPTERS[request.param](sim.host, sim.port, timeout=20.0)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def backend(sim: SimServer) -> Iterator[DPMBackend]:
    with DPMBackend(sim.host, sim.port, timeout=20.0) as opened:
        yield opened


def logged(seconds_back: float, span: float, node: str = "") -> tuple[str, int, int]:
    """A logger DRF of M:OUTTMP over ``span`` seconds ending ``seconds_back`` ago; its ends."""
    end_ms = int((time.time() - seconds_back) * 1000)
    start_ms = end_ms - int(span * 1000)
    suffix = f":{node}" if node else ""
    return f"M:OUTTMP<-LOGGER:{start_ms}:{end_ms}{suffix}", start_ms, end_ms


def modelled(micros: np.ndarray) -> list[float]:
    """M:OUTTMP's value at each of ``micros`` (Unix µs), as a fresh packaged model says."""
    entry = DeviceModel.default().resolve("M:OUTTMP")
    return [cast(dpm.ScalarReply, entry.reply(0, us / SECOND_US)).data for us in micros]


def check_logged(history: History, start_ms: int, end_ms: int, period_us: int) -> None:
    """``history`` is M:OUTTMP sampled on the logger's grid over the window, as the model moves."""
    micros = history.micros
    assert micros.size > 0 and micros[0] >= start_ms * 1000 and micros[-1] <= end_ms * 1000
    assert set(np.diff(micros).tolist()) == {period_us}
    assert micros[0] % period_us == 0  # whole periods since the epoch
    step = max(1, micros.size // 50)
    np.testing.assert_allclose(history.values[::step], modelled(micros[::step]))


def test_every_adapter_reads_a_window_to_its_end_of_data(client: Client) -> None:
    drf, start_ms, end_ms = logged(60, 1200)  # ~1201 points: three chunks
    reading = client.get(drf)
    assert reading.ok and reading.value_type is ValueType.TIMED_SCALAR_ARRAY
    history = reading.value
    assert isinstance(history, History) and len(history) > 2 * CHUNK_POINTS
    check_logged(history, start_ms, end_ms, SECOND_US)
    assert reading.timestamp == history.times[0].astype(datetime).replace(tzinfo=UTC)
    assert reading.meta is not None and reading.meta.units  # the DeviceInfo came too


def test_a_window_among_live_reads_and_the_connection_read_again(client: Client) -> None:
    drf, start_ms, end_ms = logged(0, 30, node="fastlg")  # 10 Hz
    live, window, setting = client.get_many(["M:OUTTMP", drf, "Z:ACLTST.SETTING"])
    assert live.value_type is ValueType.SCALAR and setting.ok
    check_logged(history_of(window), start_ms, end_ms, SECOND_US // 10)
    # the list was stopped and cleared: the next read on that connection is a plain one
    assert client.get("M:OUTTMP").value_type is ValueType.SCALAR


@pytest.mark.parametrize(
    ("node", "ahead", "status"),
    [
        ("NOSUCH", 0, "DPM_INVALID_DATASOURCE"),  # no such logger
    ],
)
def test_an_error_status_is_an_error_reading_and_a_device_error(
    client: Client, node: str, ahead: float, status: str
) -> None:
    drf, _, _ = logged(ahead, 60, node)
    reading = client.get(drf)
    assert reading.is_error and reading.status == Status.from_name(status)
    with pytest.raises(DeviceError, match=status):
        history_of(reading)


def test_a_window_wholly_in_the_future_is_an_empty_history(client: Client) -> None:
    """The simulator answers DAE_LJ_NO_DATA; the client makes it an empty History."""
    drf, _, _ = logged(-3600, 60)
    reading = client.get(drf)
    assert reading.ok and len(history_of(reading)) == 0


def test_device_history_takes_datetimes_and_seconds(backend: DPMBackend) -> None:
    device = Device("M:OUTTMP", backend=backend)
    end = datetime.now(UTC) - timedelta(seconds=5)
    start = end - timedelta(minutes=5)
    history = device.history(start, end)
    check_logged(history, int(start.timestamp() * 1000), int(end.timestamp() * 1000), SECOND_US)
    assert history.times[0] >= np.datetime64(start.replace(tzinfo=None), "us")
    again = device.history(start.timestamp(), end.timestamp(), node="ARKIV")
    assert again == history  # the same samples: the logger's grid, the model's motion
    with pytest.raises(DeviceError, match="DPM_INVALID_DATASOURCE"):
        device.history(start, end, node="nosuch")
    with pytest.raises(ConfigurationError, match=r"start=.* naive"):
        device.history(start.replace(tzinfo=None), end)


def test_the_sync_client_and_the_asyncio_backend_have_history(sim: SimServer) -> None:
    _, start_ms, end_ms = logged(10, 100)
    with SyncClient(sim.host, sim.port, timeout=20.0) as sync:
        history = sync.history("M:OUTTMP", start_ms / 1000, end_ms / 1000)
    check_logged(history, start_ms, end_ms, SECOND_US)

    async def read() -> History:
        async with AsyncioDPMBackend(sim.host, sim.port, timeout=20.0) as backend:
            history: History = await backend.history("M:OUTTMP", start_ms / 1000, end_ms / 1000)
            return history

    assert asyncio.run(read()) == history


def test_a_fast_time_plot_streams_chunks(client: Client) -> None:
    got = client.stream(["M:OUTTMP@p,100H<-FTP"], 2, timeout=10.0)
    assert len(got) == 2 and all(isinstance(r, Reading) for r in got)
    first, second = (r.value for r in got if isinstance(r, Reading))
    assert isinstance(first, History) and isinstance(second, History)
    assert len(first) > 1 and len(second) > 1
    assert set(np.diff(np.concatenate([first.micros, second.micros])).tolist()) == {10_000}


def test_acl_refuses_history_before_any_io() -> None:
    acl = READ_ADAPTERS["acl"]("127.0.0.1", 9)  # nothing listens: nothing is sent
    try:
        with pytest.raises(DRFError, match="the ACL read cannot fetch historical data"):
            acl.get("M:OUTTMP<-LOGGER:1000:2000")
    finally:
        acl.close()
