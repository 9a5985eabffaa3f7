"""TLS for the simulated servers: a server context from PEM files, checked.

The ACL simulator serves HTTPS with it and the gRPC servers check their
certificate and key with it first, so a bad file is the same one-line error
whichever server was given it.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from acnet_proto.errors import ConfigurationError

__all__ = ["tls_context"]


class _Encrypted(Exception):
    """The private key asked for a password."""


def _no_password() -> str:
    raise _Encrypted


def tls_context(cert: str | Path, key: str | Path | None = None) -> ssl.SSLContext:
    """A server TLS context from PEM files: the certificate (or chain) ``cert`` and its
    private key ``key`` (None: ``cert`` holds the key too).

    :class:`~acnet_proto.errors.ConfigurationError`, naming the file, for one
    that cannot be read, a certificate file with no certificate, a key that
    is not an unencrypted PEM private key, or a key that does not match.
    """
    for role, path in (("certificate", cert), ("private key", key)):
        if path is not None:
            try:
                with open(path, "rb") as file:
                    file.read(1)
            except OSError as e:
                problem = f"the {role} {path} cannot be read: {e.strerror or e}"
                raise ConfigurationError(problem) from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except _Encrypted:
        raise ConfigurationError(
            f"the private key {key or cert} is encrypted; give it without a password"
        ) from None
    except ssl.SSLError as e:
        raise ConfigurationError(_tls_problem(cert, key, e)) from None
    return context


def _tls_problem(cert: str | Path, key: str | Path | None, error: ssl.SSLError) -> str:
    if error.reason == "KEY_VALUES_MISMATCH":
        return f"the private key {key or cert} is not the key of the certificate {cert}"
    try:
        ssl.create_default_context().load_verify_locations(cafile=cert)
    except ssl.SSLError:
        return f"the certificate {cert} holds no PEM certificate"
    return f"the private key {key or cert} holds no PEM private key"
