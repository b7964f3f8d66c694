"""`mn-deploy deployment plan` as a user runs it, on a real redis-server: the plan on stdout, a refusal in one line
on stderr with its exit code, and the deploy's own options."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import redis
from click.testing import CliRunner, Result

from backends.loopback import free_port
from backends.redis import RedisStore
from backends.redis.server import LocalRedisServer
from mn_deploy.cli import main
from tests.scripted import World, service_manifest

HELLO = "examples/bundles/hello/v1.json"


def cli(*args: str, url: str, env: Mapping[str, str | None] | None = None) -> Result:
    environment = {"MN_CLI_OUTPUT": "plain", "MN_REDIS_URL": url, **(env or {})}
    return CliRunner().invoke(main, ["deployment", "plan", *args], env=environment)


def test_a_new_key_is_planned_as_its_initial_deploy(redis_server: LocalRedisServer, real_redis: redis.Redis) -> None:
    result = cli(HELLO, url=redis_server.url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Route: initial" in lines
    assert "Deployment: dep_hello_1 (new)" in lines
    assert lines[-2:] == [
        "# Step: step | role | batch | agents | then",
        "Step: 1 | primary | 1/1 | web-0, web-1 | successful",
    ]
    assert list(real_redis.scan_iter()) == []  # nothing written


def test_json_is_one_document_with_the_flags_in_the_policy(
    redis_server: LocalRedisServer, real_redis: redis.Redis
) -> None:
    result = cli(HELLO, "--json", "--max-parallel", "3", "--key", "other", url=redis_server.url)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert (plan["deployment_key"], plan["route"], plan["policy"]["max_parallel"]) == ("other", "initial", 3)


def test_a_deploy_the_core_refuses_is_one_line_and_exit_2(
    redis_server: LocalRedisServer, real_redis: redis.Redis
) -> None:
    result = cli(HELLO, "--strategy", "progressive", url=redis_server.url)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error: policies.update.steps is required for progressive deployments\n"


def test_a_missing_bundle_is_refused_before_redis_is_asked() -> None:
    result = cli("no/such/bundle", url=f"redis://127.0.0.1:{free_port()}/0")
    assert (result.exit_code, result.stderr) == (2, "error: Bundle not found: no/such/bundle\n")


def test_a_redis_that_does_not_answer_is_exit_3() -> None:
    result = cli(HELLO, url=f"redis://127.0.0.1:{free_port()}/0")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: Redis at redis://127.0.0.1:") and result.stderr.count("\n") == 1


def test_plan_takes_the_deploy_commands_bundle_and_policy_options() -> None:
    deploy = {p.name for p in main.commands["deployment"].commands["deploy"].params}  # type: ignore[attr-defined]
    plan = {p.name for p in main.commands["deployment"].commands["plan"].params}  # type: ignore[attr-defined]
    only_deploy = {"wait", "interval", "grace", "timeout", "target", "tls_ca"}
    assert deploy - only_deploy == plan - {"redis_url", "runs", "seed", "workers"}


def test_a_key_without_recorded_history_cannot_be_predicted(
    redis_server: LocalRedisServer, real_redis: redis.Redis
) -> None:
    result = cli(HELLO, "--predict", "5", url=redis_server.url)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error: hello has no recorded history: a prediction needs at least one recorded rollout\n"


def test_rollouts_stored_without_their_facts_cannot_be_predicted(
    redis_server: LocalRedisServer, real_redis: redis.Redis, tmp_path: Path
) -> None:
    """Deployments stored with no inputs recorded (before recording began): nothing to calibrate from."""
    world = World(store=RedisStore(real_redis))  # type: ignore[arg-type]  # any Store will do
    world.deploy(service_manifest(count=2))
    world.converge()
    bundle = tmp_path / "v2.json"
    bundle.write_text(json.dumps(service_manifest("agent:2", count=2)))

    result = cli(str(bundle), "--predict", "5", url=redis_server.url)

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: no start of agent-api version 1's instances was recorded (its rollouts predate recording?): "
        "nothing to calibrate from\n"
    )


def test_a_progressive_update_is_read_from_redis_and_shows_every_step(
    redis_server: LocalRedisServer, real_redis: redis.Redis, tmp_path: Path
) -> None:
    """Version 1 stable in Redis; version 2's steps: a canary, a 10 % step the canary already reached, the rest."""
    world = World(store=RedisStore(real_redis))  # type: ignore[arg-type]  # any Store will do
    world.deploy(service_manifest(count=4))
    world.converge()
    steps = [{"canary": 1}, {"percent": 10}, {"percent": 100}]
    bundle = tmp_path / "v2.json"
    bundle.write_text(
        json.dumps(service_manifest("agent:2", count=4, update={"strategy": "progressive", "steps": steps}))
    )

    result = cli(str(bundle), "--max-parallel", "2", url=redis_server.url)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Route: progressive (agent level)" in lines
    assert "Deployment: dep_agent-api_2 (new)" in lines
    assert [line for line in lines if line.startswith("Step: ")] == [
        "Step: 1 | canary | 1/1 | worker-0 | wait for promote",
        "Step: 2 | primary | 1/1 | - | wait for promote",
        "Step: 3 | primary | 1/2 | worker-1, worker-2 | -",
        "Step: 3 | primary | 2/2 | worker-3 | successful",
    ]
