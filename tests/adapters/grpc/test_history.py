"""Historical data and fast time plots over DPM/gRPC, from the simulated DAQ service.

Real grpcio on loopback: the project's :class:`DAQSimServer` on its packaged
model, read by every gRPC backend (threaded, asyncio, trio) through the
faces of tests/support/clients.py. The oracle for the logged values is a
fresh model of the same kind at each returned time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import cast

import numpy as np
import pytest

from acnet_proto.adapters.grpc.threaded import GRPCBackend
from acnet_proto.adapters.sim.daq import DAQSimServer
from acnet_proto.api.device import Device
from acnet_proto.errors import DeviceError
from acnet_proto.pc import dpm
from acnet_proto.plans.history import CHUNK_POINTS, history_of
from acnet_proto.sim import DeviceModel
from acnet_proto.status import Status
from acnet_proto.types import History, Reading, ValueType
from tests.support.clients import GRPC_ADAPTERS, Client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim() -> Iterator[DAQSimServer]:
    with DAQSimServer() as server:
        yield server


@pytest.fixture(params=list(GRPC_ADAPTERS))
def client(request: pytest.FixtureRequest, sim: DAQSimServer) -> Iterator[Client]:
    opened = GRPC_ADAPTERS[request.param](sim.host, sim.port)
    try:
        yield opened
    finally:
        opened.close()


def window(seconds_back: float, span: float) -> tuple[int, int]:
    end_ms = int((time.time() - seconds_back) * 1000)
    return end_ms - int(span * 1000), end_ms


def check_logged(history: History, start_ms: int, end_ms: int) -> None:
    """One sample a second (ARKIV) over the window, as the model moves."""
    micros = history.micros
    assert micros[0] >= start_ms * 1000 and micros[-1] <= end_ms * 1000
    assert set(np.diff(micros).tolist()) == {1_000_000}
    entry = DeviceModel.default().resolve("M:OUTTMP")
    step = max(1, micros.size // 50)
    expected = [cast(dpm.ScalarReply, entry.reply(0, us / 1e6)).data for us in micros[::step]]
    np.testing.assert_allclose(history.values[::step], expected)


def test_every_backend_reads_a_window_to_its_end_of_data(client: Client) -> None:
    start_ms, end_ms = window(30, 1000)
    live, reading = client.get_many(["M:OUTTMP", f"M:OUTTMP<-LOGGER:{start_ms}:{end_ms}"])
    assert live.value_type is ValueType.SCALAR
    assert reading.ok and reading.value_type is ValueType.TIMED_SCALAR_ARRAY
    assert isinstance(reading.value, History) and len(reading.value) > 2 * CHUNK_POINTS
    check_logged(reading.value, start_ms, end_ms)


def test_an_unknown_logger_is_a_device_error(client: Client) -> None:
    start_ms, end_ms = window(0, 10)
    reading = client.get(f"M:OUTTMP<-LOGGER:{start_ms}:{end_ms}:NOSUCH")
    assert reading.status == Status.from_name("DPM_INVALID_DATASOURCE")
    with pytest.raises(DeviceError, match="DPM_INVALID_DATASOURCE"):
        history_of(reading)


def test_device_history_over_grpc(sim: DAQSimServer) -> None:
    start_ms, end_ms = window(5, 120)
    with GRPCBackend(sim.host, sim.port) as backend:
        history = Device("M:OUTTMP", backend=backend).history(start_ms / 1000, end_ms / 1000)
    check_logged(history, start_ms, end_ms)


def test_a_fast_time_plot_streams_chunks(client: Client) -> None:
    got = client.stream(["M:OUTTMP@p,100H<-FTP"], 2, timeout=10.0)
    chunks = [r.value for r in got if isinstance(r, Reading)]
    assert len(chunks) == 2 and all(isinstance(c, History) and len(c) > 1 for c in chunks)
    joined = np.concatenate([c.micros for c in chunks])
    assert set(np.diff(joined).tolist()) == {10_000}
