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

__all__ = ["Auth", "JWTAuth"]

_TOKEN_VARIABLES = ("ACNET_JWT_TOKEN", "PACSYS_JWT_TOKEN")


class Auth:
    """Something that proves who the user is. ``principal`` names them."""

    kind = "none"

    @property
    def principal(self) -> str:
        raise NotImplementedError


class JWTAuth(Auth):
    """A JWT bearer token (for DPM/gRPC). The token is kept as given; servers validate it.

    ``principal`` is the token's ``sub`` claim (read, not verified).
    """

    kind = "jwt"
    __slots__ = ("_claims", "_token")

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ValueError("JWTAuth needs a token: a non-empty str (header.payload.signature)")
        self._token = token.strip()
        self._claims = _claims_of(self._token)

    @classmethod
    def from_env(cls) -> JWTAuth:
        """From ``ACNET_JWT_TOKEN``, else ``PACSYS_JWT_TOKEN``."""
        for name in _TOKEN_VARIABLES:
            if value := os.environ.get(name, "").strip():
                return cls(value)
        raise ValueError(f"no JWT in the environment: set {' or '.join(_TOKEN_VARIABLES)}")

    @property
    def token(self) -> str:
        """The raw token, for call metadata. Never print it."""
        return self._token

    @property
    def principal(self) -> str:
        sub = self._claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise ValueError("the JWT has no 'sub' claim naming its principal")
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
        raise ValueError(
            f"a JWT has 3 dot-separated parts, this token has {len(parts)} (token not shown)"
        )
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError) as exc:
        problem = f"the JWT payload is not base64url JSON ({exc}; token not shown)"
        raise ValueError(problem) from None
    if not isinstance(claims, dict):
        raise ValueError("the JWT payload is not a JSON object (token not shown)")
    return claims
