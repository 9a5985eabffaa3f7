"""Every exception acnet-proto raises on purpose derives from :class:`AcnetProtoError`.

``except AcnetProtoError`` catches every one of them, and nothing else. Many
also derive from the builtin a caller would expect (a bad DRF or setting is a
:class:`ValueError` too, an unknown status name a :class:`KeyError`), so code
written against pacsys's ``ValueError`` keeps working.

Two families live here:

* Protocol errors (:class:`ProtocolError` and children) say that bytes or
  commands broke the wire contract, and *whose fault it was*, in the manner of
  h11: :class:`LocalProtocolError` means this program asked for something
  illegal (nothing was sent, nothing changed); :class:`RemoteProtocolError`
  means the peer did (the connection is no longer usable).
* User-facing errors (:class:`DeviceError`, :class:`ReadError`,
  :class:`AuthenticationError`, ...) carry the names and attributes of the
  client API documented in ``docs/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from acnet_proto._text import decimal, shown, summary

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
]


class AcnetProtoError(Exception):
    """The base of every error acnet-proto raises on purpose.

    Catch it to handle any of them; the subclasses say what went wrong and
    what to do next (``docs/errors.md`` has the whole tree).
    """


class ProtocolError(AcnetProtoError):
    """Bytes or commands that break the wire contract.

    Never raised bare: catch it to handle both :class:`LocalProtocolError` and
    :class:`RemoteProtocolError`.
    """


class LocalProtocolError(ProtocolError):
    """This side tried something the protocol forbids.

    Raised before anything is sent; the object that raised it is unchanged and
    still usable. Fix the call.
    """


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids.

    The connection that received it has moved to its error state; open a new
    one.
    """


class DecodeError(RemoteProtocolError):
    """A byte string is not a valid message.

    ``offset`` is the byte position (from the start of the message or frame
    handed to the decoder) where the decoder found what it did not expect.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class ConnectionRefusedByProxy(RemoteProtocolError):
    """The server (a DPM proxy, or a server at its connection limit) answered the
    handshake with an HTTP status instead of frames.

    ``status_line`` is what it sent, e.g. ``"HTTP/1.1 503 Service Unavailable"``;
    ``status_code`` is the number in it, or ``None`` if there was none.
    """

    def __init__(self, status_line: str) -> None:
        parts = status_line.split()
        self.status_line = status_line
        self.status_code = decimal(parts[1]) if len(parts) > 1 else None
        advice = (
            "it is busy: try again later"
            if self.status_code == 503
            else "check the host and port, or try again later"
        )
        super().__init__(
            f"the server refused the connection with an HTTP status, {shown(status_line)}; "
            + advice
        )


class DeviceError(AcnetProtoError):
    """A device read failed with an ACNET error status."""

    def __init__(
        self,
        drf: str,
        facility_code: int,
        error_code: int,
        message: str | None = None,
    ) -> None:
        self.drf = drf
        self.facility_code = facility_code
        self.error_code = error_code
        self.message = message or f"error [{facility_code} {error_code}]"
        # a message from a Status already names its code; do not print it twice
        code = f"[{facility_code} {error_code}]"
        super().__init__(f"{drf}: {self.message}" + ("" if code in self.message else f" {code}"))


class ReadError(AcnetProtoError):
    """A batch read could not complete.

    ``readings`` has one entry per requested device, in input order: the ones
    that arrived, and error readings for the rest. The transport failure, if
    any, is chained as ``__cause__``. ``timed_out`` is True when the read's
    deadline passed (the rest are ``ACNET_REQTMO``), False when it ended
    otherwise (e.g. the connection failed: ``ACNET_DISCONNECTED``).
    """

    def __init__(self, readings: Sequence[Any], message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.readings = list(readings)
        self.message = message
        self.timed_out = timed_out


class AuthenticationError(AcnetProtoError):
    """Authentication is missing, was refused, or its credentials expired."""


class PolicyDenied(AcnetProtoError):
    """A supervised proxy's policy refused the call; nothing reached the devices.

    ``policy`` names what refused it: the class of the policy (``ReadOnlyPolicy``,
    ``DeviceAccessPolicy``, ``RateLimitPolicy``, ...), or ``SupervisedServer``
    for the proxy's own rules (a setting no policy approves, a device named by
    index). ``drfs`` are the call's DRFs (``drf`` the same, as one string),
    ``action`` what was refused (``"read"``, ``"set"``, ``"subscribe to"``)
    and ``reason`` the proxy's words. The same call would be refused again:
    ask the proxy's operator, or change the request.
    """

    def __init__(self, policy: str, drfs: Sequence[str], reason: str, action: str) -> None:
        self.policy = policy
        self.drfs = list(drfs)
        self.drf = ", ".join(self.drfs)
        self.reason = reason
        self.action = action
        named = summary(self.drfs) if self.drfs else "?"
        super().__init__(
            f"the supervised proxy's {policy} refused to {action} {named}: {reason}; "
            "the proxy will refuse it again: ask its operator, or change the request"
        )


class SettingOutcomeUnknown(AcnetProtoError):
    """The connection broke after a setting left this process.

    The device may or may not have changed. The setting is never replayed
    automatically; read the device back before deciding to write again.
    ``drfs`` names the settings that were in flight.
    """

    def __init__(self, drfs: Sequence[str], cause: str) -> None:
        self.drfs = list(drfs)
        super().__init__(
            f"connection lost after sending settings for {', '.join(self.drfs)}: {cause}; "
            "the outcome is unknown and nothing was retried; read the devices back"
        )


class ACLError(AcnetProtoError):
    """An ACL command failed."""


class ConnectionLost(AcnetProtoError):
    """The connection to the server broke, or the server fell silent.

    Silence counts as a break after several missed heartbeats (the server
    sends one about every 2 s). The cause, if any, is chained.
    """


class ConfigurationError(AcnetProtoError, ValueError):
    """A setting is missing, or a value given for it (argument or variable) is invalid."""
