"""TLS: every service serves TLS and demands client certificates (mTLS); the gateway dials the
internal services with its own certificate; plaintext and certificate-less callers get nowhere."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hwotp import tls
from hwotp.client import gateway_channel, gateway_stub
from hwotp.v1 import gateway_pb2
from local.redis_server import free_port
from tests.certs import make_pki
from tests.conftest import begin, start_stack, submit

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    pki = make_pki(directory)
    running = start_stack(directory / "stack", HWOTP_TLS_CERT=pki["server_cert"], HWOTP_TLS_KEY=pki["server_key"],
                          HWOTP_TLS_CLIENT_CA=pki["ca"], HWOTP_INTERNAL_TLS_CA=pki["ca"],
                          HWOTP_INTERNAL_TLS_CERT=pki["client_cert"], HWOTP_INTERNAL_TLS_KEY=pki["client_key"])
    yield running, pki
    running.stop()


def test_login_over_mutual_tls(tls_stack, writers):
    running, _ = tls_stack
    with gateway_channel(running.gateway, running.api_key, running.credentials) as channel:
        gateway = gateway_stub(channel)
        gateway.Enroll(writers[0].enrolment("tls-user"), timeout=30)
        challenge = begin(gateway, "tls-user")
        answer = submit(gateway, "tls-user", challenge, writers[0].write(challenge.digits, np.random.default_rng(1)))
        assert answer.decision == gateway_pb2.ACCEPT


@pytest.mark.parametrize("service", ["gateway", "recognizer", "verifier", "challenge"])
def test_plaintext_and_certificateless_callers_are_refused(tls_stack, service):
    running, pki = tls_stack
    address = running.services[service].address
    for channel in (grpc.insecure_channel(address), grpc.secure_channel(address, tls.channel_credentials(pki["ca"]))):
        with channel:
            with pytest.raises(grpc.RpcError) as error:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_gateway_serving_tls_answers_probes_on_its_plaintext_health_port(tls_stack):
    """As in production: Kubernetes' gRPC probes speak no TLS, the API port speaks nothing else."""
    running, _ = tls_stack
    health_port = free_port()
    running.env["HWOTP_HEALTH_PORT"] = str(health_port)
    try:
        probed = running.start_service("gateway-probed", "gateway", role="gateway")
    finally:
        del running.env["HWOTP_HEALTH_PORT"]
    with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "liveness"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as error:  # health is all this port serves
            gateway_stub(channel).BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id="x"), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with grpc.insecure_channel(probed.address) as channel, pytest.raises(grpc.RpcError) as error:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
