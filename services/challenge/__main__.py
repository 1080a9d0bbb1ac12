"""python -m services.challenge: connect to Redis, then serve."""

from hwotp import config, logs, redis_client
from hwotp.internal.v1 import challenge_pb2, challenge_pb2_grpc
from hwotp.metrics import Metrics
from hwotp.server import Registration, Service
from services.challenge.servicer import ChallengeServicer
from services.challenge.store import ChallengeStore, Limits


def main() -> None:
    settings = config.load(config.ChallengeSettings)
    logs.configure(settings.log_level)
    client = redis_client.connect(settings)
    metrics = Metrics("challenge")
    name = challenge_pb2.DESCRIPTOR.services_by_name["ChallengeService"].full_name
    limits = Limits(settings.lockout_throttle_after, settings.lockout_delay_ms, settings.lockout_disable_after,
                    settings.rate_window_s, settings.rate_per_user, settings.rate_per_caller,
                    settings.stepup_extra_digits, settings.stepup_max_length, settings.stepup_ttl_s,
                    settings.stepup_decoy_rate, settings.max_pending_challenges, settings.owner_token_ttl_s)
    servicer = ChallengeServicer(ChallengeStore(client, limits), settings)
    Service("challenge", settings, settings.challenge_port, settings.challenge_metrics_port,
            [Registration(challenge_pb2_grpc.add_ChallengeServiceServicer_to_server, servicer, name)],
            metrics, ready=lambda: redis_client.is_up(client, metrics)).run()


if __name__ == "__main__":
    main()
