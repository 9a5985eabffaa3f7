"""Credentials for settings: the :class:`Auth` base and :class:`JWTAuth`.

Kerberos needs gssapi, so :class:`KerberosAuth` lives in
``acnet_proto.adapters.kerberos`` (and is reachable as
``acnet_proto.KerberosAuth``); the core only knows the :class:`Auth` shape.
Secrets never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from acnet_proto.errors import ConfigurationError

__all__ = ["Auth", "AuthHolder", "JWTAuth"]

#: where :meth:`JWTAuth.from_env` looks by default, in order
TOKEN_VARIABLES = ("ACNET_JWT_TOKEN", "PACSYS_JWT_TOKEN")


class Auth:
    """Something that proves who the user is. ``principal`` names them."""

    kind = "none"

    @property
    def principal(self) -> str:
        raise NotImplementedError

    def check(self) -> None:
        """Raise :class:`~acnet_proto.errors.AuthenticationError` if these credentials
        cannot be used now (a Kerberos ticket expired or destroyed). A token is the
        server's to judge, so by default there is nothing to check here."""


class AuthHolder:
    """What a backend says about the credentials it was given (pacsys's DPM backend's
    ``authenticated`` and ``principal``).

    Setting :attr:`auth` checks it (:meth:`Auth.check`), so a backend made
    with a Kerberos ticket that has expired or gone fails at once, typed.
    """

    _auth: Auth | None = None

    @property
    def auth(self) -> Auth | None:
        """The credentials settings use (``auth=``), or None."""
        return self._auth

    @auth.setter
    def auth(self, auth: Auth | None) -> None:
        if isinstance(auth, Auth):  # a duck-typed stand-in has nothing to check
            auth.check()
        self._auth = auth

    @property
    def authenticated(self) -> bool:
        """True if the backend was given credentials (``auth=``)."""
        return self._auth is not None

    @property
    def principal(self) -> str | None:
        """Who settings run as, checked now (AuthenticationError once a Kerberos
        ticket has expired or gone); None without credentials."""
        return None if self._auth is None else self._auth.principal


class JWTAuth(Auth):
    """A JWT bearer token (for DPM/gRPC). The token is kept as given; servers validate it.

    ``principal`` is the token's ``sub`` claim (read, not verified). Text that
    is no JWT raises :class:`~acnet_proto.errors.ConfigurationError` (a
    ValueError, as pacsys raises), which never shows the token.
    """

    kind = "jwt"
    __slots__ = ("_claims", "_token")

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ConfigurationError(
                "JWTAuth needs a token: a non-empty str (header.payload.signature)"
            )
        self._token = token.strip()
        self._claims = _claims_of(self._token)

    @classmethod
    def from_env(cls, var: str | None = None) -> JWTAuth | None:
        """The token in the environment variable ``var``, or None if it is unset or empty.

        Without ``var``: ``ACNET_JWT_TOKEN``, then pacsys's ``PACSYS_JWT_TOKEN``
        (the first one set wins). A variable set to something that is no JWT
        raises :class:`~acnet_proto.errors.ConfigurationError` (a ValueError),
        naming the variable (the value is never shown).
        """
        for name in TOKEN_VARIABLES if var is None else (var,):
            if value := os.environ.get(name, "").strip():
                try:
                    return cls(value)
                except ValueError as exc:
                    raise ConfigurationError(f"{name} does not hold a JWT: {exc}") from None
        return None

    @property
    def token(self) -> str:
        """The raw token, for call metadata. Never print it."""
        return self._token

    @property
    def principal(self) -> str:
        sub = self._claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise ConfigurationError("the JWT has no 'sub' claim naming its principal")
        return sub

    @property
    def claims(self) -> dict[str, Any]:
        """The token's payload claims, decoded but not verified."""
        return dict(self._claims)

    def __repr__(self) -> str:
        sub = self._claims.get("sub")
        return f"JWTAuth(principal={sub!r}, token=<redacted>)"

    __str__ = __repr__


def _claims_of(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ConfigurationError(
            f"a JWT has 3 dot-separated parts, this token has {len(parts)} (token not shown)"
        )
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError) as exc:
        problem = f"the JWT payload is not base64url JSON ({exc}; token not shown)"
        raise ConfigurationError(problem) from None
    except RecursionError:
        # json gives up on deep nesting with RecursionError, which is no ValueError
        problem = "the JWT payload nests its JSON too deeply to read (token not shown)"
        raise ConfigurationError(problem) from None
    if not isinstance(claims, dict):
        raise ConfigurationError("the JWT payload is not a JSON object (token not shown)")
    return claims
