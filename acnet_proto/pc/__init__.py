"""One module per PC protocol: :mod:`.dpm` (DPM over TCP) and :mod:`.daqdata` (DMQ)."""
