"""Signed placement orders (backends/protocol/signing.py) and the key options of `controller run` and `agent worker`.

A signature verifies only for the exact placement, namespace and node it was made for, under the same key; the
daemons refuse to start without a key unless told `--insecure-orders`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from backends.protocol import wire
from backends.protocol.signing import SIGNATURE, BadOrder, OrderKey, OrderKeyError, unverified
from mn_deploy.live_cli import mn_deploy_command
from mn_deploy_core.ports import Placement, RestartPolicy, Role
from tests.live.conftest import ORDER_KEY, order_key_file

NAMESPACE = "mn_test"
NODE = "n1"

names = st.text(min_size=1, max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
placements = st.builds(
    Placement,
    instance_id=names,
    agent_id=names,
    job_id=names,
    deployment_key=names,
    deployment_id=names,
    deployment_version=names,
    role=st.sampled_from(Role),
    phase=names,
    spec_digest=names,
    node=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    checks=st.lists(names, max_size=3).map(tuple),
    restart=st.builds(RestartPolicy, attempts=st.integers(0, 10), delay_ms=st.integers(0, 10_000)),
    bundle=st.none() | names,
    batch=st.booleans(),
)
FIELDS = [f.name for f in fields(Placement)]


def signed(p: Placement, *, node: str = NODE, namespace: str = NAMESPACE, key: OrderKey = ORDER_KEY) -> str:
    return key.sign(namespace, node, wire.encode_placement(p))


@given(placements)
def test_a_signed_order_verifies_and_decodes_to_its_placement(p: Placement) -> None:
    assert wire.decode_placement(ORDER_KEY.verify(NAMESPACE, NODE, signed(p))) == p


@given(placements, placements, st.sampled_from(FIELDS))
def test_any_change_of_a_field_breaks_the_signature(p: Placement, other: Placement, name: str) -> None:
    changed = replace(p, **{name: getattr(other, name)})
    assume(wire.encode_placement(changed) != wire.encode_placement(p))
    forged = json.loads(wire.encode_placement(changed))
    forged[SIGNATURE] = json.loads(signed(p))[SIGNATURE]

    with pytest.raises(BadOrder, match="does not verify"):
        ORDER_KEY.verify(NAMESPACE, NODE, json.dumps(forged))


@given(placements, names, names)
def test_an_order_signed_for_another_node_or_namespace_does_not_verify(p: Placement, node: str, namespace: str) -> None:
    assume(node != NODE and namespace != NAMESPACE)
    for order in (signed(p, node=node), signed(p, namespace=namespace)):
        with pytest.raises(BadOrder, match="does not verify"):
            ORDER_KEY.verify(NAMESPACE, NODE, order)


@given(placements)
def test_an_order_signed_with_another_key_does_not_verify(p: Placement) -> None:
    with pytest.raises(BadOrder, match="does not verify"):
        ORDER_KEY.verify(NAMESPACE, NODE, signed(p, key=OrderKey(b"x" * 32)))


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ("{}", "not signed"),
        ('{"instance_id": "i1", "signature": 7}', "not signed"),
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_an_unsigned_or_malformed_order_is_refused_with_one_line(order: str, message: str) -> None:
    with pytest.raises(BadOrder, match=message) as raised:
        ORDER_KEY.verify(NAMESPACE, NODE, order)
    assert "\n" not in str(raised.value)


def test_unverified_only_takes_the_signature_off() -> None:
    p = Placement("i1", "web", "job_1", "k", "dep_k_1", "1", Role.PRIMARY, "initial", "d", {}, (), RestartPolicy())
    assert unverified(signed(p)) == wire.encode_placement(p)


def test_the_key_is_never_shown() -> None:
    assert "test order key" not in repr(ORDER_KEY)


# ---- key files and the daemons' options ------------------------------------------------------------------------


def test_a_key_file_is_read_without_surrounding_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"  " + ORDER_KEY.secret + b"\n")
    path.chmod(0o600)
    assert OrderKey.load(path) == ORDER_KEY


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o620, 0o604])
def test_a_key_file_others_may_read_or_write_is_refused_as_a_token_file_is(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key"
    path.write_bytes(ORDER_KEY.secret)
    path.chmod(mode)
    with pytest.raises(OrderKeyError, match=rf"^order key file {path} may be read by others \(mode {mode:o}\): chmod"):
        OrderKey.load(path)


@pytest.mark.parametrize(("content", "message"), [(None, "No such file"), (b"short\n", "at least 32 characters")])
def test_a_missing_or_short_key_file_is_refused_naming_it(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(OrderKeyError, match=f"order key file {path}: .*{message}"):
        OrderKey.load(path)


COMMANDS = {
    "controller run": ["controller", "run", "--redis", "redis://127.0.0.1:1/0", "--grpc", "127.0.0.1:1"],
    "agent worker": ["agent", "worker", "--redis", "redis://127.0.0.1:1/0", "--node", "n1"],
}


def run(command: str, extra: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "MN_ORDER_KEY_FILE"}
    return subprocess.run(
        [*mn_deploy_command(), *COMMANDS[command], *extra],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("extra", "with_env", "message"),
    [
        ([], False, "error: no order key: give --order-key-file PATH (or set MN_ORDER_KEY_FILE), or --insecure-orders"),
        (["--insecure-orders"], True, "error: --insecure-orders and an order key file ("),
        (["--order-key-file", "short-key"], False, "error: order key file short-key: needs at least 32 characters"),
    ],
)
def test_the_daemons_refuse_to_start_without_a_usable_key_in_one_line(
    command: str, extra: list[str], with_env: bool, message: str, tmp_path: Path
) -> None:
    """Before anything else: no Redis is reached (none listens on port 1)."""
    (tmp_path / "short-key").write_text("short\n")
    env: dict[str, Any] = {"MN_ORDER_KEY_FILE": str(order_key_file(tmp_path))} if with_env else {}

    done = run(command, extra, env, tmp_path)

    assert done.returncode == 2, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(message), done.stderr
    assert ORDER_KEY.secret.decode() not in done.stderr + done.stdout
