"""The one server bootstrap of every hwotp service.

It gives each service: grpc.health.v1 (SERVING only while ready), server
reflection, one interceptor that measures every RPC and maps domain errors to
status codes, a Prometheus endpoint, message size limits and a graceful
SIGTERM (NOT_SERVING, then stop(grace) so in-flight calls finish).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Callable

import grpc
import redis
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hwotp import affinity, errors, tls
from hwotp.client import RETRY_AFTER
from hwotp.config import ServiceSettings
from hwotp.metrics import Metrics

log = logging.getLogger("hwotp.server")
LIVENESS = "liveness"

# Redis failures reach servicers as redis-py's exceptions.
_REDIS_STATUS = (
    (redis.exceptions.ConnectionError, grpc.StatusCode.UNAVAILABLE),
    (redis.exceptions.TimeoutError, grpc.StatusCode.UNAVAILABLE),
    (redis.exceptions.BusyLoadingError, grpc.StatusCode.UNAVAILABLE),
    # maxmemory reached (noeviction): refused writes, nothing evicted; the alert fires
    (redis.exceptions.OutOfMemoryError, grpc.StatusCode.UNAVAILABLE),
)


_UNPARSABLE = object()


def status_of(exc: Exception) -> grpc.StatusCode:
    if isinstance(exc, errors.HwotpError):
        return grpc.StatusCode[exc.status]
    for kind, code in _REDIS_STATUS:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


class ServiceInterceptor(grpc.ServerInterceptor):
    """Times every unary RPC (in try/finally) and turns domain errors into status codes."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        inner, parse = handler.unary_unary, handler.request_deserializer

        def deserialize(raw: bytes):
            # grpcio answers INTERNAL when a request cannot be parsed (invalid
            # UTF-8 in a string, a truncated message): that is the caller's fault.
            try:
                return parse(raw) if parse else raw
            except Exception:
                return _UNPARSABLE

        def behaviour(request, context):
            started, code = time.perf_counter(), grpc.StatusCode.OK
            try:
                if request is _UNPARSABLE:
                    raise errors.InvalidInput("request is not a valid protobuf message (invalid UTF-8 in a string?)")
                return inner(request, context)
            except errors.HwotpError as exc:
                code = status_of(exc)
                if isinstance(exc, errors.ResourceExhausted):
                    context.set_trailing_metadata(((RETRY_AFTER, str(exc.retry_after_s)),))
                context.abort(code, str(exc))
            except redis.exceptions.RedisError as exc:
                code = status_of(exc)
                log.warning("redis error in %s: %s", method, exc.__class__.__name__)
                context.abort(code, "state store unavailable")
            except Exception as exc:
                # context.abort raises; keep the code it set, else it is a bug.
                code = context.code() or grpc.StatusCode.INTERNAL
                if code == grpc.StatusCode.INTERNAL:
                    log.exception("unexpected error in %s", method)
                    context.abort(code, "internal error")
                raise exc
            finally:
                code = context.code() or code
                self.metrics.rpc_duration.labels(self.metrics.service, method, code.name).observe(
                    time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            behaviour, request_deserializer=deserialize,
            response_serializer=handler.response_serializer)


@dataclass
class Registration:
    """One gRPC service to add: the generated add_*_to_server, the servicer, its full name."""

    add: Callable
    servicer: object
    name: str


class Service:
    """A running hwotp service. `ready` is polled; health follows it."""

    def __init__(self, name: str, settings: ServiceSettings, port: int, metrics_port: int,
                 registrations: list[Registration], metrics: Metrics, ready: Callable[[], bool] = lambda: True,
                 interceptors: list[grpc.ServerInterceptor] = ()):
        self.name, self.settings, self.metrics, self.ready = name, settings, metrics, ready
        # before the server starts its threads: they inherit the pinning
        affinity.pin_process(settings.cpu_set)
        limit = settings.max_message_bytes
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix=name),
            # The metrics interceptor first: it also times and counts refused calls.
            interceptors=[ServiceInterceptor(metrics), *interceptors],
            options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit),
                     # no peer holds a connection, or a stream, for ever
                     ("grpc.max_connection_idle_ms", settings.connection_idle_s * 1000),
                     ("grpc.max_connection_age_ms", settings.connection_age_s * 1000),
                     ("grpc.max_connection_age_grace_ms", 30_000),
                     ("grpc.keepalive_time_ms", 60_000), ("grpc.keepalive_timeout_ms", 20_000)],
            # beyond this, calls are RESOURCE_EXHAUSTED at once instead of queueing for a worker
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.probe_server = self._probe_server(settings) if settings.health_port else None
        for registration in registrations:
            registration.add(registration.servicer, self.server)
        self.names = [r.name for r in registrations]
        reflection.enable_server_reflection(self.names + [health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        self._set_health(False)
        credentials = tls.server_credentials(settings)
        address = f"{settings.host}:{port}"
        self.port = (self.server.add_secure_port(address, credentials) if credentials
                     else self.server.add_insecure_port(address))
        if self.port == 0:
            raise RuntimeError(f"{name}: cannot bind {settings.host}:{port}")
        self.metrics_port = metrics.serve(settings.host, metrics_port)
        self._stopping = threading.Event()

    def _probe_server(self, settings: ServiceSettings) -> grpc.Server:
        """Health alone, in plaintext, for probes that cannot speak TLS (Kubernetes' gRPC
        probes): it tells nothing but SERVING or not."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"{self.name}-probe"))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if server.add_insecure_port(f"{settings.host}:{settings.health_port}") == 0:
            raise RuntimeError(f"{self.name}: cannot bind the health port {settings.health_port}")
        return server

    def _set_health(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in [""] + self.names:
            self.health.set(name, status)

    def _watch_readiness(self) -> None:
        while not self._stopping.wait(1.0):
            self._set_health(self._is_ready())

    def _is_ready(self) -> bool:
        try:
            return bool(self.ready())
        except Exception:
            return False

    def stop(self, *_signal) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.info("%s: draining for up to %.1f s", self.name, self.settings.grace_s)
        self.health.enter_graceful_shutdown()
        if self.probe_server:
            self.probe_server.stop(self.settings.grace_s)
        self.server.stop(self.settings.grace_s)

    def run(self) -> None:
        self.server.start()
        if self.probe_server:
            self.probe_server.start()
        # Kubernetes' liveness probe asks for "liveness": SERVING while the process
        # works, whatever its dependencies do (a Redis outage must not restart pods).
        self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        self._set_health(self._is_ready())
        threading.Thread(target=self._watch_readiness, daemon=True).start()
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        # One parseable line: launchers and tests read the ports bound on port 0.
        print(f"hwotp-{self.name} listening grpc={self.settings.host}:{self.port} "
              f"metrics={self.settings.host}:{self.metrics_port}", flush=True)
        self.server.wait_for_termination()
        log.info("%s: stopped", self.name)
