"""Where a DRF's data comes from: the ``<-SOURCE`` suffix.

Private home of the source classes; import them from :mod:`acnet_proto.drf`.

A DRF without a suffix reads the live device (``request.source is None``).
Two sources are understood:

- ``<-LOGGER:<start ms>:<end ms>[:<node>]``: :class:`LoggerSource`, the
  values a data logger recorded from ``start_ms`` to ``end_ms`` (Unix
  milliseconds, UTC, both included). Without a node the server picks the
  best logger. Any event given with it is ignored by the server (the
  simulator does not check it either).
- ``<-FTP``: :class:`FTPSource`, a fast time plot: the device sampled at the
  event's rate (``M:OUTTMP@p,100H<-FTP``) and sent in batches.

Other sources the lab knows (``LOGGERDURATION``, ``SRFILE``, ...) are not
supported and are a :class:`~acnet_proto.drf.DRFError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from acnet_proto.errors import ConfigurationError

__all__ = [
    "MAX_LOGGER_MS",
    "MAX_NODE",
    "NODE_CHARS",
    "FTPSource",
    "LoggerSource",
    "Source",
]

#: Latest time a logger window may name: the end of the year 9999 (UTC), in
#: Unix milliseconds. It bounds the digits read and stays exact as a float.
MAX_LOGGER_MS = 253_402_300_799_999
#: Longest logger node name.
MAX_NODE = 16
#: The characters of a logger node name (canonical: upper case).
NODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass(frozen=True, slots=True)
class Source:
    """Base of :class:`LoggerSource` and :class:`FTPSource`; never instantiated."""

    def __post_init__(self) -> None:
        if type(self) is Source:
            raise TypeError("Source is abstract; use LoggerSource or FTPSource")

    def to_drf(self) -> str:
        """The canonical text of this source, without the leading ``<-``."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.to_drf()


def _check_ms(name: str, value: object) -> None:
    if type(value) is not int:
        raise ConfigurationError(
            f"LoggerSource {name} must be an int (Unix milliseconds), not {type(value).__name__}"
        )
    if not 0 <= value <= MAX_LOGGER_MS:
        raise ConfigurationError(
            f"LoggerSource {name} must be in 0..{MAX_LOGGER_MS} (Unix milliseconds), got {value}"
        )


@dataclass(frozen=True, slots=True)
class LoggerSource(Source):
    """``LOGGER:start:end[:node]``: logged values from ``start_ms`` to ``end_ms``.

    Both ends are Unix milliseconds (UTC) and included; ``start_ms <= end_ms``.
    ``node`` is the logger's name in upper case, or ``None`` to let the
    server choose the best logger. Anything else is a
    :class:`~acnet_proto.errors.ConfigurationError` naming the argument.
    """

    start_ms: int
    end_ms: int
    node: str | None = None

    def __post_init__(self) -> None:
        _check_ms("start_ms", self.start_ms)
        _check_ms("end_ms", self.end_ms)
        if self.end_ms < self.start_ms:
            raise ConfigurationError(
                f"LoggerSource end_ms {self.end_ms} is before start_ms {self.start_ms}; "
                "a logger window runs forward in time"
            )
        if self.node is not None:
            if type(self.node) is not str:
                raise ConfigurationError(
                    f"LoggerSource node must be a str or None, not {type(self.node).__name__}"
                )
            if not (0 < len(self.node) <= MAX_NODE and set(self.node) <= NODE_CHARS):
                raise ConfigurationError(
                    f"LoggerSource node must be 1..{MAX_NODE} upper-case letters, digits or '_', "
                    f"got {self.node!r}"
                )

    def to_drf(self) -> str:
        node = "" if self.node is None else f":{self.node}"
        return f"LOGGER:{self.start_ms}:{self.end_ms}{node}"


@dataclass(frozen=True, slots=True)
class FTPSource(Source):
    """``FTP``: a fast time plot, sampled at the request's event rate."""

    def to_drf(self) -> str:
        return "FTP"
