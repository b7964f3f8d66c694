"""The live world: the gRPC API MirrorNeuron's CLI and SDK call, payload bundles, the daemon and its workers."""
