from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class NetworkHandshakeRequest(_message.Message):
    __slots__ = ("token", "node_name", "node_info_json", "version")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    token: str
    node_name: str
    node_info_json: str
    version: int
    def __init__(self, token: _Optional[str] = ..., node_name: _Optional[str] = ..., node_info_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class NetworkHandshakeResponse(_message.Message):
    __slots__ = ("node_name", "runtime_mode", "grpc_host", "grpc_port", "dist_port", "redis_host", "redis_port", "redis_url", "cluster_nodes", "network_only", "node_info_json", "grpc_auth_token", "grpc_admin_token", "version")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_MODE_FIELD_NUMBER: _ClassVar[int]
    GRPC_HOST_FIELD_NUMBER: _ClassVar[int]
    GRPC_PORT_FIELD_NUMBER: _ClassVar[int]
    DIST_PORT_FIELD_NUMBER: _ClassVar[int]
    REDIS_HOST_FIELD_NUMBER: _ClassVar[int]
    REDIS_PORT_FIELD_NUMBER: _ClassVar[int]
    REDIS_URL_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_NODES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ONLY_FIELD_NUMBER: _ClassVar[int]
    NODE_INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    GRPC_AUTH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    GRPC_ADMIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    runtime_mode: str
    grpc_host: str
    grpc_port: int
    dist_port: int
    redis_host: str
    redis_port: int
    redis_url: str
    cluster_nodes: str
    network_only: bool
    node_info_json: str
    grpc_auth_token: str
    grpc_admin_token: str
    version: int
    def __init__(self, node_name: _Optional[str] = ..., runtime_mode: _Optional[str] = ..., grpc_host: _Optional[str] = ..., grpc_port: _Optional[int] = ..., dist_port: _Optional[int] = ..., redis_host: _Optional[str] = ..., redis_port: _Optional[int] = ..., redis_url: _Optional[str] = ..., cluster_nodes: _Optional[str] = ..., network_only: bool = ..., node_info_json: _Optional[str] = ..., grpc_auth_token: _Optional[str] = ..., grpc_admin_token: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetSystemSummaryRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class GetSystemSummaryResponse(_message.Message):
    __slots__ = ("summary_json", "version")
    SUMMARY_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    summary_json: str
    version: int
    def __init__(self, summary_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetResourceRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class GetResourceResponse(_message.Message):
    __slots__ = ("resource_json", "version")
    RESOURCE_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    resource_json: str
    version: int
    def __init__(self, resource_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SetResourceRequest(_message.Message):
    __slots__ = ("resource_json", "version")
    RESOURCE_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    resource_json: str
    version: int
    def __init__(self, resource_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SetResourceResponse(_message.Message):
    __slots__ = ("resource_json", "version")
    RESOURCE_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    resource_json: str
    version: int
    def __init__(self, resource_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class PrepareDockerWorkerRequest(_message.Message):
    __slots__ = ("manifest_json", "payloads", "submission_id", "node_name", "version")
    class PayloadsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    PAYLOADS_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    manifest_json: str
    payloads: _containers.ScalarMap[str, bytes]
    submission_id: str
    node_name: str
    version: int
    def __init__(self, manifest_json: _Optional[str] = ..., payloads: _Optional[_Mapping[str, bytes]] = ..., submission_id: _Optional[str] = ..., node_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class PrepareDockerWorkerResponse(_message.Message):
    __slots__ = ("result_json", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    version: int
    def __init__(self, result_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class CleanupDockerWorkerRequest(_message.Message):
    __slots__ = ("submission_id", "job_id", "all_services", "version")
    SUBMISSION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_SERVICES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    submission_id: str
    job_id: str
    all_services: bool
    version: int
    def __init__(self, submission_id: _Optional[str] = ..., job_id: _Optional[str] = ..., all_services: bool = ..., version: _Optional[int] = ...) -> None: ...

class CleanupDockerWorkerResponse(_message.Message):
    __slots__ = ("result_json", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    version: int
    def __init__(self, result_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class AddNodeRequest(_message.Message):
    __slots__ = ("node_name", "token", "version")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    token: str
    version: int
    def __init__(self, node_name: _Optional[str] = ..., token: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class AddNodeResponse(_message.Message):
    __slots__ = ("node_name", "status", "version")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    status: str
    version: int
    def __init__(self, node_name: _Optional[str] = ..., status: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RemoveNodeRequest(_message.Message):
    __slots__ = ("node_name", "version")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    version: int
    def __init__(self, node_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RemoveNodeResponse(_message.Message):
    __slots__ = ("node_name", "status", "version")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    status: str
    version: int
    def __init__(self, node_name: _Optional[str] = ..., status: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ReconcileNodeRequest(_message.Message):
    __slots__ = ("node_name", "reason", "dry_run", "version")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    reason: str
    dry_run: bool
    version: int
    def __init__(self, node_name: _Optional[str] = ..., reason: _Optional[str] = ..., dry_run: bool = ..., version: _Optional[int] = ...) -> None: ...

class ReconcileNodeResponse(_message.Message):
    __slots__ = ("result_json", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    version: int
    def __init__(self, result_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DrainNodeRequest(_message.Message):
    __slots__ = ("node_name", "reason", "dry_run", "deadline_ms", "ignore_system_jobs", "wait", "version")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    IGNORE_SYSTEM_JOBS_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    reason: str
    dry_run: bool
    deadline_ms: int
    ignore_system_jobs: bool
    wait: bool
    version: int
    def __init__(self, node_name: _Optional[str] = ..., reason: _Optional[str] = ..., dry_run: bool = ..., deadline_ms: _Optional[int] = ..., ignore_system_jobs: bool = ..., wait: bool = ..., version: _Optional[int] = ...) -> None: ...

class DrainNodeResponse(_message.Message):
    __slots__ = ("result_json", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    version: int
    def __init__(self, result_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class CancelNodeDrainRequest(_message.Message):
    __slots__ = ("node_name", "reason", "mark_eligible", "version")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MARK_ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    reason: str
    mark_eligible: bool
    version: int
    def __init__(self, node_name: _Optional[str] = ..., reason: _Optional[str] = ..., mark_eligible: bool = ..., version: _Optional[int] = ...) -> None: ...

class CancelNodeDrainResponse(_message.Message):
    __slots__ = ("result_json", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    version: int
    def __init__(self, result_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SetNodeMaintenanceRequest(_message.Message):
    __slots__ = ("node_name", "enabled", "reason", "version")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    enabled: bool
    reason: str
    version: int
    def __init__(self, node_name: _Optional[str] = ..., enabled: bool = ..., reason: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SetNodeMaintenanceResponse(_message.Message):
    __slots__ = ("result_json", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    version: int
    def __init__(self, result_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetNodeDrainStatusRequest(_message.Message):
    __slots__ = ("node_name", "version")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    version: int
    def __init__(self, node_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetNodeDrainStatusResponse(_message.Message):
    __slots__ = ("result_json", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    version: int
    def __init__(self, result_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListServicesRequest(_message.Message):
    __slots__ = ("query_json", "version")
    QUERY_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    query_json: str
    version: int
    def __init__(self, query_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListServicesResponse(_message.Message):
    __slots__ = ("result_json", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    version: int
    def __init__(self, result_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ResolveServiceRequest(_message.Message):
    __slots__ = ("name", "query_json", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUERY_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    query_json: str
    version: int
    def __init__(self, name: _Optional[str] = ..., query_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ResolveServiceResponse(_message.Message):
    __slots__ = ("result_json", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    version: int
    def __init__(self, result_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class CheckServicesRequest(_message.Message):
    __slots__ = ("services_json", "version")
    SERVICES_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    services_json: str
    version: int
    def __init__(self, services_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class CheckServicesResponse(_message.Message):
    __slots__ = ("result_json", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    version: int
    def __init__(self, result_json: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...
