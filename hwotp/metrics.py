"""Prometheus metrics of a service, on an injectable registry (tests read a fresh one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 2.5, 5.0)


class Metrics:
    def __init__(self, service: str, registry: CollectorRegistry | None = None):
        self.service = service
        self.registry = registry or CollectorRegistry()
        self.rpc_duration = Histogram(
            "hwotp_rpc_duration_seconds", "Server-side duration of RPCs by method and status code.",
            ["service", "method", "code"], registry=self.registry, buckets=LATENCY_BUCKETS)
        self.decisions = Counter(
            "hwotp_decisions_total", "Authentication decisions by result and reason.",
            ["decision", "reason"], registry=self.registry)
        self.lockouts = Counter(
            "hwotp_lockouts_total", "Failed submissions of accounts past the throttling threshold, by state.",
            ["state"], registry=self.registry)
        self.near_misses = Counter(
            "hwotp_near_misses_total", "Writer-check rejections within the near-miss margin (step-up and alert).",
            registry=self.registry)
        self.writer_checks = Counter(
            "hwotp_writer_checks_total", "Writer checks by what judged the writer: image, or image+online "
            "(strokes of a user enrolled with strokes).", ["modalities"], registry=self.registry)
        self.inference_seconds = Histogram(
            "hwotp_inference_seconds", "Model inference time per batch.", ["model"],
            registry=self.registry, buckets=LATENCY_BUCKETS)
        self.batch_size = Histogram(
            "hwotp_inference_batch_size", "Digits per model inference.", ["model"],
            registry=self.registry, buckets=(1, 2, 4, 6, 8, 10, 16, 32, 64, 128))

        self.redis_memory_used = Gauge(
            "hwotp_redis_memory_used_bytes", "Memory Redis uses (as the challenge service last read it).",
            registry=self.registry)
        self.redis_memory_max = Gauge(
            "hwotp_redis_maxmemory_bytes", "Redis maxmemory (0: unbounded); writes are refused beyond it.",
            registry=self.registry)

    def serve(self, host: str, port: int) -> int:
        """Expose /metrics over HTTP; returns the bound port (port 0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port
