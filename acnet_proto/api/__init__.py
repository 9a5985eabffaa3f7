"""The user API every backend shares: the backend protocol, devices, auth, configuration."""
