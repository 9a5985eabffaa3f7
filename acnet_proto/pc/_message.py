"""The base class of every PC message and struct.

Messages are tuples of their field values in wire order, with named
attributes. A tuple is used (rather than a frozen dataclass) because the
decoder builds one per received frame and ``tuple.__new__`` is the cheapest
immutable object Python can make.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import itemgetter
from typing import Any, ClassVar

import numpy as np

from acnet_proto.pc._schema import StructSchema

__all__ = ["Message", "make_message_class"]

_tuple_new = tuple.__new__
_REPR_ITEMS = 6
_REPR_BYTES = 24


class Message(tuple[Any, ...]):
    """An immutable PC message or struct; compare by value, keyword-constructed.

    Subclasses are made from the catalogues by :func:`make_message_class`. An
    absent optional field is ``None``. Arrays of doubles are read-only
    ``numpy.float64`` arrays, arrays of integers ``numpy.int64``, other arrays
    tuples.
    """

    __slots__ = ()
    schema: ClassVar[StructSchema]
    field_names: ClassVar[tuple[str, ...]]
    protocol: ClassVar[str]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(a, b) for a, b in zip(self, other, strict=True))

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, *map(_hashable, self)))

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={_shown(n, v)}" for n, v in zip(self.field_names, self))
        return f"{type(self).__name__}({parts})"

    def __reduce__(self) -> tuple[Callable[..., Message], tuple[Any, ...]]:
        return _rebuild, (type(self), tuple(self))

    def replace(self, **changes: Any) -> Message:
        """A copy with some fields changed (the original is immutable)."""
        unknown = set(changes) - set(self.field_names)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        return type(self)(**{**dict(zip(self.field_names, self)), **changes})

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict of attribute name to value (structs stay objects)."""
        return dict(zip(self.field_names, self))


def _rebuild(cls: type[Message], values: tuple[Any, ...]) -> Message:
    return _tuple_new(cls, values)


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _array_same(a, b)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _array_same(a: Any, b: Any) -> bool:
    try:
        x, y = np.asarray(a), np.asarray(b)
    except (ValueError, TypeError):
        return False
    if x.shape != y.shape:
        return False
    if x.dtype.kind == "f" or y.dtype.kind == "f":
        try:
            return bool(np.array_equal(x, y, equal_nan=True))
        except TypeError:
            return False
    return bool(np.array_equal(x, y))


def _hashable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return tuple(v.tolist())
    if isinstance(v, list):
        return tuple(map(_hashable, v))
    return v


# Kerberos tokens and MICs: a repr ends up in logs and tracebacks, so it never shows them.
_SECRET_FIELDS = frozenset({"token", "mic"})


def _shown(name: str, v: Any) -> str:
    if name in _SECRET_FIELDS and isinstance(v, bytes) and v:
        return f"<{len(v)} bytes, redacted>"
    return _short_repr(v)


def _short_repr(v: Any) -> str:
    if isinstance(v, np.ndarray | tuple | list) and len(v) > _REPR_ITEMS:
        items = [*v[:3], "...", *v[-2:]]
        shown = ", ".join(x if x == "..." else repr(_plain(x)) for x in items)
        return f"[{shown}] (len={len(v)})"
    if isinstance(v, np.ndarray):
        return repr(v.tolist())
    if isinstance(v, bytes) and len(v) > _REPR_BYTES:
        return f"{v[:_REPR_BYTES]!r}... (len={len(v)})"
    return repr(v)


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def make_message_class(protocol: str, schema: StructSchema) -> type[Message]:
    """Create the :class:`Message` subclass for one catalogue entry.

    Every field is an optional keyword argument at construction: a missing
    required field is reported by :func:`encode`, naming the message and
    field, rather than by Python's generic ``TypeError``.
    """
    names = tuple(f.attr for f in schema.fields)
    array_fields = tuple(i for i, f in enumerate(schema.fields) if f.element_type)

    def __new__(cls: type[Message], **kwargs: Any) -> Message:
        unknown = kwargs.keys() - names_set
        if unknown:
            raise TypeError(
                f"{cls.__name__} has no field(s) {sorted(unknown)}; its fields are {list(names)}"
            )
        values: list[Any] = [kwargs.get(n) for n in names]
        for i in array_fields:
            if isinstance(values[i], list):
                values[i] = tuple(values[i])
        return _tuple_new(cls, values)

    names_set = frozenset(names)
    namespace: dict[str, Any] = {
        "__slots__": (),
        "__new__": __new__,
        "__doc__": _docstring(protocol, schema),
        "schema": schema,
        "field_names": names,
        "protocol": protocol,
        "__match_args__": names,
    }
    for i, n in enumerate(names):
        f = schema.fields[i]
        namespace[n] = property(itemgetter(i), doc=f"``{f.name}`` ({f.type})")
    if schema.message_id is not None:
        namespace["message_id"] = schema.message_id
    cls = type(schema.class_name, (Message,), namespace)
    cls.__module__ = f"acnet_proto.pc.{protocol}"
    return cls


def _docstring(protocol: str, schema: StructSchema) -> str:
    head = f"``{schema.wire_name}`` of the {protocol.upper()} protocol"
    if schema.message_id is not None:
        head += f" (message id {schema.message_id})"
    lines = [head + ".", "", "Fields (wire name, type, tag):", ""]
    lines += [
        f"* ``{f.attr}`` — ``{f.name}``, {f.type}{', optional' if f.optional else ''}, tag {f.tag}"
        for f in schema.fields
    ]
    return "\n".join(lines)
