"""acnet-proto: a sans-I/O protocol engine and clients for ACNET's central services."""

from acnet_proto.errors import (
    DecodeError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)

__all__ = ["DecodeError", "LocalProtocolError", "ProtocolError", "RemoteProtocolError"]
__version__ = "0.1.0"
