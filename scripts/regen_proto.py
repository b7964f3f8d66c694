"""Regenerate backends/protocol/job_pb2.py(i) and job_pb2_grpc.py from job.proto (needs grpcio-tools).

Run from anywhere: `.venv/bin/python scripts/regen_proto.py`. The generated files are committed.

The messages are built in a private descriptor pool, not protobuf's default one: the official SDK registers
the same `mirrorneuron.job.v1` symbols there from its own job.proto, and a process that imports both (our
tests, a daemon sharing a venv with the `mn` CLI) would otherwise fail with "duplicate symbol". The wire
format only depends on the method paths and field numbers, so the two sets of classes interoperate.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = Path("backends/protocol/job.proto")
DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
PRIVATE_POOL = "_descriptor_pool.DescriptorPool().AddSerializedFile("


def main() -> int:
    outputs = [f"--{kind}_out={ROOT}" for kind in ("python", "pyi", "grpc_python")]
    args = ["protoc", f"-I{ROOT}", *outputs, str(ROOT / PROTO)]
    if protoc.main(args) != 0:
        print("protoc failed", file=sys.stderr)
        return 1
    generated = ROOT / PROTO.with_name("job_pb2.py")
    text = generated.read_text()
    if text.count(DEFAULT_POOL) != 1:
        print(f"{generated}: expected one {DEFAULT_POOL!r}; the generator changed", file=sys.stderr)
        return 1
    generated.write_text(text.replace(DEFAULT_POOL, PRIVATE_POOL))
    print(f"regenerated {PROTO.parent}/job_pb2.py, job_pb2.pyi and job_pb2_grpc.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
