"""The client side of hwotp's public API, for relying parties' Python code and hwotp's own tools:
a channel that sends the caller's API key with every call, and how keys are registered.

The gateway keeps only the SHA-256 of a key (`key_hash`), in HWOTP_API_KEYS.
"""

from __future__ import annotations

import collections
import hashlib
from dataclasses import dataclass

import grpc

from hwotp.v1 import gateway_pb2, gateway_pb2_grpc

METADATA_KEY = "x-api-key"
RETRY_AFTER = "retry-after-s"  # trailing metadata of RESOURCE_EXHAUSTED answers


def key_hash(key: str) -> str:
    """What HWOTP_API_KEYS holds of a caller's key."""
    return hashlib.sha256(key.encode()).hexdigest()


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
    """A channel to the gateway whose every call carries the API key (TLS with `credentials`)."""
    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    return grpc.intercept_channel(channel, _WithKey(api_key))


def gateway_stub(channel: grpc.Channel) -> gateway_pb2_grpc.GatewayStub:
    return gateway_pb2_grpc.GatewayStub(channel)


@dataclass(frozen=True)
class Answer:
    """A SubmitChallenge answer, typed: accepted, why (ACCEPTED, WRONG_DIGITS, WRITER_MISMATCH,
    EXPIRED, UNKNOWN_CHALLENGE, ALREADY_USED, LOCKED, NOT_ENROLLED, REPLAY) and, when accepted,
    the owner token."""

    accepted: bool
    reason: str
    owner_token: str = ""

    @classmethod
    def of(cls, response: gateway_pb2.SubmitChallengeResponse) -> "Answer":
        return cls(response.decision == gateway_pb2.ACCEPT, gateway_pb2.Reason.Name(response.reason),
                   response.owner_token)


def retry_after_s(error: grpc.RpcError) -> int | None:
    """Seconds to wait before trying again, from a RESOURCE_EXHAUSTED answer (None otherwise)."""
    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    value = dict(error.trailing_metadata() or ()).get(RETRY_AFTER)
    return int(value) if value else None
