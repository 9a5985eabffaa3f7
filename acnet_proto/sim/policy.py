"""Who may set what: the authorization a DPM server applies to each setting.

A principal holds roles; a role allows device-name patterns (globs such as
``Z:*``) and may deny others. Patterns are matched against the device's
canonical name, never a spelling: ``g_amanda`` and ``G:AMANDA.SETTING[0]``
are G:AMANDA, and an index name (``0:<di>``) is allowed by no role (a server
resolves it to the device's name first). A client claims one role per list with
``#ROLE:<role>``. A setting is allowed when the claimed role is one the
principal holds and it allows the device. Failing that, a principal's
console class (a bitmask) that shares a bit with the device's protection
mask allows it, as the lab's console-class privileges do.

Refusals carry the real codes: ``DPM_PRIV`` (17/-17) when no role allows the
device, ``DPM_DBPRIV`` (17/-18) when the device's protection mask refuses the
console class.

The policy file is TOML::

    default_roles = ["testing"]          # every authenticated principal

    [roles.testing]
    allow = ["Z:*"]

    [roles.operations]
    allow = ["*"]
    deny = ["G:*"]

    [principals."operator@FNAL.GOV"]
    roles = ["operations"]
    console_class = 0x0010
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acnet_proto.proxy.targets import device_name
from acnet_proto.status import Status

__all__ = ["DPM_DBPRIV", "DPM_PRIV", "SettingsPolicy", "SettingsRole"]

DPM_PRIV = Status.from_name("DPM_PRIV")
DPM_DBPRIV = Status.from_name("DPM_DBPRIV")

DEFAULT_POLICY = """
default_roles = ["testing"]

[roles.testing]
allow = ["Z:*"]
"""


@dataclass(frozen=True, slots=True)
class SettingsRole:
    """A named set of device patterns a principal may set."""

    name: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def permits(self, device: str) -> bool:
        """True if this role may set ``device`` (a name or DRF, in any spelling); never for
        an index name or text that is not a DRF."""
        name = device_name(device)
        if name is None:
            return False
        if any(fnmatch.fnmatchcase(name, p.upper()) for p in self.deny):
            return False
        return any(fnmatch.fnmatchcase(name, p.upper()) for p in self.allow)


@dataclass(frozen=True, slots=True)
class SettingsPolicy:
    """Roles, the principals that hold them, and console classes."""

    roles: dict[str, SettingsRole] = field(default_factory=dict)
    principals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    console_classes: dict[str, int] = field(default_factory=dict)
    default_roles: tuple[str, ...] = ()

    @classmethod
    def default(cls) -> SettingsPolicy:
        """Every authenticated principal holds ``testing``, which may set ``Z:*`` only."""
        return cls.from_toml(DEFAULT_POLICY)

    @classmethod
    def load(cls, path: str | Path) -> SettingsPolicy:
        with open(path, "rb") as f:
            try:
                return cls.from_dict(tomllib.load(f), str(path))
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"policy file {path} is not valid TOML: {exc}") from None

    @classmethod
    def from_toml(cls, text: str) -> SettingsPolicy:
        try:
            return cls.from_dict(tomllib.loads(text), "policy")
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"policy text is not valid TOML: {exc}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "policy") -> SettingsPolicy:
        roles = {
            name: SettingsRole(
                name, _strings(spec, "allow", source), _strings(spec, "deny", source)
            )
            for name, spec in _table(data, "roles", source).items()
        }
        principals: dict[str, tuple[str, ...]] = {}
        classes: dict[str, int] = {}
        for name, spec in _table(data, "principals", source).items():
            principals[name] = _strings(spec, "roles", source)
            mask = spec.get("console_class", 0) if isinstance(spec, dict) else 0
            if not isinstance(mask, int) or isinstance(mask, bool) or mask < 0:
                raise ValueError(f"{source}: principals.{name}.console_class must be an int >= 0")
            classes[name] = mask
        defaults = _strings(data, "default_roles", source)
        for holder, held in [("default_roles", defaults), *principals.items()]:
            unknown = [r for r in held if r not in roles]
            if unknown:
                raise ValueError(f"{source}: {holder} names undefined role(s) {unknown}")
        return cls(roles, principals, classes, defaults)

    def roles_of(self, principal: str) -> tuple[str, ...]:
        """The roles ``principal`` holds (its own, then the defaults)."""
        return tuple(dict.fromkeys(self.principals.get(principal, ()) + self.default_roles))

    def authorize(
        self, principal: str, role: str | None, device: str, protection_mask: int = 0
    ) -> Status | None:
        """None if ``principal`` acting as ``role`` may set ``device``; else the refusal.

        The role judges ``device``'s canonical name (:meth:`SettingsRole.permits`);
        the console class judges ``protection_mask``, whatever the name.
        """
        if (
            role is not None
            and role in self.roles_of(principal)
            and self.roles[role].permits(device)
        ):
            return None
        console = self.console_classes.get(principal, 0)
        if protection_mask and console:
            return None if console & protection_mask else DPM_DBPRIV
        return DPM_PRIV


def _table(data: Any, key: str, source: str) -> dict[str, Any]:
    value = data.get(key, {}) if isinstance(data, dict) else {}
    if not isinstance(value, dict):
        raise ValueError(f"{source}: [{key}] must be a table")
    return value


def _strings(data: Any, key: str, source: str) -> tuple[str, ...]:
    value = data.get(key, []) if isinstance(data, dict) else []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{source}: {key} must be a list of strings")
    return tuple(value)
