"""Decoders for one exact byte layout of a message, learned from decoded frames.

A message whose fields are all required integers or doubles (the last may be
an array of doubles) has a fixed layout once the width of every integer and
the length of the array are known: the header, the field tags, the width
bytes and the values never move. The first time the general decoder accepts
a frame of a layout not seen before, :meth:`Layouts.learn` makes a decoder
for exactly that layout: one ``struct`` unpack of the values, one masked
integer comparison of every fixed byte, and for an array one comparison of
its element tags. Given any bytes that differ from its layout it returns
``None``, and the caller falls back to the general decoder, which accepts or
raises exactly as it always did: a layout can change how fast a frame
decodes, never the outcome.

Integers wider than their type (legal, as a non-minimal encoding) never get a
layout, so a layout needs no range checks. Everything is bounded: at most
``MAX_LAYOUTS`` compiled functions per message class (arrays of every length
share one), at most ``MAX_LENGTHS`` frame lengths in a table (it starts
again when full), and arrays of at most ``MAX_ARRAY`` elements.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from types import FunctionType
from typing import Any

import numpy as np

from acnet_proto.pc._message import Message
from acnet_proto.pc._schema import StructSchema

__all__ = ["MAX_ARRAY", "MAX_LAYOUTS", "MAX_LENGTHS", "Layout", "Layouts", "has_fixed_layout"]

MAX_LAYOUTS = 32
MAX_LENGTHS = 256
# Longer arrays keep the general decoder: a layout holds its element tags, and
# the fixed cost a layout saves is small beside decoding thousands of values.
MAX_ARRAY = 4096

Layout = Callable[[bytes], Message | None]

_INT_BYTES = {"int16": 2, "int32": 4, "int64": 8}
# struct has no 3-, 5-, 6- or 7-byte integers: those are read as a signed
# high part and unsigned low parts, then shifted together.
_SPLIT = {1: "b", 2: "h", 3: "bH", 4: "i", 5: "bI", 6: "hI", 7: "bHI", 8: "q"}
_BITS = {"B": 8, "H": 16, "I": 32}
_ARRAY = "array<double>"
_BIG_F64 = np.dtype(">f8")
_F64 = np.dtype(np.float64)


def has_fixed_layout(schema: StructSchema) -> bool:
    """Whether frames of ``schema`` can be decoded by a learned :class:`Layouts`."""
    types = [f.type for f in schema.fields]
    if not types or any(f.optional for f in schema.fields):
        return False
    scalar = {*_INT_BYTES, "double"}
    return all(t in scalar for t in types[:-1]) and (types[-1] in scalar or types[-1] == _ARRAY)


class Layouts:
    """The layouts learned for one message class.

    ``by_length`` maps a frame length to the layout last learned at that
    length; it may be shared by several classes, since a layout checks the
    whole frame, header and message id included. The caller looks every frame
    up there and calls :meth:`learn` with each frame of this class that the
    general decoder accepted. ``prefix`` is the frame's header and message id
    as this codec writes them, ``field_tags`` the encoded tag of each field.
    """

    def __init__(
        self,
        cls: type[Message],
        prefix: bytes,
        field_tags: list[bytes],
        by_length: dict[int, Layout],
    ) -> None:
        self._cls = cls
        self._prefix = prefix
        self._fields = list(zip(field_tags, (f.type for f in cls.schema.fields)))
        self._by_length = by_length
        self._compiled: dict[tuple[int, ...], Callable[[int], Layout]] = {}

    def learn(self, b: bytes) -> None:
        """Map ``len(b)`` to the layout of ``b``, a frame the general decoder accepted."""
        if not b.startswith(self._prefix):  # e.g. a message id written in too many bytes
            return
        shape = self._shape(b)
        if shape is None:
            return
        widths, count = shape
        make = self._compiled.get(widths)
        if make is None:
            if len(self._compiled) >= MAX_LAYOUTS:
                return
            make = self._compiled[widths] = self._compile(widths)
        if len(self._by_length) >= MAX_LENGTHS:
            self._by_length.clear()
        self._by_length[len(b)] = make(count)

    def _shape(self, b: bytes) -> tuple[tuple[int, ...], int] | None:
        """The width of each integer and of the array's count, and that count (0 if none).

        ``None`` if ``b`` cannot have a layout: a width beyond its type, or an
        array that is empty or longer than ``MAX_ARRAY``.
        """
        p = len(self._prefix)
        if b[p] != 0x51:  # a struct count written in more than one byte
            return None
        p += 2
        widths = []
        count = 0
        for tag, type_name in self._fields:
            p += len(tag)
            if type_name == "double":
                p += 9
                continue
            w = b[p] & 0x0F
            widths.append(w)
            if type_name == _ARRAY:
                count = int.from_bytes(b[p + 1 : p + 1 + w], "big", signed=True)
                if not 0 < count <= MAX_ARRAY:
                    return None
            elif w > _INT_BYTES[type_name]:
                return None
            p += 1 + w
        return tuple(widths), count

    def _compile(self, widths: tuple[int, ...]) -> Callable[[int], Layout]:
        """What makes the decoder of this class's frames with these widths, given the count.

        Only an array's decoder depends on the count (its element tags and the
        frame's length): one compiled function serves every count, with the
        constants that depend on it as its globals.
        """
        fixed = bytearray(self._prefix)  # the expected frame, values left as zeros
        mask = bytearray(b"\xff" * len(fixed))  # which bytes of the frame are fixed
        fmt = [f">{len(fixed)}x"]
        names: list[str] = []
        values: list[str] = []
        width = iter(widths)
        array_width = 0

        def take(run: bytes, codes: str) -> list[str]:
            """Expect the fixed bytes ``run``, then read ``codes``; the names they are read into."""
            fixed.extend(run)
            mask.extend(b"\xff" * len(run))
            fmt.append(f"{len(run)}x")
            taken = [f"a{len(names) + i}" for i in range(len(codes))]
            names.extend(taken)
            fmt.append(codes)
            size = struct.calcsize(">" + codes)
            fixed.extend(bytes(size))
            mask.extend(bytes(size))
            return taken

        def integer(run: bytes, w: int) -> str:
            """``run``, then an integer of ``w`` bytes; its value, as code."""
            codes = _SPLIT[w]
            expr, *rest = take(run + bytes((0x10 | w,)), codes)
            for code, name in zip(codes[1:], rest):
                expr = f"(({expr}) << {_BITS[code]}) + {name}"
            return expr

        run = bytes((0x51, 2 * len(self._fields)))
        for tag, type_name in self._fields:
            run += tag
            if type_name == "double":
                values += take(run + b"\x28", "d")
            elif type_name == _ARRAY:
                # The count is checked as fixed bytes, filled in per count by ``make``.
                array_width = next(width)
                fixed.extend(run + bytes((0x50 | array_width,)) + bytes(array_width))
                mask.extend(b"\xff" * (len(run) + 1 + array_width))
                fmt.append(f"{len(run) + 1 + array_width}x")
            else:
                values.append(integer(run, next(width)))
            run = b""
        unpacker = struct.Struct("".join(fmt))
        q = unpacker.size
        env: dict[str, Any] = {
            "cls": self._cls,
            "new": tuple.__new__,
            "struct_error": struct.error,
            "from_bytes": int.from_bytes,
            "unpack": unpacker.unpack if not array_width else unpacker.unpack_from,
            "MASK": int.from_bytes(mask, "big"),
            "FIXED": int.from_bytes(fixed, "big"),
        }
        # One integer of the frame's fixed part, masked, compares every fixed byte at once.
        head = "b" if not array_width else f"b[:{q}]"
        lines = [
            "def layout(b):",
            "    try:",
            f"        {''.join(n + ', ' for n in names)}{'=' if names else ''} unpack(b)",
            "    except struct_error:",
            "        return None",
            f"    if from_bytes({head}, 'big') & MASK != FIXED:",
            "        return None",
        ]
        if array_width:
            env.update(big_f64=_BIG_F64, f64=_F64, ndarray=np.ndarray)
            lines += [
                f"    if len(b) != END or b[{q}::9] != TAGS:",
                "        return None",
                f"    data = ndarray((N,), big_f64, b, {q + 1}, (9,)).astype(f64)",
                # Positional, as numpy documents it: parsing write=False costs twice the call.
                "    data.setflags(False)",
            ]
            values.append("data")
        lines.append(f"    return new(cls, ({', '.join(values)},))")
        name = f"<sdd layout: {self._cls.schema.wire_name} {widths}>"
        exec(compile("\n".join(lines), name, "exec"), env)
        layout: Layout = env["layout"]  # defined by the source just run
        if not array_width:
            return lambda count: layout

        def make(count: int) -> Layout:
            # The count is the last field before the elements: the header's lowest bytes.
            counted = int.from_bytes(count.to_bytes(array_width, "big", signed=True), "big")
            constants = {
                "N": count,
                "END": q + 9 * count,
                "TAGS": b"\x28" * count,
                "FIXED": env["FIXED"] | counted,
            }
            return FunctionType(layout.__code__, {**env, **constants})

        return make
