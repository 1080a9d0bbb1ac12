"""The settings of each service: environment variables read once into a frozen object.

Every setting has one owner: the shared server part (ServiceSettings), Redis
and model access (RedisSettings, ModelSettings) where a service uses them, and
one class per service. `python -m hwotp.config` prints them all as the
README's table.
"""

from __future__ import annotations

import os
import sys
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from typing import Mapping, TypeVar

from hwotp.affinity import parse_cpus


def _setting(env: str, default, doc: str):
    return field(default=default, metadata={"env": env, "doc": doc})


class ConfigError(ValueError):
    """A setting has a value the service cannot use."""


@dataclass(frozen=True)
class ServiceSettings:
    """What every service's server takes: address, TLS, limits, logging, CPUs."""

    host: str = _setting("HWOTP_HOST", "127.0.0.1", "Address every service binds to (0.0.0.0 in containers).")
    grace_s: float = _setting("HWOTP_GRACE_S", 5.0, "On SIGTERM: seconds in-flight calls get to finish.")
    max_message_bytes: int = _setting("HWOTP_MAX_MESSAGE_BYTES", 8 * 1024 * 1024, "Largest gRPC message a service accepts.")
    workers: int = _setting("HWOTP_WORKERS", 16, "gRPC worker threads per service.")
    max_concurrent_rpcs: int = _setting("HWOTP_MAX_CONCURRENT_RPCS", 64, "Calls a service holds at once (running or waiting for a worker); more are RESOURCE_EXHAUSTED at once.")
    connection_idle_s: int = _setting("HWOTP_CONNECTION_IDLE_S", 300, "A client connection without calls for this long is closed.")
    connection_age_s: int = _setting("HWOTP_CONNECTION_AGE_S", 1800, "A client connection is closed (gracefully, its calls get 30 s more) after this long, so no peer holds one forever.")
    health_port: int = _setting("HWOTP_HEALTH_PORT", 0, "A plaintext port serving only grpc.health.v1, for probes that cannot speak TLS (0: none).")
    log_level: str = _setting("HWOTP_LOG_LEVEL", "INFO", "Python logging level.")
    tls_cert: str = _setting("HWOTP_TLS_CERT", "", "PEM certificate: the service serves TLS (with HWOTP_TLS_KEY).")
    tls_key: str = _setting("HWOTP_TLS_KEY", "", "PEM private key of HWOTP_TLS_CERT.")
    tls_client_ca: str = _setting("HWOTP_TLS_CLIENT_CA", "", "PEM CA: the service requires client certificates it signed (mTLS).")
    cpus: str = _setting("HWOTP_CPUS", "", "CPUs the service's threads run on, like 0 or 0-1,4 (empty: any it may use). `python -m local.stack` gives each service its own share of the machine's CPUs unless this is set (BENCHMARKS.md: why).")

    @cached_property
    def cpu_set(self) -> frozenset[int]:
        """HWOTP_CPUS as CPU numbers, parsed once (validate() refuses a bad list)."""
        return parse_cpus(self.cpus)

    def validate(self):
        if min(self.max_concurrent_rpcs, self.connection_idle_s, self.connection_age_s) < 1:
            raise ConfigError("HWOTP_MAX_CONCURRENT_RPCS and the connection limits must be positive")
        try:
            cpus = self.cpu_set
        except ValueError as exc:
            raise ConfigError(f"HWOTP_CPUS: {exc}") from None
        usable = os.sched_getaffinity(0)
        if not cpus <= usable:
            raise ConfigError(f"HWOTP_CPUS names CPUs {sorted(cpus - usable)} this process may not run on "
                              f"(it may use {sorted(usable)})")
        return self


@dataclass(frozen=True)
class RedisSettings:
    """Where the services that keep state find Redis."""

    redis_url: str = _setting("HWOTP_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis for challenges and templates.")
    redis_sentinels: str = _setting("HWOTP_REDIS_SENTINELS", "", "Comma-separated host:port of Redis Sentinels; when set, the master is found through them (HWOTP_REDIS_URL then only gives password and db).")
    redis_master_name: str = _setting("HWOTP_REDIS_MASTER_NAME", "hwotp", "Sentinel name of the Redis master.")
    redis_cluster_nodes: str = _setting("HWOTP_REDIS_CLUSTER_NODES", "", "Comma-separated host:port seed nodes of a Redis Cluster; when set the services use the cluster client (HWOTP_REDIS_URL then only gives the password).")


@dataclass(frozen=True)
class ModelSettings:
    """Where the services that run a model find it."""

    models_dir: str = _setting("HWOTP_MODELS_DIR", "", "Folder with the ONNX files and models.json (default: the repository's models/).")
    onnx_threads: int = _setting("HWOTP_ONNX_THREADS", 1, "onnxruntime intra-op threads per model session.")


@dataclass(frozen=True)
class SubjectSettings:
    """The key that scopes users by relying party (the gateway's; hwotp.subjects)."""

    subject_key: str = _setting("HWOTP_SUBJECT_KEY", "", "Key of the keyed hash that scopes every user by relying party: base64 of 32 bytes (`python -m hwotp.subjects` makes one). Required by the gateway; changing it orphans every enrolment.")


@dataclass(frozen=True)
class GatewaySettings(ServiceSettings, SubjectSettings):
    gateway_port: int = _setting("HWOTP_GATEWAY_PORT", 50051, "Public gRPC port of the gateway (0: any free port).")
    gateway_metrics_port: int = _setting("HWOTP_GATEWAY_METRICS_PORT", 9101, "Prometheus port of the gateway (0: any free port).")
    recognizer_addr: str = _setting("HWOTP_RECOGNIZER_ADDR", "127.0.0.1:50052", "Where the gateway finds the recognizer (dns:/// targets balance over replicas).")
    verifier_addr: str = _setting("HWOTP_VERIFIER_ADDR", "127.0.0.1:50053", "Where the gateway finds the verifier.")
    challenge_addr: str = _setting("HWOTP_CHALLENGE_ADDR", "127.0.0.1:50054", "Where the gateway finds the challenge service.")
    internal_tls_ca: str = _setting("HWOTP_INTERNAL_TLS_CA", "", "PEM CA the gateway verifies the internal services with; set: it dials them over TLS.")
    internal_tls_cert: str = _setting("HWOTP_INTERNAL_TLS_CERT", "", "PEM client certificate the gateway presents to the internal services (mTLS).")
    internal_tls_key: str = _setting("HWOTP_INTERNAL_TLS_KEY", "", "PEM key of HWOTP_INTERNAL_TLS_CERT.")
    api_keys: str = _setting("HWOTP_API_KEYS", "", "Callers allowed to use the gateway: comma-separated name:sha256-hex-of-their-key (`python -m gateway.keys NAME` makes one). Required unless HWOTP_AUTH=off.")
    auth: str = _setting("HWOTP_AUTH", "api_key", "api_key: every gateway call must carry a registered key in x-api-key metadata; off: no caller check (local experiments only).")
    gateway_budget_ms: int = _setting("HWOTP_GATEWAY_BUDGET_MS", 3000, "Time budget of one gateway call; downstream deadlines are what remains of it.")
    admin_callers: str = _setting("HWOTP_ADMIN_CALLERS", "", "Comma-separated caller names (of HWOTP_API_KEYS) allowed to call ResetLockout.")
    caller_submits_per_min: int = _setting("HWOTP_CALLER_SUBMITS_PER_MIN", 6000, "SubmitChallenge calls per relying party per sliding minute, per gateway replica (bounds the decoding a caller can buy).")
    caller_enrols_per_min: int = _setting("HWOTP_CALLER_ENROLS_PER_MIN", 600, "Enroll calls per relying party per sliding minute, per gateway replica.")
    decode_concurrency: int = _setting("HWOTP_DECODE_CONCURRENCY", 0, "Requests whose images the gateway decodes at once (0: four per CPU it may use, which bounds memory without queueing a burst); others wait their turn within their budget.")
    enrol_min_per_digit: int = _setting("HWOTP_ENROL_MIN_PER_DIGIT", 3, "Enrolment samples required of every digit 0-9.")
    enrol_refuse_confidence: float = _setting("HWOTP_ENROL_REFUSE_CONFIDENCE", 0.8, "An enrolment sample the recognizer reads as another digit with at least this confidence is refused (the recognizer, trained with label smoothing, rarely exceeds 0.96).")
    enrol_max_per_digit: int = _setting("HWOTP_ENROL_MAX_PER_DIGIT", 10, "Enrolment samples accepted at most per digit.")
    alert_webhook_url: str = _setting("HWOTP_ALERT_WEBHOOK_URL", "", "The relying party's endpoint for near-miss alerts (JSON POST, HMAC-signed); empty: audit event only.")
    alert_webhook_secret: str = _setting("HWOTP_ALERT_WEBHOOK_SECRET", "", "HMAC-SHA256 key signing alert bodies (X-Hwotp-Signature: sha256=<hex>).")

    def validate(self):
        super().validate()
        if self.auth not in ("api_key", "off"):
            raise ConfigError("HWOTP_AUTH must be api_key or off")
        if not self.subject_key:
            raise ConfigError("HWOTP_SUBJECT_KEY is required by the gateway (python -m hwotp.subjects makes one)")
        if self.alert_webhook_url and not self.alert_webhook_secret:
            raise ConfigError("HWOTP_ALERT_WEBHOOK_URL needs HWOTP_ALERT_WEBHOOK_SECRET to sign the alerts")
        if self.enrol_min_per_digit < 1 or self.enrol_max_per_digit < self.enrol_min_per_digit:
            raise ConfigError("HWOTP_ENROL_MIN_PER_DIGIT must be >= 1 and <= HWOTP_ENROL_MAX_PER_DIGIT")
        if min(self.caller_submits_per_min, self.caller_enrols_per_min) < 1 or self.decode_concurrency < 0:
            raise ConfigError("caller rates must be positive and HWOTP_DECODE_CONCURRENCY not negative")
        return self


@dataclass(frozen=True)
class RecognizerSettings(ServiceSettings, ModelSettings):
    recognizer_port: int = _setting("HWOTP_RECOGNIZER_PORT", 50052, "gRPC port of the recognizer.")
    recognizer_metrics_port: int = _setting("HWOTP_RECOGNIZER_METRICS_PORT", 9102, "Prometheus port of the recognizer.")


@dataclass(frozen=True)
class VerifierSettings(ServiceSettings, RedisSettings, ModelSettings):
    verifier_port: int = _setting("HWOTP_VERIFIER_PORT", 50053, "gRPC port of the verifier.")
    verifier_metrics_port: int = _setting("HWOTP_VERIFIER_METRICS_PORT", 9103, "Prometheus port of the verifier.")
    template_keys: str = _setting("HWOTP_TEMPLATE_KEYS", "", "Keys sealing templates and fingerprints in Redis (AES-256-GCM): comma-separated kid:base64-of-32-bytes (`python -m hwotp.sealing KID` makes one). Required by the verifier.")
    template_key_id: str = _setting("HWOTP_TEMPLATE_KEY_ID", "", "The kid new data is sealed with (default: the first of HWOTP_TEMPLATE_KEYS); older kids still open.")
    writer_policy: str = _setting("HWOTP_WRITER_POLICY", "fused_mean", "Writer check: fused_mean (the mean of the boxes' scores passes the threshold, and no box is at or below HWOTP_BOX_FLOOR) or all_pass (every box passes its threshold).")
    target_far: float = _setting("HWOTP_TARGET_FAR", 0.0, "Target false-accept rate whose calibrated thresholds the verifier uses: 0.01 or 0.001 (0: the default in models.json).")
    replay_threshold: float = _setting("HWOTP_REPLAY_THRESHOLD", 0.98, "A box whose fingerprint has at least this cosine similarity with one of the user's earlier boxes is a replay (chosen on validation writers: SECURITY.md); above 1 turns the check off.")
    replica_wait_ms: int = _setting("HWOTP_REPLICA_WAIT_MS", 1000, "An enrolment or deletion is acknowledged only once a Redis replica has it, when the primary has replicas; after this long without one the call fails UNAVAILABLE (it may or may not have been kept: check and retry).")
    replay_history_days: int = _setting("HWOTP_REPLAY_HISTORY_DAYS", 90, "Days the boxes of an accepted answer stay in the user's replay history (the enrolment's stay as long as the enrolment; rejected answers never join).")
    box_floor: float = _setting("HWOTP_BOX_FLOOR", -4.0, "Under fused_mean, no box may score at or below this (calibrated log-likelihood ratio): a box that is clearly someone else's writing fails the attempt, whatever the others score.")
    near_miss_margin: float = _setting("HWOTP_NEAR_MISS_MARGIN", 1.0, "A writer-check rejection whose failing digits all score within this margin below the threshold (calibrated LLR units) is a near miss: step-up and an alert follow.")
    store_enrolment_images: bool = _setting("HWOTP_STORE_ENROLMENT_IMAGES", False, "Keep the enrolment images, sealed like the templates, so users can be re-enrolled after a model upgrade without writing again.")
    display_templates: bool = _setting("HWOTP_DISPLAY_TEMPLATES", False, "Keep one enrolment image per digit (sealed) and return the challenge digits' images with BeginChallenge, so users write in a consistent shape; it shows the user's handwriting to whoever holds the device.")

    def validate(self):
        super().validate()
        if self.writer_policy not in ("all_pass", "fused_mean"):
            raise ConfigError("HWOTP_WRITER_POLICY must be all_pass or fused_mean")
        if self.replay_threshold <= 0 or self.replay_history_days < 1:
            raise ConfigError("HWOTP_REPLAY_THRESHOLD must be positive and HWOTP_REPLAY_HISTORY_DAYS at least 1")
        if self.near_miss_margin < 0:
            raise ConfigError("HWOTP_NEAR_MISS_MARGIN must not be negative")
        return self


@dataclass(frozen=True)
class ChallengeSettings(ServiceSettings, RedisSettings):
    challenge_port: int = _setting("HWOTP_CHALLENGE_PORT", 50054, "gRPC port of the challenge service.")
    challenge_metrics_port: int = _setting("HWOTP_CHALLENGE_METRICS_PORT", 9104, "Prometheus port of the challenge service.")
    challenge_length: int = _setting("HWOTP_CHALLENGE_LENGTH", 6, "Default number of digits of a challenge (4-10).")
    challenge_time_limit_s: int = _setting("HWOTP_CHALLENGE_TIME_LIMIT_S", 60, "Time to answer a challenge; also its TTL in Redis.")
    lockout_throttle_after: int = _setting("HWOTP_LOCKOUT_THROTTLE_AFTER", 5, "Consecutive failed submissions after which challenges are delayed and stepped up, and answers judged at the strictest calibrated target FAR.")
    lockout_delay_ms: int = _setting("HWOTP_LOCKOUT_DELAY_MS", 30000, "Delay after HWOTP_LOCKOUT_THROTTLE_AFTER failures; it grows by as much with every further failure.")
    lockout_disable_after: int = _setting("HWOTP_LOCKOUT_DISABLE_AFTER", 50, "Consecutive failures after which the handwriting factor is disabled until an administrative reset.")
    rate_window_s: int = _setting("HWOTP_RATE_WINDOW_S", 60, "Sliding window of the challenge issuance rate limits.")
    rate_per_user: int = _setting("HWOTP_RATE_PER_USER", 10, "Challenges issued per user per window.")
    rate_per_caller: int = _setting("HWOTP_RATE_PER_CALLER", 6000, "Challenges issued per calling relying party per window.")
    max_pending_challenges: int = _setting("HWOTP_MAX_PENDING_CHALLENGES", 3, "Unanswered challenges a user may hold; issuing one more cancels the oldest (answered: EXPIRED).")
    owner_token_ttl_s: int = _setting("HWOTP_OWNER_TOKEN_TTL_S", 300, "Life of the owner token an accepted login returns (proof for a re-enrolment, repositioning or deletion).")
    stepup_extra_digits: int = _setting("HWOTP_STEPUP_EXTRA_DIGITS", 2, "Digits added to the challenges of a user in step-up.")
    stepup_max_length: int = _setting("HWOTP_STEPUP_MAX_LENGTH", 10, "Longest challenge step-up asks for.")
    stepup_ttl_s: int = _setting("HWOTP_STEPUP_TTL_S", 86400, "How long step-up lasts without a success.")
    stepup_decoy_rate: float = _setting("HWOTP_STEPUP_DECOY_RATE", 0.1, "Share of challenges of users not in step-up that are made as long and flagged stepped_up all the same, so that the flag does not tell an impostor their attempt came close.")

    def validate(self):
        super().validate()
        if not 4 <= self.challenge_length <= 10:
            raise ConfigError("HWOTP_CHALLENGE_LENGTH must be between 4 and 10")
        if self.challenge_time_limit_s < 1:
            raise ConfigError("HWOTP_CHALLENGE_TIME_LIMIT_S must be at least 1")
        if not 1 <= self.lockout_throttle_after <= self.lockout_disable_after:
            raise ConfigError("HWOTP_LOCKOUT_THROTTLE_AFTER must be between 1 and HWOTP_LOCKOUT_DISABLE_AFTER")
        if min(self.lockout_delay_ms, self.rate_window_s, self.rate_per_user, self.rate_per_caller,
               self.max_pending_challenges, self.owner_token_ttl_s) < 1:
            raise ConfigError("lockout delay, rate limits, pending challenges and owner token life must be positive")
        if not 4 <= self.stepup_max_length <= 10 or self.stepup_extra_digits < 0:
            raise ConfigError("HWOTP_STEPUP_MAX_LENGTH must be 4-10 and HWOTP_STEPUP_EXTRA_DIGITS not negative")
        if not 0 <= self.stepup_decoy_rate <= 1:
            raise ConfigError("HWOTP_STEPUP_DECOY_RATE must be between 0 and 1")
        return self


SERVICES = {"gateway": GatewaySettings, "recognizer": RecognizerSettings, "verifier": VerifierSettings,
            "challenge": ChallengeSettings}
T = TypeVar("T")


def _boolean(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def load(kind: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Read the HWOTP_* variables `kind` owns, once; a bad value stops the process with a clear message."""
    environ = os.environ if environ is None else environ
    values = {}
    for item in fields(kind):
        raw = environ.get(item.metadata["env"])
        if raw is None or raw == "":
            continue
        type_ = type(item.default)
        try:
            values[item.name] = _boolean(raw) if type_ is bool else type_(raw)
        except ValueError:
            raise ConfigError(f"{item.metadata['env']}={raw!r} is not a valid {type_.__name__}") from None
    made = kind(**values)
    return made.validate() if hasattr(made, "validate") else made


def markdown_table() -> str:
    """Every setting once, with the services that read it."""
    readers: dict[str, list[str]] = {}
    rows = {}
    for service, kind in SERVICES.items():
        for item in fields(kind):
            env = item.metadata["env"]
            readers.setdefault(env, []).append(service)
            rows[env] = item
    table = ["| variable | default | read by | meaning |", "|---|---|---|---|"]
    order = list(SERVICES)
    # settings every service reads first, then those of some, then each service's own
    for env, item in sorted(rows.items(), key=lambda kv: (-len(readers[kv[0]]), order.index(readers[kv[0]][0]))):
        default = "" if item.default is MISSING else item.default
        who = "every service" if len(readers[env]) == len(SERVICES) else ", ".join(readers[env])
        table.append(f"| `{env}` | `{default}` | {who} | {item.metadata['doc']} |")
    return "\n".join(table)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
