"""TLS for gRPC from PEM files named in the settings.

A server with HWOTP_TLS_CERT/KEY serves TLS; with HWOTP_TLS_CLIENT_CA as well it
requires client certificates from that CA (mTLS). The gateway dials the internal
services over TLS when HWOTP_INTERNAL_TLS_CA is set, presenting
HWOTP_INTERNAL_TLS_CERT/KEY as its client certificate when given.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from hwotp.config import ConfigError, GatewaySettings, ServiceSettings


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}={path}: {exc.strerror}") from None


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    if not (settings.tls_cert or settings.tls_key):
        if settings.tls_client_ca:
            raise ConfigError("HWOTP_TLS_CLIENT_CA needs HWOTP_TLS_CERT and HWOTP_TLS_KEY")
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise ConfigError("HWOTP_TLS_CERT and HWOTP_TLS_KEY go together")
    pair = [(_read(settings.tls_key, "HWOTP_TLS_KEY"), _read(settings.tls_cert, "HWOTP_TLS_CERT"))]
    if settings.tls_client_ca:
        return grpc.ssl_server_credentials(pair, _read(settings.tls_client_ca, "HWOTP_TLS_CLIENT_CA"),
                                           require_client_auth=True)
    return grpc.ssl_server_credentials(pair)


def channel_credentials(ca: str, cert: str = "", key: str = "") -> grpc.ChannelCredentials:
    client = (_read(key, "client key"), _read(cert, "client certificate")) if cert and key else (None, None)
    return grpc.ssl_channel_credentials(_read(ca, "CA"), *client)


def internal_credentials(settings: GatewaySettings) -> grpc.ChannelCredentials | None:
    if not settings.internal_tls_ca:
        return None
    return channel_credentials(settings.internal_tls_ca, settings.internal_tls_cert, settings.internal_tls_key)
