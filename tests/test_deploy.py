"""The Kubernetes manifests, checked without a cluster: both overlays build, validate strictly
against the Kubernetes schemas, and have the properties hwotp's deployment relies on."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from local import dev_secrets

pytestmark = pytest.mark.integration  # starts processes

REPO = Path(__file__).resolve().parent.parent
OVERLAYS = ("dev", "prod", "prod-cluster")
# Where each overlay's Redis lives, and the ports the services reach it on.
REDIS = {"dev": ("redis", {"6379"}), "prod": ("redis-ha", {"6379", "26379"}), "prod-cluster": ("redis-cluster", {"6379"})}
STATELESS = ("gateway", "recognizer", "verifier", "challenge")
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
DEV_SECRETS = dev_secrets.DEFAULT
# What each service's own Secret holds, and nothing more.
SECRETS = {"gateway": {"HWOTP_API_KEYS", "HWOTP_SUBJECT_KEY"},
           "verifier": {"HWOTP_TEMPLATE_KEYS", "HWOTP_REDIS_URL"},
           "challenge": {"HWOTP_REDIS_URL"}, "redis": {"REDIS_PASSWORD"}}  # CRDs of the Prometheus operator: no bundled schema


def build(overlay: str) -> list[dict]:
    if overlay == "dev" and not DEV_SECRETS.exists():
        dev_secrets.write(DEV_SECRETS)  # fresh keys, never committed
    out = subprocess.run(["kubectl", "kustomize", str(REPO / "deploy" / "k8s" / "overlays" / overlay)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request) -> tuple[str, list[dict]]:
    return request.param, build(request.param)


def of_kind(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def settings(objects) -> dict:
    return of_kind(objects, "ConfigMap")["hwotp-settings"]["data"]


def test_every_object_validates_strictly(objects):
    _, docs = objects
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, "1.33", strict=True)
            continue
        kubernetes_validate.validate(doc, "1.33", strict=True)


def test_deployments_have_probes_resources_and_hardening(objects):
    _, docs = objects
    grace = float(settings(docs)["HWOTP_GRACE_S"])
    deployments = of_kind(docs, "Deployment")
    assert set(deployments) == set(STATELESS)
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["terminationGracePeriodSeconds"] > grace
        (container,) = pod["containers"]
        # the gateway's probes use its plaintext health port, as its gRPC port may serve TLS
        probe_port = "health" if name == "gateway" else "grpc"
        port = next(p["containerPort"] for p in container["ports"] if p["name"] == probe_port)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == port, f"{name} {probe}"
        if name == "gateway":
            assert {"name": "HWOTP_HEALTH_PORT", "value": str(port)} in container["env"]
        assert container["livenessProbe"]["grpc"]["service"] == "liveness"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{name} {kind}"
        hardening = container["securityContext"]
        assert hardening["readOnlyRootFilesystem"] is True
        assert hardening["allowPrivilegeEscalation"] is False
        assert hardening["capabilities"]["drop"] == ["ALL"]


def test_every_stateless_service_has_an_hpa_and_a_pdb(objects):
    _, docs = objects
    hpas, pdbs = of_kind(docs, "HorizontalPodAutoscaler"), of_kind(docs, "PodDisruptionBudget")
    for name in STATELESS:
        hpa = hpas[name]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert hpa["spec"]["minReplicas"] >= 2
        assert pdbs[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}


def test_ports_agree_between_deployments_services_and_settings(objects):
    _, docs = objects
    config, services = settings(docs), of_kind(docs, "Service")
    for name, deployment in of_kind(docs, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"] if p["name"] != "health"}
        assert ports["grpc"] == int(config[f"HWOTP_{name.upper()}_PORT"])
        assert ports["metrics"] == int(config[f"HWOTP_{name.upper()}_METRICS_PORT"])
        service_ports = {p["name"]: p["port"] for p in services[name]["spec"]["ports"]}
        if name == "gateway":  # the public Service carries the API alone
            assert service_ports == {"grpc": ports["grpc"]}
            service_ports |= {p["name"]: p["port"] for p in services["gateway-metrics"]["spec"]["ports"]}
        assert service_ports == ports
        assert container["image"].split("/")[-1].startswith("hwotp:")
        if name != "gateway":
            # the gateway reaches every replica: dns:/// on a headless Service
            assert services[name]["spec"]["clusterIP"] == "None"
            assert config[f"HWOTP_{name.upper()}_ADDR"] == f"dns:///{name}.hwotp.svc.cluster.local:{ports['grpc']}"


def _peer(peer) -> object:
    if "ipBlock" in peer:
        return ("cidr", peer["ipBlock"]["cidr"])
    return (frozenset(peer.get("podSelector", {}).get("matchLabels", {}).items()) or
            ("namespace", peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")))


def _rules(policy, direction: str = "ingress") -> list[tuple[set, set]]:
    side = "from" if direction == "ingress" else "to"
    return [({_peer(p) for p in rule.get(side, [])} or {"anywhere"}, {str(p["port"]) for p in rule.get("ports", [])})
            for rule in policy["spec"].get(direction, [])]


_ingress_sources = _rules


def _pods(*names):
    return {frozenset({("app.kubernetes.io/name", n)}) for n in names}


def test_network_policies_allow_exactly_the_needed_flows(objects):
    overlay, docs = objects
    policies = of_kind(docs, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert policies["default-deny-egress"]["spec"] == {"podSelector": {}, "policyTypes": ["Egress"]}
    scrape = ({("namespace", "monitoring")}, {"metrics"})
    callers = {"anywhere"} if overlay == "dev" else {("cidr", "192.0.2.0/24"), ("cidr", "198.51.100.0/24")}
    assert _ingress_sources(policies["gateway"]) == [(callers, {"grpc"}), scrape]
    assert _rules(policies["gateway"], "egress")[0] == (_pods("recognizer", "verifier", "challenge"),
                                                        {"50052", "50053", "50054"})
    assert _rules(policies["gateway"], "egress")[1][1] == {"443"}  # the alert webhook
    assert _rules(policies["recognizer"], "egress") == []
    redis = REDIS[overlay]
    for name in ("verifier", "challenge"):
        assert _rules(policies[name], "egress") == [(_pods(redis[0]), redis[1])]
    for name in ("recognizer", "verifier", "challenge"):
        assert _ingress_sources(policies[name]) == [(_pods("gateway"), {"grpc"}), scrape]
    assert {name for name in policies if name.startswith("redis")} <= {redis[0], f"{redis[0]}-create"}
    if overlay == "dev":
        assert _ingress_sources(policies["redis"]) == [(_pods("verifier", "challenge"), {"6379"})]
    elif overlay == "prod":
        assert _ingress_sources(policies["redis-ha"]) == [(_pods("verifier", "challenge", "redis-ha"), {"6379", "26379"})]
    else:  # the cluster bus only among the nodes; the create Job reaches Redis and nothing else
        assert _ingress_sources(policies["redis-cluster"]) == [
            (_pods("verifier", "challenge", "redis-cluster-create", "redis-cluster"), {"6379"}),
            (_pods("redis-cluster"), {"16379"})]
        assert _rules(policies["redis-cluster-create"], "egress") == [(_pods("redis-cluster"), {"6379"})]


def test_only_the_gateway_is_exposed(objects):
    overlay, docs = objects
    for name, service in of_kind(docs, "Service").items():
        kind = service["spec"].get("type", "ClusterIP")
        if name == "gateway" and overlay != "dev":
            assert kind == "LoadBalancer"
            assert service["spec"]["loadBalancerSourceRanges"] and service["spec"]["externalTrafficPolicy"] == "Local"
            assert [p["name"] for p in service["spec"]["ports"]] == ["grpc"]
        else:
            assert kind == "ClusterIP", name


def test_prod_gateway_serves_tls_itself(objects):
    overlay, docs = objects
    pod = of_kind(docs, "Deployment")["gateway"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    if overlay == "dev":
        assert "HWOTP_TLS_CERT" not in env
        return
    assert (env["HWOTP_TLS_CERT"], env["HWOTP_TLS_KEY"]) == ("/tls/tls.crt", "/tls/tls.key")
    assert {"name": "tls", "secret": {"secretName": "gateway-tls"}} in pod["volumes"]


def test_redis_persists_and_prod_has_sentinel(objects):
    overlay, docs = objects
    sets = of_kind(docs, "StatefulSet")
    if overlay == "dev":
        redis = sets["redis"]
        (container,) = redis["spec"]["template"]["spec"]["containers"]
        command = " ".join(container["command"])
        assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
        assert "--requirepass" not in command and "REDIS_PASSWORD)" not in command  # never in arguments
        assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        return
    if overlay == "prod-cluster":
        assert set(sets) == {"redis-cluster"} and sets["redis-cluster"]["spec"]["replicas"] == 6
        scripts = next(c for n, c in of_kind(docs, "ConfigMap").items() if n.startswith("redis-cluster-scripts"))
        node = scripts["data"]["start-node.sh"]
        assert "--appendonly yes --appendfsync always" in node and "--maxmemory-policy noeviction" in node
        assert "--cluster-enabled yes" in node and "--requirepass" not in node
        assert "--cluster-replicas 1" in scripts["data"]["create-cluster.sh"]
        assert of_kind(docs, "Job")["redis-cluster-create"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
        config = settings(docs)
        assert "HWOTP_REDIS_SENTINELS" not in config
        assert config["HWOTP_REDIS_CLUSTER_NODES"].split(",") == [
            f"redis-cluster-{i}.redis-cluster.hwotp.svc.cluster.local:6379" for i in range(3)]
        return
    redis = sets["redis-ha"]
    assert redis["spec"]["replicas"] == 3
    assert {c["name"] for c in redis["spec"]["template"]["spec"]["containers"]} == {"redis", "sentinel"}
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    scripts = next(c for n, c in of_kind(docs, "ConfigMap").items() if n.startswith("redis-ha-scripts"))["data"]
    assert "--appendonly yes --appendfsync always" in scripts["start-redis.sh"]
    assert "--maxmemory-policy noeviction" in scripts["start-redis.sh"]
    assert "--requirepass" not in scripts["start-redis.sh"]  # the password goes into a file
    assert "sentinel monitor hwotp $MASTER 6379 2" in scripts["start-sentinel.sh"]
    assert "requirepass $REDIS_PASSWORD" in scripts["start-sentinel.sh"]  # Sentinel asks for it too
    sentinels = settings(docs)["HWOTP_REDIS_SENTINELS"].split(",")
    assert sentinels == [f"redis-ha-{i}.redis-ha.hwotp.svc.cluster.local:26379" for i in range(3)]
    assert settings(docs)["HWOTP_REDIS_MASTER_NAME"] == "hwotp"


def test_monitoring_covers_every_service(objects):
    _, docs = objects
    monitors = of_kind(docs, "ServiceMonitor")
    for name in STATELESS:
        expected = {"app.kubernetes.io/name": name}
        if name == "gateway":  # its metrics Service, not the public one
            expected["app.kubernetes.io/component"] = "metrics"
        assert monitors[name]["spec"]["selector"]["matchLabels"] == expected
        assert monitors[name]["spec"]["endpoints"][0]["port"] == "metrics"
    alerts = {r["alert"] for g in of_kind(docs, "PrometheusRule")["hwotp"]["spec"]["groups"] for r in g["rules"]}
    assert alerts == {"HwotpErrorRatioHigh", "HwotpLatencyP99High", "HwotpWriterRejectionSpike",
                      "HwotpLockoutSpike", "HwotpNoReadyPods", "HwotpRedisMemoryHigh"}
    dashboard = json.loads(of_kind(docs, "ConfigMap")["hwotp-grafana-dashboard"]["data"]["hwotp.json"])
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in ("hwotp_decisions_total", "hwotp_rpc_duration_seconds_bucket", "hwotp_inference_seconds_bucket"):
        assert metric in queries


def test_each_service_gets_only_its_own_secrets_none_inlined_none_committed(objects):
    overlay, docs = objects
    assert not any("REDIS_URL" in k or "PASSWORD" in k or "API_KEYS" in k or "KEY" in k for k in settings(docs))
    for name in STATELESS:
        (container,) = of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"]
        refs = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
        assert refs == ([f"hwotp-{name}-secrets"] if name in SECRETS else []), name
    secrets = of_kind(docs, "Secret")
    if overlay != "dev":  # created out of band
        assert not secrets
        return
    assert {name: set(secret["data"]) for name, secret in secrets.items()} == \
        {f"hwotp-{name}-secrets": keys for name, keys in SECRETS.items()}
    tracked = subprocess.run(["git", "ls-files", "deploy"], cwd=REPO, capture_output=True, text=True).stdout
    assert "secrets/" not in tracked


def test_dockerfile_builds_a_lean_non_root_image():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) == 2  # multi-stage
    assert "grpc_tools.protoc" in dockerfile  # stubs generated at build time
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and not any("torch" in line or "[" in line for line in installs)  # runtime only
    assert re.search(r"^USER 10001$", dockerfile, re.M)
    assert '"/usr/bin/tini", "--"' in dockerfile
    # every file models.json names goes into the image (a missing cohort stops the verifier)
    meta = json.loads((REPO / "models" / "models.json").read_text())
    named = {m.group(1) for m in re.finditer(r'"file": "([^"]+)"', json.dumps(meta))}
    assert {"recognizer.onnx", "verifier.onnx", "online-verifier.onnx", "cohort-strokes.npz"} <= named
    for file in named | {"signature.json"}:  # the signature verifier's settings, a file of their own
        assert f"models/{file}" in dockerfile, f"{file} is not copied into the image"
