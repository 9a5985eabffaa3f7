"""The pure halves of the other central services: DAQ over gRPC, DevDB, DMQ and ACL."""
