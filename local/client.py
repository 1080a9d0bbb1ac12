"""A gateway client as a relying party holds one: a channel that sends the caller's API key."""

from __future__ import annotations

import collections
import json

import grpc

from gateway.auth import METADATA_KEY
from hwotp.v1 import gateway_pb2_grpc


class _Details(collections.namedtuple("_Details", "method timeout metadata credentials wait_for_ready compression"),
               grpc.ClientCallDetails):
    pass


class _WithKey(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, api_key: str):
        self.entry = (METADATA_KEY, api_key)

    def intercept_unary_unary(self, continuation, details, request):
        metadata = list(details.metadata or []) + [self.entry]
        return continuation(_Details(details.method, details.timeout, metadata, details.credentials,
                                     details.wait_for_ready, details.compression), request)


def gateway_channel(address: str, api_key: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    return grpc.intercept_channel(channel, _WithKey(api_key))


def gateway_stub(channel: grpc.Channel) -> gateway_pb2_grpc.GatewayStub:
    return gateway_pb2_grpc.GatewayStub(channel)


def local_api_key(state_file) -> str:
    """The key of the stack `make up` started (run/stack.json)."""
    return json.loads(state_file.read_text())["api_key"]
