"""Regenerate the Python code of backends/protocol/job.proto and cluster.proto (`<name>_pb2.py`, `<name>_pb2.pyi`
and `<name>_pb2_grpc.py` each; needs grpcio-tools).

Run from anywhere: `.venv/bin/python scripts/regen_proto.py`. The generated files are committed.

The messages are built in a private descriptor pool, not protobuf's default one: the official SDK registers
the same `mirrorneuron.job.v1` and `mirrorneuron.cluster.v1` symbols there from its own protos, and a process that
imports both (our tests, a daemon sharing a venv with the `mn` CLI) would otherwise fail with "duplicate symbol".
The wire format only depends on the method paths and field numbers, so the two sets of classes interoperate.
Each proto gets a pool of its own: neither imports the other.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = (Path("backends/protocol/job.proto"), Path("backends/protocol/cluster.proto"))
DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
PRIVATE_POOL = "_descriptor_pool.DescriptorPool().AddSerializedFile("


def regenerate(proto: Path) -> str | None:
    """Generate `proto`'s code and move its messages to a private pool; the error, if any."""
    outputs = [f"--{kind}_out={ROOT}" for kind in ("python", "pyi", "grpc_python")]
    if protoc.main(["protoc", f"-I{ROOT}", *outputs, str(ROOT / proto)]) != 0:
        return f"protoc failed on {proto}"
    generated = ROOT / proto.with_name(f"{proto.stem}_pb2.py")
    text = generated.read_text()
    if text.count(DEFAULT_POOL) != 1:
        return f"{generated}: expected one {DEFAULT_POOL!r}; the generator changed"
    generated.write_text(text.replace(DEFAULT_POOL, PRIVATE_POOL))
    return None


def main() -> int:
    for proto in PROTOS:
        if (error := regenerate(proto)) is not None:
            print(error, file=sys.stderr)
            return 1
        stem = proto.with_suffix("")
        print(f"regenerated {stem}_pb2.py, {stem}_pb2.pyi and {stem}_pb2_grpc.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
