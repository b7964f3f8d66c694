"""Requests that are not the message their method takes are refused as bad input, not as a server fault.

gRPC decodes a request before the service sees it, and a request that does not decode (not protobuf at all, or a
string field that is not UTF-8, the only way a lone surrogate can arrive) would be answered `INTERNAL`
("Exception deserializing request!"), as if the controller had failed. This interceptor hands each method the
raw bytes and decodes them itself, answering `INVALID_ARGUMENT` in one line naming the method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError


class StrictDecoding(grpc.ServerInterceptor):
    """Decodes each unary request itself, so that one that does not decode is the caller's error."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        method = details.method.rsplit("/", 1)[-1]
        decode, behavior = handler.request_deserializer, handler.unary_unary

        def decoded(raw: bytes, context: grpc.ServicerContext) -> Any:
            try:
                request = decode(raw)
            except DecodeError:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {method} request")
            return behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(decoded, response_serializer=handler.response_serializer)
