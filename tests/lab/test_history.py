"""Historical data (``<-LOGGER``) and fast time plots (``<-FTP``), as the lab's DPM serves them.

``M:OUTTMP<-LOGGER:<start ms>:<end ms>[:<node>]``: DPM picks the best logger
when the node is omitted, and an unknown node is an error. ``M:OUTTMP@p,100H<-FTP``
streams the device sampled at 100 Hz in batches.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from acnet_proto.api.backend import Backend
from acnet_proto.api.device import Device
from acnet_proto.errors import DeviceError
from acnet_proto.types import History, Reading, ValueType
from tests.lab.conftest import T

pytestmark = pytest.mark.integration


def window(seconds: int) -> tuple[int, int]:
    """A window of ``seconds`` that ended a minute ago, in whole Unix seconds."""
    end = int(time.time()) - 60
    return end - seconds, end


def check_history(history: History, start: int, end: int) -> None:
    assert len(history) > 0
    assert history.values.dtype == np.float64 and history.micros.dtype == np.int64
    assert np.all(np.diff(history.micros) > 0)
    assert start * 1_000_000 <= history.micros[0] and history.micros[-1] <= end * 1_000_000
    assert np.all(np.isfinite(history.values))


def test_a_logger_window_without_a_node_is_served_by_the_best_logger(dpm_reader: Backend) -> None:
    start, end = window(300)
    history = Device("M:OUTTMP", dpm_reader).history(start, end, timeout=T)
    check_history(history, start, end)


def test_a_logger_window_from_a_named_node(dpm_reader: Backend) -> None:
    start, end = window(300)
    history = Device("M:OUTTMP", dpm_reader).history(start, end, node="ArkIv", timeout=T)
    check_history(history, start, end)


def test_an_unknown_logger_node_is_an_error(dpm_reader: Backend) -> None:
    start, end = window(60)
    with pytest.raises(DeviceError):
        Device("M:OUTTMP", dpm_reader).history(start, end, node="BOGUSLOGGER99", timeout=T)


def test_the_logger_drf_read_as_is_is_a_timed_array(dpm_reader: Backend) -> None:
    start, end = window(60)
    reading = dpm_reader.get(f"M:OUTTMP<-LOGGER:{start * 1000}:{end * 1000}", T)
    assert reading.ok, reading.message
    assert reading.value_type is ValueType.TIMED_SCALAR_ARRAY
    check_history(reading.value, start, end)


def test_a_logger_drf_with_an_event_reads_the_window(dpm_reader: Backend) -> None:
    start, end = window(60)
    reading = dpm_reader.get(f"M:OUTTMP@P,1000,true<-LOGGER:{start * 1000}:{end * 1000}", T)
    assert reading.ok, reading.message
    check_history(reading.value, start, end)


def test_a_bad_logger_node_in_the_drf_is_an_error_reading(dpm_reader: Backend) -> None:
    start, end = window(60)
    drf = f"M:OUTTMP<-LOGGER:{start * 1000}:{end * 1000}:BOGUSLOGGER99"
    reading = dpm_reader.get(drf, T)
    assert reading.is_error and reading.value is None


def test_a_fast_time_plot_streams_batches_at_100_hz(dpm_reader: Backend) -> None:
    batches: list[History] = []
    with dpm_reader.subscribe(["M:OUTTMP@p,100H<-FTP"]) as stream:
        for reading, _ in stream.readings(timeout=T):
            assert isinstance(reading, Reading) and reading.ok, reading
            assert isinstance(reading.value, History)
            batches.append(reading.value)
            if len(batches) == 2:
                break
    assert all(len(batch) > 1 for batch in batches)
    steps = np.diff(np.concatenate([batch.micros for batch in batches]))
    assert np.all(steps > 0) and np.median(steps) == pytest.approx(10_000, rel=0.05)
