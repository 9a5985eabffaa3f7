"""The RabbitMQ fixture is real: a topic exchange routes a DMQ-style message."""

import pytest

from tests.support.servers.rabbitmq import RabbitMQ

pika = pytest.importorskip("pika")

pytestmark = pytest.mark.integration


def test_topic_roundtrip_with_headers(rabbitmq: RabbitMQ) -> None:
    conn = pika.BlockingConnection(rabbitmq.connection_parameters())
    try:
        ch = conn.channel()
        ch.exchange_declare("acnet-test", exchange_type="topic", auto_delete=True)
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queue, "acnet-test", routing_key="R.#")

        body = b"\x00\x01binary\xff"
        headers = {"request-id": "42", "host": "clx01", "seq": 7}
        ch.basic_publish(
            "acnet-test",
            "R.M:OUTTMP@p,1000",
            body,
            pika.BasicProperties(headers=headers, content_type="application/octet-stream"),
        )
        method, props, got = next(ch.consume(queue, auto_ack=True, inactivity_timeout=10))
        assert method is not None, "message not delivered within 10 s"
        assert method.routing_key == "R.M:OUTTMP@p,1000"
        assert got == body
        assert props.headers == headers
        ch.cancel()
    finally:
        conn.close()
