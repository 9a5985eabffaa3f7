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
(:mod:`acnet_proto.adapters.sim.daq`), for the same reason, and holds its
clients to ``limits`` as :mod:`acnet_proto.adapters.grpc.server` says: a
list of more than ``max_list_entries`` devices or alarm texts, or a device
name longer than :data:`~acnet_proto.drf.MAX_DRF_LENGTH`, is refused
``INVALID_ARGUMENT`` before it is looked up.

To serve the model of a running simulated DAQ service, pass its ``lock``
too: alarm limits change with settings, and family devices are made on
first use.

The lab serves DevDB over TLS only (pacsys's client defaults to it). Given
``credentials`` (:func:`~acnet_proto.adapters.grpc.server.tls_credentials`
makes them from PEM files) the simulated one does too
(``acnet-proto sim --devdb-port P --devdb-cert CERT --devdb-key KEY``)::

    credentials = tls_credentials("devdb.crt", "devdb.key")
    with DevDBSimServer(credentials=credentials) as sim:
        with DevDBClient(sim.host, sim.port, ca_file="devdb.crt") as db:
            db.get_device_info(["M:OUTTMP"])
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
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits
from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
from acnet_proto.services.devdb import DEFAULT_PORT
from acnet_proto.sim import DeviceModel
from acnet_proto.sim.devdb import alarm_info_reply, alarm_text_reply, info_entry

__all__ = ["DEFAULT_PORT", "DevDBSimServer", "serve"]

log = logging.getLogger(__name__)


class _DevDBService(DevDB_pb2_grpc.DevDBServicer):
    def __init__(self, server: DevDBSimServer) -> None:
        self.server = server
        self.model = server.model
        self.lock = server.lock

    def getDeviceInfo(
        self, request: DevDB_pb2.DeviceList, context: grpc.ServicerContext
    ) -> DevDB_pb2.DeviceInfoReply:
        self.server.check_request(request.device, "DeviceList", context)
        with self.lock:
            entries = [info_entry(self.model, name) for name in request.device]
        return DevDB_pb2.DeviceInfoReply(set=entries)

    def getAllAlarmInfo(
        self, request: DevDB_pb2.DeviceList, context: grpc.ServicerContext
    ) -> DevDB_pb2.AlarmInfoReply:
        self.server.check_request(request.device, "DeviceList", context)
        with self.lock:
            return alarm_info_reply(self.model, request.device)

    def getAlarmText(
        self, request: DevDB_pb2.AlarmTextIdList, context: grpc.ServicerContext
    ) -> DevDB_pb2.DeviceAlarmTextList:
        self.server.check_request(request.alarm_text_id, "AlarmTextIdList", context)
        with self.lock:
            return alarm_text_reply(self.model, request.alarm_text_id)


class DevDBSimServer(GRPCServer):
    """A simulated DevDB service on ``host``:``port`` (0: a free port).

    ``model`` defaults to a fresh :meth:`DeviceModel.default`; ``lock`` is
    held while it is read (None: one of its own); ``limits`` what a client
    may take of it; with ``credentials`` it serves TLS only. :meth:`start`
    (or ``with``) starts it; ``host`` and ``port`` are then where it listens.
    """

    _what = "the simulated DevDB"
    _thread_prefix = "sim-devdb"
    _streams = False

    def __init__(
        self,
        model: DeviceModel | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        lock: AbstractContextManager[Any] | None = None,
        limits: ServerLimits = DEFAULT_LIMITS,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        super().__init__(host, port, limits, credentials=credentials)
        self.model = model if model is not None else DeviceModel.default()
        #: Held while the model is read.
        self.lock = lock if lock is not None else threading.Lock()

    def _add_services(self, server: grpc.Server) -> None:
        DevDB_pb2_grpc.add_DevDBServicer_to_server(_DevDBService(self), server)

    def start(self) -> None:
        """Start listening; returns once calls are accepted. OSError if the port is taken."""
        super().start()
        how = " (TLS)" if self.tls else ""
        log.info("simulated DevDB gRPC service listening on %s:%d%s", self.host, self.port, how)


async def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    model: DeviceModel | None = None,
    *,
    lock: AbstractContextManager[Any] | None = None,
    ready: Callable[[DevDBSimServer], None] | None = None,
    limits: ServerLimits = DEFAULT_LIMITS,
    credentials: grpc.ServerCredentials | None = None,
) -> None:
    """Serve the simulated DevDB until cancelled (``acnet-proto sim --devdb-port PORT``).

    A coroutine, to run beside the other simulators on one loop (the service
    itself runs in its own threads). ``ready`` is called with the server once
    it listens. Give the simulated DPM's ``model`` to describe the devices it
    serves (and a simulated DAQ service's ``lock`` with its model). ``limits``: what a
    client may take of it; ``credentials``: serve TLS only.
    """
    sim = DevDBSimServer(model, host, port, lock=lock, limits=limits, credentials=credentials)
    await serve_until_cancelled(sim, ready)
