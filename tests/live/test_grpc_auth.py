"""The gRPC door: every method of both services refuses a call without an accepted token before it runs, with a
fixed answer and a log line that hold nothing of the token; a read-only token reads and changes nothing; tokens
come from files only their owner can read; TLS with certificates of a throwaway CA."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import redis

from backends.live.controller import serve
from backends.live.controller.auth import READ_ONLY, UNAUTHENTICATED, TokenError, Tokens, controller_tokens
from backends.live.controller.bundles import MemoryBundleStore
from backends.live.controller.server import Door, ServerTls
from backends.loopback import free_port
from backends.protocol import cluster_pb2, job_pb2
from backends.protocol.credentials import TOKEN_ENV, TOKEN_FILE_ENV, bearer
from backends.redis.registry import RedisRegistry
from tests.scripted import World, service_manifest
from tests.tls import throwaway_ca

TOKEN = "a-full-token-0123456789abcdef"
READER = "a-read-token-0123456789abcdef"
JOBS = job_pb2.DESCRIPTOR.services_by_name["JobService"]
CLUSTER = cluster_pb2.DESCRIPTOR.services_by_name["ClusterService"]
METHODS = [f"/{service.full_name}/{method.name}" for service in (JOBS, CLUSTER) for method in service.methods]
DEPLOY = f"/{JOBS.full_name}/DeployJob"
LIST = f"/{JOBS.full_name}/ListDeployments"


@dataclass
class Guarded:
    """A real server of a controller behind the door, and a channel to it."""

    world: World
    channel: grpc.Channel

    def call(self, method: str, request: bytes = b"", token: str | None = None) -> bytes:
        """`method` with raw bytes as its request (any bytes: a refused request is never decoded)."""
        stub = self.channel.unary_unary(method)  # no serializers: the request goes as it is
        return stub(request, timeout=10, metadata=bearer(token) if token is not None else None)

    def deployments(self) -> int:
        return len(self.world.controller.list())


@pytest.fixture
def guarded(real_redis: redis.Redis) -> Iterator[Guarded]:
    world = World()
    target = f"127.0.0.1:{free_port()}"
    door = Door(Tokens((TOKEN.encode(),), (READER.encode(),)))
    server = serve(
        world.controller,
        target,
        lock=threading.Lock(),
        bundles=MemoryBundleStore(),
        clock=world.clock,
        registry=RedisRegistry(real_redis),
        door=door,
    )
    with grpc.insecure_channel(target) as channel:
        yield Guarded(world, channel)
    server.stop(None).wait()


def deploy_request() -> bytes:
    manifest = json.dumps(service_manifest())
    return job_pb2.DeployJobRequest(manifest_json=manifest, version=1).SerializeToString()


@pytest.mark.parametrize("token", [None, "", "a-wrong-token-0123456789abcdef", TOKEN + "x", TOKEN[:-1]])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_refuses_a_call_without_the_token_before_it_runs(
    guarded: Guarded, method: str, token: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    request = deploy_request() if method == DEPLOY else b"\xff not a message"
    with caplog.at_level(logging.WARNING), pytest.raises(grpc.RpcError) as refused:
        guarded.call(method, request, token)

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.details() == UNAUTHENTICATED
    assert guarded.deployments() == 0
    assert [r.getMessage() for r in caplog.records] == [f"refused {method}: {UNAUTHENTICATED}"]


def test_the_token_lets_a_call_in_with_bearer_in_any_case(guarded: Guarded) -> None:
    guarded.call(DEPLOY, deploy_request(), TOKEN)
    guarded.channel.unary_unary(LIST)(b"", timeout=10, metadata=(("authorization", f"bEaReR {TOKEN}"),))

    assert guarded.deployments() == 1


def test_a_read_only_token_reads_and_changes_nothing(guarded: Guarded) -> None:
    guarded.call(LIST, b"", READER)
    guarded.call(f"/{CLUSTER.full_name}/ListServices", b"", READER)

    with pytest.raises(grpc.RpcError) as refused:
        guarded.call(DEPLOY, deploy_request(), READER)
    assert (refused.value.code(), refused.value.details()) == (grpc.StatusCode.PERMISSION_DENIED, READ_ONLY)
    assert guarded.deployments() == 0


def private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_tokens_come_from_the_option_then_the_variable_then_its_file(tmp_path: Path) -> None:
    option = private(tmp_path / "option", f"# rotating: the old and the new\n{TOKEN}\n\n{READER}x\n")
    variable_file = private(tmp_path / "variable", "token-of-the-file-0123456789\n")
    env = {TOKEN_ENV: "token-of-the-variable-0123", TOKEN_FILE_ENV: str(variable_file)}

    assert controller_tokens(option, None, env).full == (TOKEN.encode(), f"{READER}x".encode())
    assert controller_tokens(None, None, env).full == (b"token-of-the-variable-0123",)
    assert controller_tokens(None, None, {TOKEN_FILE_ENV: str(variable_file)}).full == (
        b"token-of-the-file-0123456789",
    )
    assert not controller_tokens(None, None, {})


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        (TOKEN, 0o644, "may be read by others (mode 644): chmod 600 it"),
        (TOKEN, 0o620, "may be read by others (mode 620): chmod 600 it"),
        ("# nothing\n\n", 0o600, "holds no token"),
        ("tiny-tok", 0o600, "is shorter than 16 characters"),
        ("has a space in it, 0123456789", 0o600, "must be printable ASCII without spaces"),
        ("ünïcode-token-0123456789", 0o600, "must be printable ASCII without spaces"),
    ],
)
def test_a_token_file_others_may_read_or_without_a_good_token_is_refused_in_one_line(
    tmp_path: Path, text: str, mode: int, message: str
) -> None:
    path = private(tmp_path / "tokens", text + "\n", mode)

    with pytest.raises(TokenError) as refused:
        controller_tokens(path, None, {})
    assert message in str(refused.value)
    said = str(refused.value).replace(str(path), "PATH")  # the path may hold the test's name
    assert "\n" not in said and text.strip() not in said


def test_a_read_only_token_alone_or_equal_to_a_full_one_is_refused(tmp_path: Path) -> None:
    reader = private(tmp_path / "reader", READER)

    with pytest.raises(TokenError, match="needs a full one too"):
        controller_tokens(None, reader, {})
    with pytest.raises(TokenError, match="both read-only and full"):
        controller_tokens(None, reader, {TOKEN_ENV: READER})


def test_tokens_never_show_in_a_repr() -> None:
    tokens = Tokens((TOKEN.encode(),), (READER.encode(),))

    assert TOKEN not in repr(Door(tokens)) and READER not in repr(Door(tokens))


def test_a_tls_server_answers_a_client_trusting_its_ca_and_no_other(tmp_path: Path) -> None:
    certificates = throwaway_ca(tmp_path)
    world, target = World(), f"127.0.0.1:{free_port()}"
    door = Door(Tokens((TOKEN.encode(),)), ServerTls.load(certificates.cert, certificates.key))
    server = serve(world.controller, target, lock=threading.Lock(), clock=world.clock, door=door)
    try:
        trusted = grpc.ssl_channel_credentials(root_certificates=certificates.ca.read_bytes())
        with grpc.secure_channel(target, trusted) as channel:
            channel.unary_unary(LIST)(b"", timeout=10, metadata=bearer(TOKEN))
        other = throwaway_ca(tmp_path / "other", "other")
        stranger = grpc.ssl_channel_credentials(root_certificates=other.ca.read_bytes())
        for channel in (grpc.insecure_channel(target), grpc.secure_channel(target, stranger)):
            with channel, pytest.raises(grpc.RpcError) as refused:
                channel.unary_unary(LIST)(b"", timeout=5, metadata=bearer(TOKEN))
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None).wait()
