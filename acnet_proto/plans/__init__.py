"""Plans: what to send for a read, a stream or a write, and how replies fold into results."""
