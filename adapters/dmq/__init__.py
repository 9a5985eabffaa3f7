"""DMQ, ACNET over AMQP (RabbitMQ), for threaded programs."""
