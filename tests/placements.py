"""Placements for tests that drive a runtime directly, without a controller to make them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mn_deploy_core.ports import Placement, RestartPolicy, Role

_DEFAULT = Placement(
    instance_id="dep_hello_1.web.0",
    agent_id="web",
    job_id="job_hello_1",
    deployment_key="hello",
    deployment_id="dep_hello_1",
    deployment_version="1",
    role=Role.PRIMARY,
    phase="initial",
    spec_digest="d",
    node={},
    checks=(),
    restart=RestartPolicy(),
)


def a_placement(**changes: Any) -> Placement:
    """A primary of agent `web` of key `hello`, version 1, with these fields changed."""
    return replace(_DEFAULT, **changes)
