"""The PC / SDD binary encoding, compiled from the message catalogues.

Every value starts with a tag byte whose high nibble is the type and, for the
variable-length types, whose low nibble ``n`` (1..8) counts the big-endian
two's-complement bytes that follow (the value, or a length or count)::

    0x1n int   0x28 double   0x3n binary   0x4n string   0x5n array/struct
    0x70 false 0x71 true     0x8n enum

A message is ``53 44 44 02`` ("SDD" v2), then an array of three values:
protocol id, message id, and the message struct (tag, value, tag, value, ...).

:class:`Codec` turns one catalogue into message classes and one encoder and
decoder per type, built once from closures so that no message layout is ever
written by hand. On top of those, :mod:`~acnet_proto.pc._sdd_fast` compiles a
straight-line encoder and decoder per struct, and
:mod:`~acnet_proto.pc._sdd_layouts` a decoder per exact byte layout of the
fixed-layout messages (the data replies), learned from the frames decoded;
both defer to the closures on anything unusual. Decoders raise only
:class:`~acnet_proto.errors.DecodeError` on any byte string; encoders raise
only :class:`~acnet_proto.errors.LocalProtocolError` on any message.
"""

from __future__ import annotations

import enum
import operator
import struct
from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np

from acnet_proto.errors import DecodeError, LocalProtocolError
from acnet_proto.pc._message import Message, make_message_class
from acnet_proto.pc._schema import INT_RANGES, FieldSchema, ProtocolSchema, load_schema
from acnet_proto.pc._sdd_fast import fast_decoder, fast_encoder
from acnet_proto.pc._sdd_layouts import Layout, Layouts, has_fixed_layout

__all__ = ["MAGIC", "Codec", "encode_int"]

MAGIC = b"SDD\x02"
TAG_INT, TAG_BINARY, TAG_STRING, TAG_ARRAY, TAG_ENUM = 0x10, 0x30, 0x40, 0x50, 0x80
TAG_DOUBLE, TAG_FALSE, TAG_TRUE = 0x28, 0x70, 0x71

# Smallest encoded size of one element of each kind, so that a count read from
# the wire can be checked against the bytes left before anything is allocated.
_MIN_SIZE = {"double": 9, "bool": 1}
_DEFAULT_MIN_SIZE = 2

Decoder = Callable[[bytes, int], tuple[Any, int]]
Encoder = Callable[[Any], bytes]
# A message class, its struct decoder, and what learns a layout from a frame
# that decoder accepted (None for classes without a fixed layout).
_Entry = tuple[type[Message], Decoder, Callable[[bytes], None] | None]

_TAG_BYTES = [bytes((t,)) for t in range(256)]
SMALL_INTS = [bytes((0x11, v & 0xFF)) for v in range(-128, 128)]
_tagged_double = struct.Struct(">Bd").pack
_unpack_double = struct.Struct(">d").unpack_from
_tuple_new = tuple.__new__
_F64 = np.dtype(np.float64)


def encode_int(value: int, tag: int = TAG_INT) -> bytes:
    """Encode ``value`` in the fewest two's-complement bytes that keep its sign.

    >>> encode_int(127).hex(), encode_int(128).hex(), encode_int(-129).hex()
    ('117f', '120080', '12ff7f')
    """
    n = ((value if value >= 0 else ~value).bit_length() >> 3) + 1
    return _TAG_BYTES[tag | n] + value.to_bytes(n, "big", signed=True)


# ---------------------------------------------------------------- failures


class _Bad(Exception):
    """A value that cannot be encoded or decoded; ``path`` grows as it unwinds."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        self.path: list[str] = []

    def at(self, attr: str) -> _Bad:
        self.path.insert(0, f".{attr}")
        return self


def _describe(b: bytes, p: int) -> str:
    return f"0x{b[p]:02x}" if p < len(b) else "the end of the data"


def _expected(what: str, b: bytes, p: int) -> _Bad:
    return _Bad(f"expected {what} at offset {p}, found {_describe(b, p)}", p)


def _truncated(what: str, need_end: int, b: bytes, p: int) -> _Bad:
    return _Bad(
        f"{what} at offset {p} needs the data to reach offset {need_end}, but it ends at {len(b)}",
        p,
    )


# ------------------------------------------------------------- primitives


def _read_varint(b: bytes, p: int, tag: int, what: str) -> tuple[int, int]:
    """Read a tag-nibble integer (an int, enum, length or count) at ``p``."""
    t = b[p]
    n = t & 0x0F
    if t & 0xF0 != tag or not 1 <= n <= 8:
        raise _expected(what, b, p)
    q = p + 1 + n
    if q > len(b):
        raise _truncated(what, q, b, p)
    if n == 1:
        v = b[p + 1]
        return (v - 256 if v > 127 else v), q
    return int.from_bytes(b[p + 1 : q], "big", signed=True), q


def _read_size(b: bytes, p: int, tag: int, what: str) -> tuple[int, int]:
    n, q = _read_varint(b, p, tag, what)
    if n < 0:
        raise _Bad(f"{what} at offset {p} has a negative size {n}", p)
    return n, q


def _int_codec(type_name: str) -> tuple[Encoder, Decoder]:
    lo, hi = INT_RANGES[type_name]

    def enc(v: Any) -> bytes:
        if type(v) is int:
            if -128 <= v < 128:
                return SMALL_INTS[v + 128]
        else:
            v = _as_int(v, type_name)
        if not lo <= v <= hi:
            raise _Bad(f"{v} is outside the {type_name} range {lo}..{hi}")
        return encode_int(v)

    def dec(b: bytes, p: int) -> tuple[int, int]:
        v, q = _read_varint(b, p, TAG_INT, "an integer (tag 0x1n)")
        if not lo <= v <= hi:
            raise _Bad(f"integer {v} at offset {p} is outside the {type_name} range", p)
        return v, q

    return enc, dec


def _as_int(v: Any, type_name: str) -> int:
    try:
        return operator.index(v)
    except TypeError:
        raise _Bad(f"expected an int for {type_name}, got {type(v).__name__} {v!r}") from None


def _enc_double(v: Any) -> bytes:
    try:
        return _tagged_double(TAG_DOUBLE, v)
    except struct.error:
        raise _Bad(f"expected a float, got {type(v).__name__} {v!r}") from None


def _dec_double(b: bytes, p: int) -> tuple[float, int]:
    if b[p] != TAG_DOUBLE:
        raise _expected("a double (tag 0x28)", b, p)
    if p + 9 > len(b):
        raise _truncated("a double", p + 9, b, p)
    return _unpack_double(b, p + 1)[0], p + 9


def _enc_bool(v: Any) -> bytes:
    if v is True or v is False or isinstance(v, np.bool_):
        return b"\x71" if v else b"\x70"
    raise _Bad(f"expected a bool, got {type(v).__name__} {v!r}")


def _dec_bool(b: bytes, p: int) -> tuple[bool, int]:
    t = b[p]
    if t == TAG_TRUE:
        return True, p + 1
    if t == TAG_FALSE:
        return False, p + 1
    raise _expected("a bool (tag 0x70 or 0x71)", b, p)


def _enc_string(v: Any) -> bytes:
    if not isinstance(v, str):
        raise _Bad(f"expected a str, got {type(v).__name__} {v!r}")
    try:
        raw = v.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _Bad(f"string is not encodable as UTF-8: {e}") from None
    return encode_int(len(raw), TAG_STRING) + raw


def _dec_string(b: bytes, p: int) -> tuple[str, int]:
    n, q = _read_size(b, p, TAG_STRING, "a string (tag 0x4n)")
    end = q + n
    if end > len(b):
        raise _truncated(f"a string of {n} bytes", end, b, p)
    raw = b[q:end]
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError:
        # The Java reference peers write ISO-8859-1, one byte per character.
        return raw.decode("latin-1"), end


def _enc_binary(v: Any) -> bytes:
    if not isinstance(v, bytes | bytearray | memoryview):
        raise _Bad(f"expected bytes, got {type(v).__name__} {v!r}")
    raw = bytes(v)
    return encode_int(len(raw), TAG_BINARY) + raw


def _dec_binary(b: bytes, p: int) -> tuple[bytes, int]:
    n, q = _read_size(b, p, TAG_BINARY, "binary data (tag 0x3n)")
    end = q + n
    if end > len(b):
        raise _truncated(f"binary data of {n} bytes", end, b, p)
    return b[q:end], end


def _enum_codec(cls: type[enum.IntEnum]) -> tuple[Encoder, Decoder]:
    by_value = {m.value: m for m in cls}

    def enc(v: Any) -> bytes:
        member = by_value.get(v) if not isinstance(v, bool) else None
        if member is None:
            raise _Bad(f"{v!r} is not a {cls.__name__} value; use one of {[m.name for m in cls]}")
        return encode_int(member.value, TAG_ENUM)

    def dec(b: bytes, p: int) -> tuple[enum.IntEnum, int]:
        v, q = _read_varint(b, p, TAG_ENUM, f"a {cls.__name__} enum (tag 0x8n)")
        member = by_value.get(v)
        if member is None:
            raise _Bad(f"{v} at offset {p} is not a {cls.__name__} value", p)
        return member, q

    return enc, dec


# ------------------------------------------------------------------ arrays


def _check_sequence(v: Any) -> None:
    if isinstance(v, str | bytes | bytearray | memoryview | Mapping) or not hasattr(v, "__len__"):
        raise _Bad(f"expected a list, tuple or numpy array, got {type(v).__name__}")


def _enc_double_array(v: Any) -> bytes:
    _check_sequence(v)
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Bad(f"expected numbers, got {_short(v)}") from None
    if a.ndim != 1:
        raise _Bad(f"expected a one-dimensional array, got shape {a.shape}")
    out = np.empty(len(a), dtype=[("tag", "u1"), ("value", ">f8")])
    out["tag"] = TAG_DOUBLE
    out["value"] = a
    return encode_int(len(a), TAG_ARRAY) + out.tobytes()


_TAGGED_DOUBLE = np.dtype([("tag", "u1"), ("value", ">f8")])


def _dec_double_array(b: bytes, p: int) -> tuple[np.ndarray, int]:
    n, q = _read_size(b, p, TAG_ARRAY, "an array (tag 0x5n)")
    end = q + 9 * n
    if end > len(b):
        raise _truncated(f"an array of {n} doubles", end, b, q)
    if n == 0:
        a = np.empty(0, dtype=np.float64)
    else:
        # An extended slice gathers every ninth byte (the tags) in C.
        if b[q:end:9] != b"\x28" * n:
            bad = next(i for i in range(n) if b[q + 9 * i] != TAG_DOUBLE)
            raise _expected(f"a double (tag 0x28) for element {bad}", b, q + 9 * bad)
        a = np.frombuffer(b, _TAGGED_DOUBLE, n, q)["value"].astype(_F64)
    a.setflags(write=False)
    return a, end


def _array_codec(element: str, enc_el: Encoder, dec_el: Decoder) -> tuple[Encoder, Decoder]:
    min_size = _MIN_SIZE.get(element, _DEFAULT_MIN_SIZE)
    to_numpy = element in INT_RANGES

    def enc(v: Any) -> bytes:
        _check_sequence(v)
        items = v.tolist() if isinstance(v, np.ndarray) else v
        parts = [encode_int(len(items), TAG_ARRAY)]
        for i, x in enumerate(items):
            try:
                parts.append(enc_el(x))
            except _Bad as e:
                e.path.insert(0, f"[{i}]")
                raise
        return b"".join(parts)

    def dec(b: bytes, p: int) -> tuple[Any, int]:
        n, q = _read_size(b, p, TAG_ARRAY, "an array (tag 0x5n)")
        if n > (len(b) - q) // min_size:
            raise _Bad(
                f"array at offset {p} claims {n} elements but only {len(b) - q} bytes follow", p
            )
        items = []
        for i in range(n):
            try:
                x, q = dec_el(b, q)
            except _Bad as e:
                e.path.insert(0, f"[{i}]")
                raise
            items.append(x)
        if to_numpy:
            a = np.array(items, dtype=np.int64)
            a.flags.writeable = False
            return a, q
        return tuple(items), q

    return enc, dec


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------- structs


def _struct_codec(
    cls: type[Message], plan: list[tuple[FieldSchema, bytes, Encoder, Decoder]]
) -> tuple[Encoder, Decoder]:
    """The reference encoder and decoder of a struct: a tag and a value per field, in order."""
    n_fields = len(plan)
    n_required = sum(not f.optional for f in cls.schema.fields)
    wire = cls.schema.wire_name
    fixed_header = encode_int(2 * n_fields, TAG_ARRAY) if n_required == n_fields else None
    expected_count = (
        f"{2 * n_fields}" if fixed_header else f"{2 * n_required}..{2 * n_fields}"
    ) + " (a tag and a value per field)"

    def enc(v: Any) -> bytes:
        if type(v) is not cls:
            raise _Bad(f"expected a {cls.__name__}, got {type(v).__name__} {_short(v)}")
        parts = []
        for (f, tag, enc_f, _), x in zip(plan, v):
            if x is None:
                if f.optional:
                    continue
                raise _Bad(f"required field {f.attr} ({f.name}) is missing").at(f.attr)
            try:
                parts.append(tag + enc_f(x))
            except _Bad as e:
                e.path.insert(0, f".{f.attr}")
                raise
        header = fixed_header or encode_int(2 * len(parts), TAG_ARRAY)
        return header + b"".join(parts)

    def dec(b: bytes, p: int) -> tuple[Message, int]:
        count, q = _read_size(b, p, TAG_ARRAY, f"a {wire} struct (tag 0x5n)")
        present = count >> 1
        if count & 1 or not n_required <= present <= n_fields:
            raise _Bad(f"{wire} at offset {p} has {count} values; expected {expected_count}", p)
        values: list[Any] = [None] * n_fields
        i = 0
        for _ in range(present):
            while True:
                if i == n_fields:
                    raise _unknown_tag(wire, b, q)
                f, tag, _, dec_f = plan[i]
                if b.startswith(tag, q):
                    break
                if not f.optional:
                    raise _missing(wire, f, b, q)
                i += 1
            try:
                values[i], q = dec_f(b, q + len(tag))
            except _Bad as e:
                e.path.insert(0, f".{f.attr}")
                raise
            except IndexError:
                raise _Bad(f"the data ends at offset {len(b)} inside field {f.attr}", len(b)).at(
                    f.attr
                ) from None
            i += 1
        for f, *_ in plan[i:]:
            if not f.optional:
                raise _missing(wire, f, b, q)
        return _tuple_new(cls, values), q

    return enc, dec


def _unknown_tag(wire: str, b: bytes, q: int) -> _Bad:
    try:
        tag, _ = _read_varint(b, q, TAG_INT, "a field tag")
    except (_Bad, IndexError):
        return _expected(f"a field tag of {wire}", b, q)
    return _Bad(f"unknown or out-of-order field tag {tag} in {wire} at offset {q}", q)


def _missing(wire: str, f: FieldSchema, b: bytes, q: int) -> _Bad:
    return _Bad(
        f"expected field {f.attr} (tag {f.tag}) of {wire} at offset {q}, found {_describe(b, q)}",
        q,
    )


# ------------------------------------------------------------------- codec


class Codec:
    """Message classes, encoder and decoders for one PC protocol catalogue.

    ``Codec.load("dpm")`` reads ``protos/pc/dpm.json``. Use the per-protocol
    modules :mod:`acnet_proto.pc.dpm` and
    :mod:`acnet_proto.pc.daqdata` rather than this class directly.

    ``encode(message)`` returns a message's wire bytes (without a frame length
    prefix) and raises only :class:`LocalProtocolError`;
    ``decode_request(data)`` and ``decode_reply(data)`` decode one message
    from ``bytes``, ``bytearray`` or ``memoryview`` and raise only
    :class:`DecodeError`. They are plain functions made for this codec, so
    that a call costs no method dispatch.
    """

    encode: Callable[[Message], bytes]
    decode_request: Callable[[bytes | bytearray | memoryview], Message]
    decode_reply: Callable[[bytes | bytearray | memoryview], Message]

    def __init__(self, schema: ProtocolSchema) -> None:
        self.schema = schema
        self._fast = True
        self.enums: dict[str, type[enum.IntEnum]] = {
            # the functional API makes a class, which mypy cannot see for a computed name
            e.wire_name: cast(type[enum.IntEnum], enum.IntEnum(e.class_name, list(e.values)))
            for e in schema.enums
        }
        for e in self.enums.values():
            e.__module__ = f"acnet_proto.pc.{schema.module}"
        self.classes: dict[str, type[Message]] = {
            s.wire_name: make_message_class(schema.module, s) for s in schema.structs
        }
        self._compile()

    def reference(self) -> Codec:
        """A codec for the same classes that uses only the checking closures.

        The fast paths must agree with it on every input; the tests compare them.
        """
        twin = object.__new__(Codec)
        twin.schema, twin.enums, twin.classes = self.schema, self.enums, self.classes
        twin._fast = False
        twin._compile()
        return twin

    def _compile(self) -> None:
        schema = self.schema
        self._codecs: dict[str, tuple[Encoder, Decoder]] = {}
        self._header = MAGIC + encode_int(3, TAG_ARRAY) + encode_int(schema.protocol_id)
        self._prefixes: dict[type[Message], bytes] = {}
        self._tables: dict[str, dict[int, type[Message]]] = {"request": {}, "reply": {}}
        for s in schema.structs:
            cls = self.classes[s.wire_name]
            if s.message_id is not None:
                self._prefixes[cls] = self._header + encode_int(s.message_id)
                self._tables[s.kind][s.message_id] = cls
        # Messages get an encoder of their own with the SDD header folded in.
        encoders = {
            cls: self._message_encoder(cls, prefix) for cls, prefix in self._prefixes.items()
        }
        self._struct_decoders = {
            cls: self._codec(cls.schema.wire_name)[1] for cls in self._prefixes
        }
        self.encode = self._encoder(encoders)
        self.decode_request = self._decoder("request")
        self.decode_reply = self._decoder("reply")

    @classmethod
    def load(cls, protocol: str) -> Codec:
        return cls(load_schema(protocol))

    def _message_encoder(self, cls: type[Message], prefix: bytes) -> Encoder:
        struct_encoder = self._codec(cls.schema.wire_name)[0]
        if not self._fast:
            return lambda m: prefix + struct_encoder(m)
        return fast_encoder(cls, self._enc_plan(cls), struct_encoder, prefix)

    def _codec(self, type_name: str) -> tuple[Encoder, Decoder]:
        if type_name not in self._codecs:
            self._codecs[type_name] = self._build(type_name)
        return self._codecs[type_name]

    def _build(self, type_name: str) -> tuple[Encoder, Decoder]:
        if type_name in INT_RANGES:
            return _int_codec(type_name)
        if type_name in _PRIMITIVES:
            return _PRIMITIVES[type_name]
        if type_name in self.enums:
            return _enum_codec(self.enums[type_name])
        if type_name == "array<double>":
            return _enc_double_array, _dec_double_array
        if type_name.startswith("array<"):
            element = type_name[6:-1]
            return _array_codec(element, *self._codec(element))
        cls = self.classes[type_name]
        plan = self._plan(cls)
        enc, dec = _struct_codec(cls, plan)
        if not self._fast:
            return enc, dec
        fast_plan_dec = [(f, tag, d) for f, tag, _, d in plan]
        return fast_encoder(cls, self._enc_plan(cls), enc), fast_decoder(cls, fast_plan_dec, dec)

    def _plan(self, cls: type[Message]) -> list[tuple[FieldSchema, bytes, Encoder, Decoder]]:
        return [(f, encode_int(f.tag), *self._codec(f.type)) for f in cls.schema.fields]

    def _enc_plan(self, cls: type[Message]) -> list[tuple[FieldSchema, bytes, Encoder]]:
        return [(f, tag, e) for f, tag, e, _ in self._plan(cls)]

    # -- public API ---------------------------------------------------------

    def _encoder(self, encoders: dict[type[Message], Encoder]) -> Callable[[Message], bytes]:
        get = encoders.get
        module = self.schema.module

        def encode(message: Message) -> bytes:
            """The wire bytes of ``message`` (without a frame length prefix).

            Raises :class:`LocalProtocolError` naming the message and field when a
            value has the wrong type, is out of range, or a required field is
            missing.
            """
            encoder = get(type(message))
            if encoder is None:
                raise LocalProtocolError(
                    f"cannot encode {_short(message)}: it is not a {module} message"
                )
            try:
                return encoder(message)
            except _Bad as e:
                where = message.schema.wire_name + "".join(e.path)
                raise LocalProtocolError(f"cannot encode {where}: {e.reason}") from None

        return encode

    def _decoder(self, kind: str) -> Callable[[bytes | bytearray | memoryview], Message]:
        by_length: dict[int, Layout] = {}
        entries: dict[bytes, _Entry] = {}
        for cls in self._tables[kind].values():
            prefix, learn = self._prefixes[cls], None
            if self._fast and has_fixed_layout(cls.schema):
                tags = [encode_int(f.tag) for f in cls.schema.fields]
                learn = Layouts(cls, prefix, tags, by_length).learn
            entries[prefix] = (cls, self._struct_decoders[cls], learn)
        # Header and message id together select the entry in one lookup.
        get, layout_for = entries.get, by_length.get
        h = len(self._header)
        decode_header = self._decode_header
        struct_decoders = self._struct_decoders
        module = self.schema.module

        def decode(data: bytes | bytearray | memoryview) -> Message:
            b = data if type(data) is bytes else _as_bytes(data)
            layout = layout_for(len(b))
            if layout is not None:
                known = layout(b)
                if known is not None:
                    return known
            cls = learn = None
            message: Message  # what a struct decoder of a message class returns
            try:
                key = b[: h + 1 + (b[h] & 0x0F)]
                entry = get(key)
                if entry is None:
                    cls, p = decode_header(b, kind)
                    message, p = struct_decoders[cls](b, p)
                else:
                    cls, decoder, learn = entry
                    message, p = decoder(b, len(key))
            except _Bad as e:
                where = cls.schema.wire_name if cls else f"{module} {kind}"
                raise DecodeError(f"bad {where}{''.join(e.path)}: {e.reason}", e.offset) from None
            except IndexError:
                where = cls.schema.wire_name if cls else f"{module} {kind}"
                raise DecodeError(
                    f"bad {where}: the data ends too early (at offset {len(b)})", len(b)
                ) from None
            if p != len(b):
                raise DecodeError(
                    f"bad {cls.schema.wire_name}: {len(b) - p} trailing byte(s) after the "
                    f"message at offset {p}",
                    p,
                )
            if learn is not None:
                learn(b)
            return message

        decode.__doc__ = f"Decode one {kind} message; raises only :class:`DecodeError`."
        return decode

    def _decode_header(self, b: bytes, kind: str) -> tuple[type[Message], int]:
        if not b.startswith(self._header):
            return self._bad_header(b)
        p = len(self._header)
        message_id, p = _read_varint(b, p, TAG_INT, "a message id (tag 0x1n)")
        cls = self._tables[kind].get(message_id)
        if cls is None:
            other = "reply" if kind == "request" else "request"
            hint = (
                f" (that id is a {other}; decode it with decode_{other})"
                if message_id in self._tables[other]
                else ""
            )
            where = len(self._header)
            raise _Bad(f"unknown {kind} message id {message_id} at offset {where}{hint}", where)
        return cls, p

    def _bad_header(self, b: bytes) -> tuple[type[Message], int]:
        if not b.startswith(MAGIC):
            raise _Bad(f"expected the SDD v2 magic 53444402, found {b[:4].hex() or 'no data'}", 0)
        count, p = _read_varint(b, 4, TAG_ARRAY, "the message array (tag 0x5n)")
        if count != 3:
            raise _Bad(f"expected a 3-value message array, found {count} values", 4)
        pid, _ = _read_varint(b, p, TAG_INT, "a protocol id (tag 0x1n)")
        raise _Bad(
            f"protocol id {pid} at offset {p} is not {self.schema.module}'s "
            f"({self.schema.protocol_id})",
            p,
        )


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"expected bytes, bytearray or memoryview, got {type(data).__name__}")


_PRIMITIVES: dict[str, tuple[Encoder, Decoder]] = {
    "double": (_enc_double, _dec_double),
    "bool": (_enc_bool, _dec_bool),
    "string": (_enc_string, _dec_string),
    "binary": (_enc_binary, _dec_binary),
}
