"""Every golden vector of ../shared/vectors decodes to its fields and encodes to its bytes."""

from __future__ import annotations

import pytest

from acnet_proto.pc import daqdata, dpm
from tests.support.vectors import load_vectors, message_from_json, to_json

CASES = [
    pytest.param(module, vector, id=f"{module.__name__.rsplit('.', 1)[1]}-{i}-{vector['message']}")
    for module in (dpm, daqdata)
    for i, vector in enumerate(load_vectors(module.__name__.rsplit(".", 1)[1]))
]


def _decode(module, vector):
    decoder = module.decode_request if vector["kind"] == "request" else module.decode_reply
    return decoder(bytes.fromhex(vector["hex"]))


@pytest.mark.parametrize(("module", "vector"), CASES)
def test_vector_decodes_to_its_fields(module, vector):
    message = _decode(module, vector)
    assert message.schema.wire_name == vector["message"]
    assert to_json(message) == vector["fields"]


@pytest.mark.parametrize(("module", "vector"), CASES)
def test_vector_encodes_to_its_bytes(module, vector):
    cls = module.codec.classes[vector["message"]]
    message = message_from_json(module.codec, cls, vector["fields"])
    assert module.encode(message).hex() == vector["hex"]


@pytest.mark.parametrize(("module", "vector"), CASES)
def test_decoded_vector_equals_constructed_message(module, vector):
    cls = module.codec.classes[vector["message"]]
    assert _decode(module, vector) == message_from_json(module.codec, cls, vector["fields"])
