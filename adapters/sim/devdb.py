"""A simulated DevDB gRPC service answering from the shared device model.

::

    with DevDBSimServer() as sim:                   # or sim.start() ... sim.stop()
        with DevDBClient(sim.host, sim.port) as db:
            db.get_device_info(["M:OUTTMP"])

What it says about each device is described in :mod:`acnet_proto.sim.devdb`
(descriptions, units and scaling, CONTROL commands, STATUS bit definitions,
alarm blocks and texts, all from a :class:`~acnet_proto.sim.model.DeviceModel`).
``getDeviceInfo``, ``getAllAlarmInfo`` and ``getAlarmText`` are served; the
plot configuration calls answer ``UNIMPLEMENTED``. It runs on grpc's
thread-pool server, as the simulated DAQ service does
(:mod:`acnet_proto.adapters.sim.daq`), for the same reason.

To serve the model of a running simulated DAQ service, pass its ``lock``
too: alarm limits change with settings, and family devices are made on
first use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import grpc

from acnet_proto.adapters.grpc.server import GRPCServer, serve_until_cancelled
from acnet_proto.adapters.grpc.stubs import DevDB_pb2_grpc
from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
from acnet_proto.services.devdb import DEFAULT_PORT
from acnet_proto.sim import DeviceModel
from acnet_proto.sim.devdb import alarm_info_reply, alarm_text_reply, info_entry

__all__ = ["DEFAULT_PORT", "DevDBSimServer", "serve"]

log = logging.getLogger(__name__)

_WORKERS = 8


class _DevDBService(DevDB_pb2_grpc.DevDBServicer):
    def __init__(self, model: DeviceModel, lock: AbstractContextManager[Any]) -> None:
        self.model = model
        self.lock = lock

    def getDeviceInfo(
        self, request: DevDB_pb2.DeviceList, context: grpc.ServicerContext
    ) -> DevDB_pb2.DeviceInfoReply:
        with self.lock:
            entries = [info_entry(self.model, name) for name in request.device]
        return DevDB_pb2.DeviceInfoReply(set=entries)

    def getAllAlarmInfo(
        self, request: DevDB_pb2.DeviceList, context: grpc.ServicerContext
    ) -> DevDB_pb2.AlarmInfoReply:
        with self.lock:
            return alarm_info_reply(self.model, request.device)

    def getAlarmText(
        self, request: DevDB_pb2.AlarmTextIdList, context: grpc.ServicerContext
    ) -> DevDB_pb2.DeviceAlarmTextList:
        with self.lock:
            return alarm_text_reply(self.model, request.alarm_text_id)


class DevDBSimServer(GRPCServer):
    """A simulated DevDB service on ``host``:``port`` (0: a free port).

    ``model`` defaults to a fresh :meth:`DeviceModel.default`; ``lock`` is
    held while it is read (None: one of its own). :meth:`start` (or
    ``with``) starts it; ``host`` and ``port`` are then where it listens.
    """

    _what = "the simulated DevDB"
    _thread_prefix = "sim-devdb"

    def __init__(
        self,
        model: DeviceModel | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        super().__init__(host, port, _WORKERS)
        self.model = model if model is not None else DeviceModel.default()
        self._lock = lock if lock is not None else threading.Lock()

    def _add_services(self, server: grpc.Server) -> None:
        DevDB_pb2_grpc.add_DevDBServicer_to_server(_DevDBService(self.model, self._lock), server)

    def start(self) -> None:
        """Start listening; returns once calls are accepted. OSError if the port is taken."""
        super().start()
        log.info("simulated DevDB gRPC service listening on %s:%d", self.host, self.port)


async def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    model: DeviceModel | None = None,
    *,
    lock: AbstractContextManager[Any] | None = None,
    ready: Callable[[DevDBSimServer], None] | None = None,
) -> None:
    """Serve the simulated DevDB until cancelled (``acnet-proto sim --devdb-port PORT``).

    A coroutine, to run beside the other simulators on one loop (the service
    itself runs in its own threads). ``ready`` is called with the server once
    it listens. Give the simulated DPM's ``model`` to describe the devices it
    serves (and a simulated DAQ service's ``lock`` with its model).
    """
    await serve_until_cancelled(DevDBSimServer(model, host, port, lock=lock), ready)
