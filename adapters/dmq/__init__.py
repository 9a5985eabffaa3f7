"""DMQ, ACNET over AMQP (RabbitMQ), for threaded programs: the seeds' ``DMQBackend``.

::

    from acnet_proto.adapters.dmq import DMQBackend
    from acnet_proto.adapters.kerberos import KerberosAuth

    with DMQBackend("localhost", 5672, auth=KerberosAuth()) as backend:
        backend.read("M:OUTTMP")
        backend.write("Z:ACLTST", 45.0)
        with backend.subscribe(["M:OUTTMP@p,1000"]) as stream:
            for reading, handle in stream.readings(timeout=5):
                print(reading.value)

Kerberos is required for every operation, reads included: each read,
subscription and write session starts a DMQ job whose INIT carries a fresh
GSS token and a signature (spec §3). Without credentials the constructor
raises :class:`~acnet_proto.errors.AuthenticationError`; an expired ticket
raises it at the next operation.

A backend is safe to share between threads. One I/O thread owns its one
broker connection, and every read, write session and stream is a DMQ job on
it. If the connection breaks, reads and writes fail and the next call
reconnects; streams reconnect by themselves.

The modules, one concern each:

- :mod:`~acnet_proto.adapters.dmq.backend`: :class:`DMQBackend`, what callers
  call, and the :func:`dmq` factory.
- :mod:`~acnet_proto.adapters.dmq.subscription`: :class:`DMQSubscription`, one
  stream, with its callback worker and its reconnection.
- :mod:`~acnet_proto.adapters.dmq._broker`: the broker connection, the I/O
  thread that owns it, and the jobs running on it.

The protocol itself, with no I/O, is :mod:`acnet_proto.services.dmq`.
"""

from acnet_proto.adapters.dmq.backend import DMQBackend, dmq
from acnet_proto.adapters.dmq.subscription import DMQSubscription

__all__ = ["DMQBackend", "DMQSubscription", "dmq"]
