"""The simulator's pure model: devices, their replies, settings authorization, the DMQ service."""
