"""The PC message catalogues as data: load them, validate them, name things.

The catalogues (``protos/pc/<protocol>.json``) are the single source of truth
for message ids, field tags and wire types. Nothing else in the project spells
out a message layout.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["EnumSchema", "FieldSchema", "ProtocolSchema", "StructSchema", "load_schema"]

INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
SCALAR_TYPES = {"double", "bool", "string", "binary", *INT_RANGES}


@dataclass(frozen=True, slots=True)
class FieldSchema:
    """One field: its wire name, Python attribute name, wire type, tag."""

    name: str
    attr: str
    type: str
    optional: bool
    tag: int

    @property
    def element_type(self) -> str | None:
        """The element type of an ``array<T>`` field, else ``None``."""
        if self.type.startswith("array<") and self.type.endswith(">"):
            return self.type[6:-1]
        return None


@dataclass(frozen=True, slots=True)
class StructSchema:
    """A message (``kind`` is ``"request"`` or ``"reply"``) or a plain struct."""

    wire_name: str
    class_name: str
    kind: str
    message_id: int | None
    fields: tuple[FieldSchema, ...]


@dataclass(frozen=True, slots=True)
class EnumSchema:
    wire_name: str
    class_name: str
    values: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ProtocolSchema:
    module: str
    protocol_id: int
    structs: tuple[StructSchema, ...]
    enums: tuple[EnumSchema, ...]

    def by_wire_name(self, name: str) -> StructSchema:
        for s in self.structs:
            if s.wire_name == name:
                return s
        raise KeyError(f"{self.module} has no message or struct named {name!r}")


def snake_case(name: str) -> str:
    """``serviceName`` -> ``service_name``, ``MIC`` -> ``mic``, ``list_id`` unchanged."""
    if name.isupper():
        return name.lower()
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def class_name(wire_name: str) -> str:
    """``Foo_request`` -> ``FooRequest``, ``Foo_reply`` -> ``FooReply``, ``Foo_struct`` -> ``Foo``.

    ``Foo_enum`` -> ``Foo``.
    """
    for suffix, replacement in (("_request", "Request"), ("_reply", "Reply"), ("_struct", "")):
        if wire_name.endswith(suffix):
            return wire_name[: -len(suffix)] + replacement
    if wire_name.endswith("_enum"):
        return wire_name[:-5]
    raise ValueError(f"catalogue name {wire_name!r} has no _request/_reply/_struct/_enum suffix")


def _fields(raw: list[dict[str, Any]]) -> tuple[FieldSchema, ...]:
    return tuple(
        FieldSchema(f["name"], snake_case(f["name"]), f["type"], bool(f["optional"]), int(f["tag"]))
        for f in raw
    )


def parse_schema(doc: dict[str, Any]) -> ProtocolSchema:
    """Build a :class:`ProtocolSchema` from a catalogue document and check it is complete."""
    structs = [
        StructSchema(
            m["name"],
            class_name(m["name"]),
            "request" if m["name"].endswith("_request") else "reply",
            int(m["id"]),
            _fields(m["fields"]),
        )
        for m in doc["messages"]
    ]
    structs += [
        StructSchema(s["name"], class_name(s["name"]), "struct", None, _fields(s["fields"]))
        for s in doc.get("structs", [])
    ]
    enums = tuple(
        EnumSchema(e["name"], class_name(e["name"]), tuple(e["values"].items()))
        for e in doc.get("enums", [])
    )
    schema = ProtocolSchema(doc["module"], int(doc["protocol_id"]), tuple(structs), enums)
    _check(schema)
    return schema


def _check(schema: ProtocolSchema) -> None:
    known = {*SCALAR_TYPES, *(s.wire_name for s in schema.structs)}
    known |= {e.wire_name for e in schema.enums}
    for s in schema.structs:
        for f in s.fields:
            base = f.element_type or f.type
            if base not in known:
                where = f"{schema.module}: {s.wire_name}.{f.name}"
                raise ValueError(f"{where} has unknown type {f.type!r}")


def load_schema(protocol: str) -> ProtocolSchema:
    """Load ``protos/pc/<protocol>.json`` (installed as ``acnet_proto.protos``)."""
    text = resources.files("acnet_proto.protos").joinpath("pc", f"{protocol}.json").read_text()
    return parse_schema(json.loads(text))
