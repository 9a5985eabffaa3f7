"""DPM over gRPC (the DAQ service): threaded, asyncio and trio clients, and a server base."""
