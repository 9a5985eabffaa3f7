"""DPM over TCP: sync, threaded, asyncio and trio clients over the one engine."""
