"""The private RabbitMQ node the fixtures start lives in the package (``acnet-proto sim --dmq``
starts one too)."""

from acnet_proto.adapters.sim.rabbitmq import RabbitMQ, start_rabbitmq

__all__ = ["RabbitMQ", "start_rabbitmq"]
