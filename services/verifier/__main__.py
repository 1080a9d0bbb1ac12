"""python -m services.verifier: load the model, connect to Redis, then serve."""

from hwotp import config, logs, redis_client
from hwotp.internal.v1 import verifier_pb2, verifier_pb2_grpc
from hwotp.metrics import Metrics
from hwotp.models import ModelBundle, models_dir
from hwotp.signature import SignatureModel
from hwotp.sealing import Sealer
from hwotp.server import Registration, Service
from services.verifier.servicer import VerifierServicer
from services.verifier.signatures import SignatureVerifier
from services.verifier.templates import TemplateStore
from services.verifier.verification import WriterVerifier


def main() -> None:
    settings = config.load(config.VerifierSettings)
    logs.configure(settings.log_level)
    bundle = ModelBundle.load(settings.models_dir or None, threads=settings.onnx_threads)
    metrics = Metrics("verifier")
    client = redis_client.connect(settings)
    sealer = Sealer.from_settings(settings.template_keys, settings.template_key_id)
    store = TemplateStore(client, sealer, settings.replay_history_days, replica_wait_ms=settings.replica_wait_ms)
    verifier = WriterVerifier(bundle, store, metrics,
                              settings.writer_policy, settings.replay_threshold, settings.target_far or None,
                              settings.store_enrolment_images, settings.display_templates, settings.near_miss_margin,
                              settings.workers, settings.box_floor)
    signatures = SignatureVerifier(SignatureModel.load(models_dir(settings.models_dir or None)), store)
    name = verifier_pb2.DESCRIPTOR.services_by_name["VerifierService"].full_name
    Service("verifier", settings, settings.verifier_port, settings.verifier_metrics_port,
            [Registration(verifier_pb2_grpc.add_VerifierServiceServicer_to_server,
                          VerifierServicer(verifier, signatures), name)],
            metrics, ready=lambda: redis_client.is_up(client)).run()


if __name__ == "__main__":
    main()
