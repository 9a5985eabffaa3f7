"""The simulated servers (DPM/TCP, DAQ gRPC, DevDB, ACL, DMQ) and the throw-away KDC."""
