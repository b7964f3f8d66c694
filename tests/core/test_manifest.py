"""R1/R3: manifest loading, key resolution, runtime ids, digests, topology and changed agents.

Reference: SEMANTICS.md §1-3, reference/mirrorneuron-deployments.md §2, §7 and §18 scenarios 2, 3 and 6.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from mn_deploy_core.errors import DeploymentError, InvalidManifestError
from mn_deploy_core.limits import MAX_AGENTS, MAX_DEPTH, MAX_NAME, parse_json
from mn_deploy_core.manifest import (
    AgentSpec,
    Manifest,
    canonical_json,
    changed_agents,
    digest,
    expand_agents,
    load_manifest,
    resolve_key,
    runtime_order,
    topology_signature,
)
from tests.awkward import depth, nested

P = "policies.update"


def doc(**extra: Any) -> dict[str, Any]:
    """A valid three-node service manifest; keyword arguments replace top-level sections."""
    document: dict[str, Any] = {
        "graph_id": "graph-1",
        "job_name": "agent-api-job",
        "job_type": "service",
        "deployment": {"key": "agent-api"},
        "policies": {"update": {"strategy": "rolling", "max_parallel": 2}},
        "nodes": [
            {"node_id": "router", "agent_type": "router", "config": {"mode": "round_robin"}},
            {
                "node_id": "worker",
                "agent_type": "llm_worker",
                "count": 3,
                "config": {"model": "small"},
                "services": [{"name": "worker-http", "checks": [{"type": "http", "name": "live"}]}],
            },
            {"node_id": "sink", "agent_type": "collector", "config": {}},
        ],
        "edges": [
            {"from_node": "router", "to_node": "worker", "message_type": "task", "routing_mode": "fanout"},
            {"from_node": "worker", "to_node": "sink", "message_type": "result", "routing_mode": "direct"},
        ],
        "entrypoints": ["router"],
    }
    document.update(extra)
    return document


def node(document: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in document["nodes"] if n["node_id"] == node_id)
    return found


def problems_of(document: Any, **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(InvalidManifestError) as info:
        load_manifest(document, **kwargs)
    return info.value.problems


# --- R1: validation collects every problem ---------------------------------------------------------------


def test_r1_valid_manifest_loads() -> None:
    manifest = load_manifest(doc())
    assert isinstance(manifest, Manifest)
    assert manifest.key == "agent-api"
    assert manifest.job_type == "service"
    assert manifest.long_running
    assert manifest.agent_ids() == ("router", "sink", "worker-0", "worker-1", "worker-2")
    assert manifest.policy.max_parallel == 2


def test_r1_scenario_3_three_policy_errors_collected() -> None:
    document = doc(policies={"update": {"strategy": "teleport", "max_parallel": -1, "auto_promote": "yes"}})
    with pytest.raises(InvalidManifestError) as info:
        load_manifest(document)
    assert info.value.problems == (
        f'{P}.strategy has unsupported value "teleport"',
        f"{P}.max_parallel must be a non-negative integer",
        f"{P}.auto_promote must be a boolean",
    )
    assert isinstance(info.value, DeploymentError)
    assert info.value.message == "; ".join(info.value.problems)
    assert str(info.value) == info.value.message


def test_r1_errors_from_every_section_reported_together() -> None:
    document = doc(
        deployment={"key": ""},
        job_name="x",
        job_type="",
        policies={"update": {"canary": -1}},
        entrypoints=["ghost"],
    )
    node(document, "sink")["agent_type"] = ""
    document["edges"].append({"from_node": "sink", "to_node": "nowhere"})
    assert problems_of(document) == (
        "deployment.key must be a string",
        "job_type must be a non-blank string",
        f"{P}.canary must be a non-negative integer",
        'node "sink": agent_type must be a non-blank string',
        'edge 2 (sink -> nowhere): to_node "nowhere" is not a node',
        'entrypoints[0]: "ghost" is not a node',
    )


def test_r1_bad_manifest_left_untouched() -> None:
    document = doc(policies={"update": {"strategy": "teleport"}})
    before = copy.deepcopy(document)
    problems_of(document)
    assert document == before


def test_r1_good_manifest_left_untouched() -> None:
    document = doc()
    before = copy.deepcopy(document)
    load_manifest(document, overrides={"auto_revert": True}, key="other")
    assert document == before


@pytest.mark.parametrize("document", [None, [], "nodes", 3, 1.5, True])
def test_r1_manifest_must_be_an_object(document: Any) -> None:
    assert problems_of(document) == ("manifest must be a JSON object",)


@pytest.mark.parametrize("nodes", [None, [], {}, "router"])
def test_r1_nodes_must_be_a_non_empty_list(nodes: Any) -> None:
    document = doc(nodes=nodes, edges=[], entrypoints=[])
    assert problems_of(document) == ("nodes must be a non-empty list",)


def test_r1_missing_nodes_reported() -> None:
    document = doc(edges=[], entrypoints=[])
    del document["nodes"]
    assert problems_of(document) == ("nodes must be a non-empty list",)


def test_r1_node_errors_name_the_node() -> None:
    nodes: list[Any] = [
        {"node_id": "a", "agent_type": "t"},
        {"node_id": "a", "agent_type": "t"},
        {"agent_type": "t"},
        {"node_id": "  ", "agent_type": "t"},
        "not-a-node",
        {"node_id": "b"},
        {"node_id": "c", "agent_type": "t", "count": 0},
        {"node_id": "d", "agent_type": "t", "count": True},
        {"node_id": "e", "agent_type": "t", "count": "2"},
        {"node_id": "f", "agent_type": "t", "config": [], "resources": "big", "constraints": 1},
    ]
    assert problems_of(doc(nodes=nodes, edges=[], entrypoints=[])) == (
        'node "a": duplicate node_id',
        "nodes[2].node_id must be a non-blank string",
        "nodes[3].node_id must be a non-blank string",
        "nodes[4] must be an object",
        'node "b": agent_type must be a non-blank string',
        'node "c": count must be a positive integer',
        'node "d": count must be a positive integer',
        'node "e": count must be a positive integer',
        'node "f": config must be an object',
        'node "f": resources must be an object',
        'node "f": constraints must be an object',
    )


def test_r1_service_and_check_errors_name_the_node() -> None:
    nodes = [
        {"node_id": "a", "agent_type": "t", "services": "http"},
        {
            "node_id": "b",
            "agent_type": "t",
            "services": [
                "http",
                {"checks": []},
                {"name": "s", "checks": "tcp"},
                {"name": "s", "checks": ["tcp", {"type": "grpc"}, {"type": "http"}, {}]},
            ],
        },
    ]
    assert problems_of(doc(nodes=nodes, edges=[], entrypoints=[])) == (
        'node "a": services must be a list',
        'node "b": services[0] must be an object',
        'node "b": services[1].name must be a non-blank string',
        'node "b": services[2].checks must be a list',
        'node "b": services[3].checks[0] must be an object',
        'node "b": services[3].checks[1].type has unsupported value "grpc"',
        'node "b": services[3].checks[3].type has unsupported value "None"',
    )


def test_r1_edge_errors_name_the_edge() -> None:
    edges: list[Any] = [
        {"from_node": "router", "to_node": "ghost"},
        {"to_node": "router"},
        "router->sink",
        {"from_node": "phantom", "to_node": ""},
    ]
    assert problems_of(doc(edges=edges)) == (
        'edge 0 (router -> ghost): to_node "ghost" is not a node',
        "edge 1 (None -> router): from_node must be a non-blank string",
        "edges[2] must be an object",
        'edge 3 (phantom -> ): from_node "phantom" is not a node',
        "edge 3 (phantom -> ): to_node must be a non-blank string",
    )


@pytest.mark.parametrize(("edges", "message"), [(None, "edges must be a list"), ({}, "edges must be a list")])
def test_r1_edges_must_be_a_list(edges: Any, message: str) -> None:
    assert problems_of(doc(edges=edges)) == (message,)


def test_r1_entrypoint_errors() -> None:
    assert problems_of(doc(entrypoints=["router", "ghost", 3, ["sink"], {"n": 1}])) == (
        'entrypoints[1]: "ghost" is not a node',
        'entrypoints[2]: "3" is not a node',
        "entrypoints[3]: \"['sink']\" is not a node",
        "entrypoints[4]: \"{'n': 1}\" is not a node",
    )
    assert problems_of(doc(entrypoints="router")) == ("entrypoints must be a list",)


def test_r1_edges_and_entrypoints_optional() -> None:
    document = doc()
    del document["edges"], document["entrypoints"]
    manifest = load_manifest(document)
    assert manifest.document.get("edges") is None
    assert len(manifest.agents) == 5


def test_r1_runtime_id_clash_between_nodes_is_an_error() -> None:
    # worker (count 3) gives worker-1; a node literally named worker-1 would silently replace it
    document = doc()
    document["nodes"].append({"node_id": "worker-1", "agent_type": "t"})
    assert problems_of(document) == ('node "worker-1": runtime id "worker-1" is already used',)


def test_r1_values_in_messages_stay_on_one_line() -> None:
    nodes = [{"node_id": "bad\nid", "agent_type": ""}]
    problems = problems_of(doc(nodes=nodes, edges=[{"from_node": "x\r\ny", "to_node": "bad\nid"}], entrypoints=[]))
    assert problems == (
        'node "bad\\nid": node_id must not hold control characters',
        'node "bad\\nid": agent_type must be a non-blank string',
        'edge 0 (x\\r\\ny -> bad\\nid): from_node "x\\r\\ny" is not a node',
    )
    assert all(p.splitlines() == [p] for p in problems)


def test_r1_a_key_or_node_id_longer_than_max_name_is_refused_naming_it_in_a_short_line() -> None:
    """Both become Redis keys, ids and a worker's directory name: every key source is bounded, chosen or not."""
    long = "k" * (MAX_NAME + 1)
    nodes = [{"node_id": long, "agent_type": "t"}, {"node_id": "n" * MAX_NAME, "agent_type": "t"}]

    problems = problems_of(doc(graph_id=long, nodes=nodes, edges=[], entrypoints=[]), key=f" {long} ")

    assert problems == (
        f"the call's key is longer than {MAX_NAME} characters ({MAX_NAME + 1})",
        f"graph_id is longer than {MAX_NAME} characters ({MAX_NAME + 1})",
        f"nodes[0]: node_id is longer than {MAX_NAME} characters ({MAX_NAME + 1})",
    )


def test_r1_a_key_and_node_id_of_max_name_characters_are_taken() -> None:
    nodes = [{"node_id": "n" * MAX_NAME, "agent_type": "t"}]
    manifest = load_manifest(doc(nodes=nodes, edges=[], entrypoints=[]), key="k" * MAX_NAME)

    assert (manifest.key, manifest.agent_ids()) == ("k" * MAX_NAME, ("n" * MAX_NAME,))


# --- R1: bounded inputs -----------------------------------------------------------------------------------


def sized(*counts: int) -> dict[str, Any]:
    """A manifest of one node per count."""
    nodes = [{"node_id": f"n{i}", "agent_type": "t", "count": count} for i, count in enumerate(counts)]
    return doc(nodes=nodes, edges=[], entrypoints=[])


@pytest.mark.parametrize("counts", [(MAX_AGENTS,), (MAX_AGENTS - 1, 1)])
def test_r1_a_manifest_of_max_agents_loads(counts: tuple[int, ...]) -> None:
    assert len(load_manifest(sized(*counts)).agents) == MAX_AGENTS == 100_000


def test_r1_count_and_total_agents_are_bounded_and_collected_with_other_problems() -> None:
    document = sized(MAX_AGENTS + 1, 10**30, 60_000, 40_000, 1)
    document["nodes"][0]["agent_type"] = ""
    assert problems_of(document) == (
        'node "n0": agent_type must be a non-blank string',
        'node "n0": count must be at most 100000',
        'node "n1": count must be at most 100000',
        'node "n4": count 1 takes the manifest over 100000 agents',
    )


def with_config(levels: int) -> dict[str, Any]:
    """A manifest whose first node's config holds `levels` nested arrays and objects (the document, `nodes`,
    the node and the config are 4 more)."""
    document = doc()
    document["nodes"][0]["config"] = {"deep": nested(levels)}
    return document


def test_r1_nesting_up_to_max_depth_loads() -> None:
    overrides = {"note": nested(MAX_DEPTH - 1)}
    assert depth(with_config(MAX_DEPTH - 4)) == depth(overrides) == MAX_DEPTH == 64
    assert load_manifest(with_config(MAX_DEPTH - 4), overrides=overrides).key == "agent-api"


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 5000])
def test_r1_deeper_nesting_is_refused_alone_in_one_line(levels: int) -> None:
    # 5000 levels is more than json.dumps and repr can recurse through: nothing else may look at it first
    document = with_config(levels - 4)
    document["nodes"].append({"node_id": ["no", "string"]})
    overrides = {"max_parallel": nested(levels - 1)}
    assert problems_of(document) == ("manifest: nested more than 64 levels deep",)
    assert problems_of(doc(), overrides=overrides) == ("update policy overrides: nested more than 64 levels deep",)


NOT_FINITE = "holds a number that is not finite (NaN, Infinity, or over 1.8e308 in size)"


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf, 10**400, -(10**400)])
def test_r1_a_number_that_is_not_a_finite_float_is_refused_anywhere(number: float) -> None:
    document = doc()
    document["nodes"][0]["config"]["ratio"] = [number]
    assert problems_of(document) == (f"manifest: {NOT_FINITE}",)
    assert problems_of(doc(), overrides={"unknown": number}) == (f"update policy overrides: {NOT_FINITE}",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000, "nested more than 64 levels deep"),  # json.loads alone raises RecursionError
        ("[" * 65 + "]" * 65, "nested more than 64 levels deep"),
        ('{"a": NaN}', NOT_FINITE),
        ("[Infinity]", NOT_FINITE),
        ("-Infinity", NOT_FINITE),
        ("1e400", NOT_FINITE),
        ("1" * 5000, "holds an integer with too many digits"),
    ],
)
def test_parse_json_refuses_what_python_would_take_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_json(text)
    assert not isinstance(raised.value, json.JSONDecodeError)
    assert str(raised.value) == message


def test_parse_json_reads_json_and_leaves_bad_syntax_to_the_caller() -> None:
    assert depth(parse_json("[" * 64 + "]" * 64)) == MAX_DEPTH
    assert parse_json('{"a": [1.5, -2, "\\u2028"]}') == {"a": [1.5, -2, "\u2028"]}
    with pytest.raises(json.JSONDecodeError):
        parse_json('{"a": ')


def test_r1_key_missing_is_an_error() -> None:
    document = doc(deployment={}, job_name="", graph_id=None)
    assert problems_of(document) == ("deployment key is missing: set deployment.key, job_name or graph_id",)


@pytest.mark.parametrize(
    ("job_type", "expected", "long_running"),
    [(" Service ", "service", True), ("SYSTEM", "system", True), ("batch", "batch", False), ("cron", "cron", False)],
)
def test_r1_job_type_normalized(job_type: str, expected: str, long_running: bool) -> None:
    manifest = load_manifest(doc(job_type=job_type))
    assert manifest.job_type == expected
    assert manifest.long_running is long_running


def test_r1_job_type_defaults_to_batch() -> None:
    document = doc()
    del document["job_type"]
    manifest = load_manifest(document)
    assert manifest.job_type == "batch"
    assert not manifest.long_running


@pytest.mark.parametrize("job_type", ["", " ", 3, None])
def test_r1_job_type_must_be_a_non_blank_string(job_type: Any) -> None:
    assert problems_of(doc(job_type=job_type)) == ("job_type must be a non-blank string",)


# --- R1: key resolution order ---------------------------------------------------------------------------

SOURCES = ("override", "metadata", "deployment", "policies", "job_name", "graph_id")


def keyed(present: tuple[str, ...], blank: str = "") -> tuple[dict[str, Any], str | None]:
    """A manifest with the key sources in `present` set to `k-<source>`, the others set to `blank`."""

    def value(source: str) -> Any:
        return f"k-{source}" if source in present else blank

    document = doc(
        metadata={"deployment_key": value("metadata")},
        deployment={"key": value("deployment")} if "deployment" in present else {},
        policies={"deployment_key": value("policies")},
        job_name=value("job_name"),
        graph_id=value("graph_id"),
    )
    return document, (value("override") if "override" in present else None)


@pytest.mark.parametrize("first", range(len(SOURCES)))
def test_r1_key_resolution_order(first: int) -> None:
    present = SOURCES[first:]
    document, override = keyed(present)
    expected = f"k-{SOURCES[first]}"
    assert resolve_key(document, override) == expected
    manifest = load_manifest(document, key=override)
    assert manifest.key == expected
    assert manifest.document["deployment"]["key"] == expected


@pytest.mark.parametrize("first", range(len(SOURCES)))
def test_r1_key_resolution_skips_blank_and_non_string(first: int) -> None:
    present = SOURCES[first:]
    for blank in ("", "   ", 7, None, ["k"]):
        document, override = keyed(present, blank=blank)
        if "deployment" not in present:
            document["deployment"] = {}
        assert resolve_key(document, override) == f"k-{SOURCES[first]}"


def test_r1_key_scenario_6_job_name_then_graph_id() -> None:
    document = doc(deployment={}, job_name="x", graph_id="g")
    assert load_manifest(document).key == "x"
    document["job_name"] = "  "
    assert load_manifest(document).key == "g"


def test_r1_key_is_stripped() -> None:
    assert load_manifest(doc(deployment={"key": "  agent-api  "})).key == "agent-api"
    assert load_manifest(doc(), key=" forced ").key == "forced"


def test_r1_key_override_wins_and_is_written_into_the_document() -> None:
    manifest = load_manifest(doc(), key="agent-api-2")
    assert manifest.key == "agent-api-2"
    assert manifest.document["deployment"] == {"key": "agent-api-2"}


def test_r1_blank_key_override_ignored() -> None:
    assert load_manifest(doc(), key="  ").key == "agent-api"


def test_r1_key_sections_that_are_not_objects_are_skipped() -> None:
    document = doc(metadata="meta", deployment={}, policies={"update": {}, "deployment_key": 3})
    assert resolve_key(document) == "agent-api-job"


# --- R2/R3: overrides merge over policies.update ----------------------------------------------------------


def test_r3_scenario_2_overrides_merge_over_manifest_policy() -> None:
    update = {"strategy": "canary", "canary": 1, "max_parallel": 2, "min_healthy_ms": 0}
    manifest = load_manifest(doc(policies={"update": update}), overrides={"auto_revert": True})
    assert manifest.key == "agent-api"
    policy = manifest.policy
    assert (policy.strategy, policy.canary, policy.max_parallel, policy.min_healthy_ms) == ("canary", 1, 2, 0)
    assert policy.auto_revert is True
    assert policy.auto_promote is False
    assert manifest.document["policies"]["update"] == {**update, "auto_revert": True}


def test_r3_override_replaces_manifest_field() -> None:
    manifest = load_manifest(doc(), overrides={"max_parallel": 5})
    assert manifest.policy.max_parallel == 5
    assert manifest.policy.strategy == "rolling"
    assert manifest.document["policies"]["update"] == {"strategy": "rolling", "max_parallel": 5}


def test_r3_overrides_without_manifest_policy() -> None:
    manifest = load_manifest(doc(policies={}), overrides={"strategy": "canary", "canary": 2})
    assert (manifest.policy.strategy, manifest.policy.canary) == ("canary", 2)


def test_r3_effective_document_keeps_other_policy_sections() -> None:
    document = doc(policies={"update": {}, "restart": {"attempts": 3}})
    manifest = load_manifest(document, overrides={"canary": 1})
    assert manifest.document["policies"] == {"update": {"canary": 1}, "restart": {"attempts": 3}}
    assert manifest.restart.attempts == 3


def test_r3_effective_document_reloads_to_the_same_manifest() -> None:
    first = load_manifest(doc(), overrides={"auto_revert": True, "canary": 1}, key="forced")
    again = load_manifest(json.loads(json.dumps(first.document)))
    assert again.key == "forced"
    assert again.policy == first.policy
    assert again.spec_digest == first.spec_digest
    assert again.topology == first.topology


# --- R3: runtime ids ------------------------------------------------------------------------------------


def test_r3_runtime_ids_for_count() -> None:
    manifest = load_manifest(doc())
    workers = [a for a in manifest.agents.values() if a.node_id == "worker"]
    assert [a.agent_id for a in workers] == ["worker-0", "worker-1", "worker-2"]
    assert {a.digest for a in workers} == {workers[0].digest}
    assert manifest.agents["router"].node_id == "router"


def test_r3_count_one_gives_the_node_id() -> None:
    document = doc()
    node(document, "worker")["count"] = 1
    assert load_manifest(document).agent_ids() == ("router", "sink", "worker")


def test_r3_count_defaults_to_one() -> None:
    assert "sink" in load_manifest(doc()).agents


def test_r3_runtime_ids_in_natural_order() -> None:
    document = doc()
    node(document, "worker")["count"] = 12
    ids = [a for a in load_manifest(document).agent_ids() if a.startswith("worker")]
    assert ids == [f"worker-{i}" for i in range(12)]
    assert ids.index("worker-2") < ids.index("worker-10")


def test_r3_runtime_order() -> None:
    names = ["worker-10", "worker-2", "worker-1", "a", "worker", "b3c10", "b3c9", "2", "10"]
    assert sorted(names, key=runtime_order) == [
        "2",
        "10",
        "a",
        "b3c9",
        "b3c10",
        "worker",
        "worker-1",
        "worker-2",
        "worker-10",
    ]


def test_r3_runtime_order_with_non_decimal_digits() -> None:
    # "²" is str.isdigit() but not a decimal digit; it used to crash int()
    assert runtime_order("²") == ("²",)
    assert load_manifest(doc(nodes=[{"node_id": "²", "agent_type": "t"}], edges=[], entrypoints=[])).agent_ids() == (
        "²",
    )


def test_r3_agent_spec_fields() -> None:
    agent = load_manifest(doc()).agents["worker-1"]
    assert isinstance(agent, AgentSpec)
    assert agent.node_id == "worker"
    assert agent.node["agent_type"] == "llm_worker"
    assert agent.services == ("worker-http",)
    assert agent.checks == ("live",)


def test_r3_unnamed_checks_named_after_service_and_index() -> None:
    nodes = [
        {
            "node_id": "api",
            "agent_type": "http_api",
            "services": [
                {"name": "http", "checks": [{"type": "http"}, {"type": "tcp", "name": "port"}]},
                {"name": "admin"},
            ],
        }
    ]
    agent = load_manifest(doc(nodes=nodes, edges=[], entrypoints=[])).agents["api"]
    assert agent.checks == ("http:0", "port")
    assert agent.services == ("http", "admin")


def test_r3_expand_agents_sorts_across_nodes() -> None:
    agents = expand_agents([{"node_id": "b", "count": 2}, {"node_id": "a"}])
    assert list(agents) == ["a", "b-0", "b-1"]


# --- R3: spec digest ------------------------------------------------------------------------------------


def test_r3_spec_digest_equal_for_identical_manifests() -> None:
    assert load_manifest(doc()).spec_digest == load_manifest(doc()).spec_digest
    assert len(load_manifest(doc()).spec_digest) == 64


def test_r3_spec_digest_ignores_key_order() -> None:
    reordered = json.loads(json.dumps(doc()), object_pairs_hook=lambda pairs: dict(reversed(pairs)))
    assert load_manifest(reordered).spec_digest == load_manifest(doc()).spec_digest


def test_r3_spec_digest_ignores_policies_and_deployment() -> None:
    base = load_manifest(doc())
    other = load_manifest(
        doc(
            deployment={"key": "another-key"},
            policies={"update": {"strategy": "canary", "canary": 2}, "restart": {"attempts": 9}},
        ),
        overrides={"auto_revert": True},
    )
    assert other.spec_digest == base.spec_digest
    assert load_manifest(doc(), key="forced").spec_digest == base.spec_digest
    assert other.agents["worker-0"].digest == base.agents["worker-0"].digest


def test_r3_spec_digest_changes_with_node_config() -> None:
    changed = doc()
    node(changed, "sink")["config"] = {"flush_ms": 5}
    assert load_manifest(changed).spec_digest != load_manifest(doc()).spec_digest


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(job_type="system"),
        lambda d: d["edges"].pop(),
        lambda d: d.update(entrypoints=["router", "sink"]),
        lambda d: node(d, "worker").update(count=4),
        lambda d: node(d, "router").update(agent_type="smart_router"),
    ],
)
def test_r3_spec_digest_changes_with_what_runs(change: Any) -> None:
    changed = doc()
    change(changed)
    assert load_manifest(changed).spec_digest != load_manifest(doc()).spec_digest


def test_r3_digest_is_sha256_of_canonical_json() -> None:
    import hashlib

    value = {"b": [1, "é"], "a": None}
    assert canonical_json(value) == '{"a":null,"b":[1,"é"]}'
    assert digest(value) == hashlib.sha256(canonical_json(value).encode()).hexdigest()


def test_r1_lone_surrogates_from_json_are_refused_before_anything_digests_them() -> None:
    # json.loads happily returns "\ud800", which no writer can encode as UTF-8: the manifest is refused
    config = json.loads('{"s": "\\ud800"}')
    document = doc()
    node(document, "sink")["config"] = config
    assert problems_of(document) == ("manifest: holds text that is not Unicode (a lone surrogate, \\ud800 to \\udfff)",)
    assert len(digest(config)) == 64  # a digest of any value is still made


# --- R3: per-agent digest -------------------------------------------------------------------------------


def test_r3_agent_digest_changes_only_for_changed_node() -> None:
    before = load_manifest(doc())
    changed = doc()
    node(changed, "worker")["config"] = {"model": "large"}
    after = load_manifest(changed)
    differing = {a for a in after.agents if after.agents[a].digest != before.agents[a].digest}
    assert differing == {"worker-0", "worker-1", "worker-2"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("agent_type", "other"),
        ("type", "python"),
        ("role", "control"),
        ("config", {"flush_ms": 5}),
        ("resources", {"cpu": 2}),
        ("constraints", {"zone": "a"}),
        ("services", [{"name": "sink-http"}]),
    ],
)
def test_r3_agent_digest_covers_agent_fields(field: str, value: Any) -> None:
    changed = doc()
    node(changed, "sink")[field] = value
    before, after = load_manifest(doc()), load_manifest(changed)
    assert after.agents["sink"].digest != before.agents["sink"].digest
    assert after.agents["router"].digest == before.agents["router"].digest


def test_r3_agent_digest_ignores_count() -> None:
    changed = doc()
    node(changed, "worker")["count"] = 5
    assert load_manifest(changed).agents["worker-0"].digest == load_manifest(doc()).agents["worker-0"].digest


# --- R3: topology signature -----------------------------------------------------------------------------


def topology_after(change: Any) -> str:
    changed = doc()
    change(changed)
    return load_manifest(changed).topology


BASE_TOPOLOGY = load_manifest(doc()).topology


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d["nodes"].append({"node_id": "audit", "agent_type": "t"}), id="added-node"),
        pytest.param(lambda d: (d["nodes"].pop(), d["edges"].pop()), id="removed-node"),
        pytest.param(lambda d: node(d, "worker").update(count=4), id="count"),
        pytest.param(lambda d: node(d, "worker").update(count=1), id="count-1"),
        pytest.param(lambda d: d["edges"][0].update(to_node="sink"), id="edge-end"),
        pytest.param(lambda d: d["edges"][0].update(message_type="job"), id="edge-message-type"),
        pytest.param(lambda d: d["edges"][0].update(routing_mode="direct"), id="edge-routing-mode"),
        pytest.param(lambda d: d["edges"].append({"from_node": "router", "to_node": "sink"}), id="edge-added"),
        pytest.param(lambda d: d.update(entrypoints=["router", "worker"]), id="entrypoint-added"),
        pytest.param(lambda d: d.update(entrypoints=[]), id="entrypoint-removed"),
    ],
)
def test_r3_topology_changes(change: Any) -> None:
    assert topology_after(change) != BASE_TOPOLOGY


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: node(d, "worker").update(config={"model": "large"}), id="config"),
        pytest.param(lambda d: node(d, "sink").update(agent_type="other"), id="agent-type"),
        pytest.param(lambda d: d["edges"].reverse(), id="edge-order"),
        pytest.param(lambda d: d["nodes"].reverse(), id="node-order"),
        pytest.param(lambda d: d.update(policies={"update": {"strategy": "blue-green"}}), id="policy"),
    ],
)
def test_r3_topology_unchanged(change: Any) -> None:
    assert topology_after(change) == BASE_TOPOLOGY


def test_r3_topology_signature_function() -> None:
    edges = [{"from_node": "a", "to_node": "b"}]
    same = topology_signature(["b", "a"], edges, ["a"])
    assert same == topology_signature(["a", "b"], edges, ["a"])
    assert same != topology_signature(["a", "b"], [], ["a"])
    assert same != topology_signature(["a", "b"], edges, [])
    assert same != topology_signature(["a", "b", "c"], edges, ["a"])


# --- R3: changed agents ---------------------------------------------------------------------------------


def running_digests(manifest: Manifest) -> dict[str, str]:
    return {a: spec.digest for a, spec in manifest.agents.items()}


def test_r3_changed_agents_none_for_same_spec() -> None:
    manifest = load_manifest(doc())
    assert changed_agents(running_digests(manifest), manifest) == ()


def test_r3_changed_agents_lists_only_changed_in_runtime_order() -> None:
    before = load_manifest(doc())
    changed = doc()
    node(changed, "worker")["count"] = 11
    node(changed, "worker")["config"] = {"model": "large"}
    after = load_manifest(changed)
    running = running_digests(before)
    assert changed_agents(running, after) == tuple(f"worker-{i}" for i in range(11))


def test_r3_changed_agents_compared_per_agent() -> None:
    target = load_manifest(doc())
    running = running_digests(target)
    running["worker-1"] = "stale"
    del running["sink"]
    running["retired"] = "whatever"
    assert changed_agents(running, target) == ("sink", "worker-1")


def test_r3_changed_agents_policy_change_is_not_a_change() -> None:
    running = running_digests(load_manifest(doc()))
    target = load_manifest(doc(policies={"update": {"strategy": "canary", "canary": 1}}))
    assert changed_agents(running, target) == ()
