"""Caller authentication: only registered relying parties may call the gateway.

A caller sends its API key in the `x-api-key` metadata. The gateway keeps only
SHA-256 hashes of the keys (HWOTP_API_KEYS) and compares in constant time,
checking every registered hash whatever matched first.
"""

from __future__ import annotations

import hashlib
import hmac

import grpc

from hwotp.config import ConfigError

METADATA_KEY = "x-api-key"
# Probes and tooling reach these without a key; they reveal nothing about users.
_OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, spec: str):
        self.entries: list[tuple[str, bytes]] = []
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, digest = item.partition(":")
            try:
                raw = bytes.fromhex(digest)
            except ValueError:
                raw = b""
            if not name or len(raw) != 32:
                raise ConfigError(f"HWOTP_API_KEYS entry {name or item!r} must be name:<64 hex digits of sha256(key)>")
            self.entries.append((name, raw))
        if not self.entries:
            raise ConfigError("HWOTP_API_KEYS is empty: register at least one caller, or set HWOTP_AUTH=off")

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
    def __init__(self, keys: ApiKeys):
        self.keys = keys

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(_OPEN):
            return continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        if self.keys.caller(metadata.get(METADATA_KEY)) is None:
            return grpc.unary_unary_rpc_method_handler(_refuse)
        return continuation(handler_call_details)


def _refuse(request, context):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, f"a registered API key is required in '{METADATA_KEY}' metadata")
