"""What reference/mirrorneuron-deployments.md §4 promises, written down once for every test that checks it."""

# The deployment record fields a MirrorNeuron reader relies on.
REFERENCE_FIELDS = frozenset(
    {
        "deployment_id",
        "deployment_key",
        "status",
        "description",
        "strategy",
        "policy",
        "current_job_id",
        "stable_job_id",
        "current_version",
        "stable_version",
        "target_version",
        "health",
        "events",
        "source_job_id",
        "target_job_id",
        "target_manifest",
        "target_scheduler",
        "changed_agent_ids",
        "remaining_agent_ids",
        "canary_agent_ids",
        "mode",
        "created_at",
        "updated_at",
    }
)
