"""python -m gateway: connect to the internal services, then serve the public API."""

import os

from gateway.admission import Admission
from gateway.alerts import WebhookNotifier
from gateway.auth import ApiKeyInterceptor, ApiKeys
from gateway.downstream import Channels
from gateway.flow import LoginFlow
from gateway.servicer import GatewayServicer
from hwotp import config, logs
from hwotp.metrics import Metrics
from hwotp.server import Registration, Service
from hwotp.subjects import Subjects, parse_key
from hwotp.v1 import gateway_pb2, gateway_pb2_grpc


def main() -> None:
    settings = config.load(config.GatewaySettings)
    logs.configure(settings.log_level)
    metrics = Metrics("gateway")
    keys = None if settings.auth == "off" else ApiKeys(settings.api_keys)
    subjects = Subjects(parse_key(settings.subject_key))
    admission = Admission(settings.caller_submits_per_min, settings.caller_enrols_per_min,
                          settings.decode_concurrency or 4 * len(settings.cpu_set or os.sched_getaffinity(0)))
    interceptors = [ApiKeyInterceptor(keys, metrics)] if keys else []
    downstream = Channels(settings)
    name = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"].full_name
    alerts = WebhookNotifier(settings.alert_webhook_url, settings.alert_webhook_secret) \
        if settings.alert_webhook_url else None
    flow = LoginFlow(settings, downstream.challenges, downstream.recognizer, downstream.verifier, subjects, admission,
                     metrics, alerts)
    servicer = GatewayServicer(flow, keys, settings.gateway_budget_ms)
    try:
        Service("gateway", settings, settings.gateway_port, settings.gateway_metrics_port,
                [Registration(gateway_pb2_grpc.add_GatewayServicer_to_server, servicer, name)], metrics,
                interceptors=interceptors).run()
    finally:
        downstream.close()


if __name__ == "__main__":
    main()
