"""The wire the CLI, the controller and the workers share: MirrorNeuron's gRPC messages (job.proto and its
generated stubs; regenerate them with scripts/regen_proto.py, never edit them by hand), the JSON envelopes on
Redis streams, size limits and the payload-bundle rules. Nothing here runs a server."""
