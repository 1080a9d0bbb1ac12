"""Caller authentication: only registered relying parties may call the gateway.

A caller sends its API key in the `x-api-key` metadata. The gateway keeps only
SHA-256 hashes of the keys (HWOTP_API_KEYS) and compares in constant time,
checking every registered hash whatever matched first. A call without a
registered key is refused from its headers, before its message is read, so
that calls which never send one cannot hold the server's threads.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import grpc

from hwotp.client import METADATA_KEY
from hwotp.config import ConfigError
from hwotp.metrics import Metrics

# Probes and tooling reach these without a key; they reveal nothing about users.
_OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# Caller names scope their users (hwotp.subjects) and appear in audit events.
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class ApiKeys:
    def __init__(self, spec: str):
        self.entries: list[tuple[str, bytes]] = []
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, digest = item.partition(":")
            try:
                raw = bytes.fromhex(digest)
            except ValueError:
                raw = b""
            if not _NAME.fullmatch(name) or len(raw) != 32:
                raise ConfigError(f"HWOTP_API_KEYS entry {name or item!r} must be name:<64 hex digits of sha256(key)>, "
                                  "the name 1-64 of A-Z a-z 0-9 . _ -")
            self.entries.append((name, raw))
        if not self.entries:
            raise ConfigError("HWOTP_API_KEYS is empty: register at least one caller, or set HWOTP_AUTH=off")
        if len({name for name, _ in self.entries}) != len(self.entries):
            raise ConfigError("HWOTP_API_KEYS names a caller twice: each relying party's users are its own")

    def caller(self, presented: str | None) -> str | None:
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for name, expected in self.entries:
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        return found


class ApiKeyInterceptor(grpc.ServerInterceptor):
    def __init__(self, keys: ApiKeys, metrics: Metrics):
        self.keys, self.metrics = keys, metrics

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(_OPEN):
            return continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        if self.keys.caller(metadata.get(METADATA_KEY)) is None:
            method = handler_call_details.method.rsplit("/", 1)[-1]
            self.metrics.rpc_duration.labels(self.metrics.service, method, "UNAUTHENTICATED").observe(0)
            # A request-streaming handler runs as soon as the headers are in, without
            # waiting for a message; a unary one would wait for the body first.
            return grpc.stream_unary_rpc_method_handler(_refuse)
        return continuation(handler_call_details)


def _refuse(_requests, context):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, f"a registered API key is required in '{METADATA_KEY}' metadata")
