"""The DPM/TCP conversation as a sans-I/O state machine, in either role."""
