"""acnet-proto: a sans-I/O protocol engine and clients for ACNET's central services.

The seeds' (pacsys's) top-level API::

    import acnet_proto

    acnet_proto.read("M:OUTTMP")                        # ACNET_DPM_HOST says where
    acnet_proto.get_many(["M:OUTTMP", "Z:ACLTS1[0:4]"])
    with acnet_proto.subscribe(["M:OUTTMP@p,1000"]) as stream:
        for reading, _ in stream.readings(timeout=5):
            print(reading.value)
    with acnet_proto.dpm(host="localhost") as backend:  # a backend of your own
        backend.read("M:OUTTMP")

Importing this package is pure: it loads the error classes and nothing
that touches sockets, threads or clocks. Every other name is bound on first
use (PEP 562): ``acnet_proto.read`` imports the threaded adapter then, and
the global backend is only made by the first call that needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

from acnet_proto.errors import (
    ACLError,
    AcnetProtoError,
    AuthenticationError,
    ConfigurationError,
    ConnectionLost,
    ConnectionRefusedByProxy,
    DecodeError,
    DeviceError,
    LocalProtocolError,
    PolicyDenied,
    ProtocolError,
    ReadError,
    RemoteProtocolError,
    SettingOutcomeUnknown,
)

__version__ = "0.1.0"

_DEFAULT = "acnet_proto.adapters.default"
#: name -> the module that defines it ("module:attribute" when the names differ),
#: imported when the name is first used
_LAZY = {
    **dict.fromkeys(
        [
            "read",
            "get",
            "get_many",
            "read_many",
            "write",
            "write_many",
            "subscribe",
            "configure",
            "shutdown",
            "dpm",
            "dpm_http",
        ],
        _DEFAULT,
    ),
    **dict.fromkeys(["DPMBackend", "DPMHTTPBackend"], "acnet_proto.adapters.dpm.threaded"),
    **dict.fromkeys(
        ["Backend", "DispatchMode", "Subscription", "SubscriptionHandle"], "acnet_proto.api.backend"
    ),
    **dict.fromkeys(
        ["Device", "ScalarDevice", "ArrayDevice", "TextDevice"], "acnet_proto.api.device"
    ),
    **dict.fromkeys(
        ["Reading", "History", "WriteResult", "DeviceMeta", "ValueType", "BasicControl"],
        "acnet_proto.types",
    ),
    **dict.fromkeys(["DataRequest", "DRFError"], "acnet_proto.drf"),
    **dict.fromkeys(["Auth", "JWTAuth"], "acnet_proto.api.auth"),
    "KerberosAuth": "acnet_proto.adapters.kerberos",
    "acl": "acnet_proto.adapters.acl",
    "grpc": "acnet_proto.adapters.grpc.threaded:grpc_backend",
    "dmq": "acnet_proto.adapters.dmq",
    "Verify": "acnet_proto.api.verify",
    **dict.fromkeys(["AnalogAlarm", "DigitalAlarm"], "acnet_proto.api.alarms"),
    **dict.fromkeys(["Gap", "Reconnect"], "acnet_proto.streams.reconnect"),
    "devdb": "acnet_proto.adapters.devdb",
}

__all__ = [
    "ACLError",
    "AcnetProtoError",
    "AuthenticationError",
    "ConfigurationError",
    "ConnectionLost",
    "ConnectionRefusedByProxy",
    "DecodeError",
    "DeviceError",
    "LocalProtocolError",
    "PolicyDenied",
    "ProtocolError",
    "ReadError",
    "RemoteProtocolError",
    "SettingOutcomeUnknown",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'acnet_proto' has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # bound once: later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
