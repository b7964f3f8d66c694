"""The agent worker: runs a node's placements as subprocesses, probes their checks, reports facts, renews
their discovery entries."""
