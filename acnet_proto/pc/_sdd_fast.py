"""Straight-line encoders and decoders generated from a struct's schema.

The generic closures of :mod:`acnet_proto.pc.sdd` are the reference: they check
everything and say exactly what is wrong. The functions made here handle the
common, well-formed case several times faster, and on *any* surprise hand the
whole struct back to the reference (``slow``), which then either succeeds or
raises its precise error. So they can never change an outcome, only its speed
— the test suite checks both paths agree on every vector and on random input.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from acnet_proto.pc._message import Message
from acnet_proto.pc._schema import INT_RANGES, FieldSchema

__all__ = ["fast_decoder", "fast_encoder"]

_INLINE = {"double", "bool", "string", "binary", *INT_RANGES}


_COUNTS = tuple(bytes((0x51, c)) for c in range(128))


def _compile(name: str, lines: list[str], env: dict[str, Any]) -> Callable[..., Any]:
    source = "\n".join(lines)
    code = compile(source, f"<sdd fast path: {name}>", "exec")
    exec(code, env)
    function: Callable[..., Any] = env[name]  # defined by the source just run
    return function


# ------------------------------------------------------------------- decode


def _dec_int(i: int, type_name: str) -> list[str]:
    lo, hi = INT_RANGES[type_name]
    lines = [
        "t = b[p]",
        "if t == 0x11:",
        f"    v{i} = b[p + 1]",
        f"    if v{i} > 127: v{i} -= 256",
        "    p += 2",
        "elif 0x11 < t <= 0x18:",
        "    q = p + t - 0x0F",
        f"    v{i} = from_bytes(b[p + 1:q], 'big', signed=True)",
        "    p = q",
        "else:",
        "    return slow(b, p0)",
    ]
    if type_name != "int64":
        lines.append(f"if not {lo} <= v{i} <= {hi}: return slow(b, p0)")
    return lines


def _dec_sized(i: int, tag: int) -> list[str]:
    """Length-prefixed bytes into ``r``; negative or overlong sizes go slow."""
    return [
        "t = b[p]",
        f"if t == {tag | 1}:",
        "    n = b[p + 1]",
        "    q = p + 2",
        "    if n > 127: return slow(b, p0)",
        f"elif {tag | 1} < t <= {tag | 8}:",
        f"    q = p + t - {tag - 1}",
        "    n = from_bytes(b[p + 1:q], 'big', signed=True)",
        "    if n < 0: return slow(b, p0)",
        "else:",
        "    return slow(b, p0)",
        "p = q + n",
        "if p > blen: return slow(b, p0)",
    ]


def _dec_field(i: int, f: FieldSchema) -> list[str]:
    if f.type in INT_RANGES:
        return _dec_int(i, f.type)
    if f.type == "double":
        return [
            "if b[p] != 0x28: return slow(b, p0)",
            f"v{i} = unpack_double(b, p + 1)[0]",
            "p += 9",
        ]
    if f.type == "bool":
        return [
            "t = b[p]",
            f"if t == 0x71: v{i} = True",
            f"elif t == 0x70: v{i} = False",
            "else: return slow(b, p0)",
            "p += 1",
        ]
    if f.type == "string":
        # A non-UTF-8 string raises here and is decoded by the reference path.
        return [*_dec_sized(i, 0x40), f"v{i} = b[q:p].decode('utf-8')"]
    if f.type == "binary":
        return [*_dec_sized(i, 0x30), f"v{i} = b[q:p]"]
    return [f"v{i}, p = dec{i}(b, p)"]


def fast_decoder(
    cls: type[Message],
    plan: list[tuple[FieldSchema, bytes, Callable[..., Any]]],
    slow: Callable[[bytes, int], tuple[Message, int]],
) -> Callable[[bytes, int], tuple[Message, int]]:
    """A decoder for ``cls`` equivalent to ``slow`` on every input."""
    n_required = sum(not f.optional for f, _, _ in plan)
    env: dict[str, Any] = {
        "slow": slow,
        "cls": cls,
        "new": tuple.__new__,
        "from_bytes": int.from_bytes,
        "unpack_double": struct.Struct(">d").unpack_from,
    }
    body = [
        "if b[p0] != 0x51: return slow(b, p0)",
        "count = b[p0 + 1]",
        "p = p0 + 2",
        f"k = {n_required}",
    ]
    for i, (f, tag, dec) in enumerate(plan):
        env[f"tag{i}"] = tag
        env[f"dec{i}"] = dec
        take = [f"p += {len(tag)}", *_dec_field(i, f)]
        if f.optional:
            body += [f"if b.startswith(tag{i}, p):", *("    " + x for x in take), "    k += 1"]
            body += ["else:", f"    v{i} = None"]
        else:
            body += [f"if not b.startswith(tag{i}, p): return slow(b, p0)", *take]
    values = ", ".join(f"v{i}" for i in range(len(plan)))
    body += [
        "if count != 2 * k or p > blen: return slow(b, p0)",
        f"return new(cls, ({values}{',' if len(plan) == 1 else ''})), p",
    ]
    lines = ["def decode(b, p0):", "    blen = len(b)", "    try:"]
    lines += ["        " + x for x in body]
    lines += ["    except Exception:", "        return slow(b, p0)"]
    return _compile("decode", lines, env)


# ------------------------------------------------------------------- encode


def _enc_field(i: int, f: FieldSchema) -> tuple[list[str], str]:
    """Lines that encode field ``i`` into ``e{i}``, and the expression for its tag bytes.

    Integers put their width byte with the field tag (``t{i}``), to save a
    concatenation. The lines of an ``_INLINE`` type send ``None`` to ``slow``
    as a wrong type; for the others the caller guards against ``None``.
    """
    v, e = f"v{i}", f"e{i}"
    if f.type in INT_RANGES:
        lo, hi = INT_RANGES[f.type]
        return [
            f"if type({v}) is not int: return slow(m)",
            f"if -128 <= {v} < 128: t{i} = tag{i}; {e} = small[{v} + 128]",
            f"elif {lo} <= {v} <= {hi}:",
            f"    n = (({v} if {v} >= 0 else ~{v}).bit_length() >> 3) + 1",
            f"    t{i} = wide{i}[n]; {e} = {v}.to_bytes(n, 'big', signed=True)",
            "else: return slow(m)",
        ], f"t{i}"
    if f.type == "double":
        lines = [f"if type({v}) is not float: return slow(m)", f"{e} = pack_double(0x28, {v})"]
    elif f.type == "bool":
        lines = [
            f"if {v} is True: {e} = b'\\x71'",
            f"elif {v} is False: {e} = b'\\x70'",
            "else: return slow(m)",
        ]
    elif f.type == "string":
        lines = [
            f"if type({v}) is not str: return slow(m)",
            f"r = {v}.encode('utf-8')",
            f"{e} = encode_int(len(r), 0x40) + r",
        ]
    elif f.type == "binary":
        lines = [
            f"if type({v}) is not bytes: return slow(m)",
            f"{e} = encode_int(len({v}), 0x30) + {v}",
        ]
    else:
        lines = [f"{e} = enc{i}({v})"]
    return lines, f"tag{i}"


def fast_encoder(
    cls: type[Message],
    plan: list[tuple[FieldSchema, bytes, Callable[..., Any]]],
    slow: Callable[[Any], bytes],
    prefix: bytes = b"",
) -> Callable[[Any], bytes]:
    """An encoder for ``cls`` (with ``prefix`` prepended) equivalent to ``slow``."""
    from acnet_proto.pc.sdd import SMALL_INTS, encode_int  # sdd imports this module

    n_required = sum(not f.optional for f, _, _ in plan)
    env: dict[str, Any] = {
        "slow": lambda m: prefix + slow(m),
        "cls": cls,
        "small": SMALL_INTS,
        "counts": _COUNTS,
        "encode_int": encode_int,
        "pack_double": struct.Struct(">Bd").pack,
        "prefix": prefix,
        "head": prefix + _COUNTS[2 * n_required],
    }
    names = [f"v{i}" for i in range(len(plan))]
    body = ["if type(m) is not cls: return slow(m)"]
    if plan:
        body.append(f"{', '.join(names)}{',' if len(plan) == 1 else ''} = m")
    optional = any(f.optional for f, _, _ in plan)
    if optional:
        body.append(f"c = {2 * n_required}")
    parts = ["prefix", "counts[c]"] if optional else ["head"]
    for i, (f, tag, enc) in enumerate(plan):
        env[f"tag{i}"] = tag
        env[f"enc{i}"] = enc
        if f.type in INT_RANGES:
            env[f"wide{i}"] = [tag + bytes((0x10 | n,)) for n in range(9)]
        field, tag_part = _enc_field(i, f)
        if f.optional:
            body += [f"if v{i} is None:", f"    t{i} = e{i} = b''", "else:"]
            set_tag = [] if tag_part == f"t{i}" else [f"t{i} = {tag_part}"]
            body += ["    " + x for x in [*set_tag, "c += 2", *field]]
            parts += [f"t{i}", f"e{i}"]
        else:
            if f.type not in _INLINE:
                body.append(f"if v{i} is None: return slow(m)")
            body += field
            parts += [tag_part, f"e{i}"]
    body.append(f"return b''.join(({', '.join(parts)}))")
    lines = ["def encode(m):", "    try:"]
    lines += ["        " + x for x in body]
    lines += ["    except Exception:", "        return slow(m)"]
    return _compile("encode", lines, env)
