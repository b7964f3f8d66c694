"""Regenerate the Python code of backends/protocol/job.proto and cluster.proto (`<name>_pb2.py`, `<name>_pb2.pyi`
and `<name>_pb2_grpc.py` each; needs grpcio-tools).

The generator is pinned to grpcio-tools 1.62.3 (protoc of protobuf 4.25): its code runs on every protobuf runtime
from 4.25.1 to the newest (7.x) and needs no particular grpcio, where a newer generator's code demands a runtime
at least as new as itself (`ValidateProtobufRuntimeVersion`) and a grpcio as new as its own. So the `live` extra
can ask for `protobuf>=4.25.1` and `grpcio>=1.62` (the floors .ci/run tests). Run it in a venv of its own, from
anywhere: `python3 -m venv /tmp/protoc && /tmp/protoc/bin/pip install grpcio-tools==1.62.3 &&
/tmp/protoc/bin/python scripts/regen_proto.py`. The generated files are committed.

The messages are built in a private descriptor pool, not protobuf's default one: the official SDK registers
the same `mirrorneuron.job.v1` and `mirrorneuron.cluster.v1` symbols there from its own protos, and a process that
imports both (our tests, a daemon sharing a venv with the `mn` CLI) would otherwise fail with "duplicate symbol".
The wire format only depends on the method paths and field numbers, so the two sets of classes interoperate.
Each proto gets a pool of its own: neither imports the other.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from grpc_tools import protoc

GENERATOR = "1.62.3"  # grpcio-tools: see above for why this one
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
    try:
        found = version("grpcio-tools")
    except PackageNotFoundError:
        found = "none"
    if found != GENERATOR:
        print(
            f"error: needs grpcio-tools=={GENERATOR} (found {found}): pip install grpcio-tools=={GENERATOR}",
            file=sys.stderr,
        )
        return 2
    for proto in PROTOS:
        if (error := regenerate(proto)) is not None:
            print(error, file=sys.stderr)
            return 1
        stem = proto.with_suffix("")
        print(f"regenerated {stem}_pb2.py, {stem}_pb2.pyi and {stem}_pb2_grpc.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
