"""python -m services.recognizer: load the model, then serve."""

from hwotp import config, logs
from hwotp.internal.v1 import recognizer_pb2, recognizer_pb2_grpc
from hwotp.metrics import Metrics
from hwotp.models import ModelBundle
from hwotp.server import Registration, Service
from services.recognizer.recognition import DigitRecognizer
from services.recognizer.servicer import RecognizerServicer


def main() -> None:
    settings = config.load(config.RecognizerSettings)
    logs.configure(settings.log_level)
    bundle = ModelBundle.load(settings.models_dir or None, threads=settings.onnx_threads)
    metrics = Metrics("recognizer")
    online = (bundle.online_recognizer, bundle.path_weight) if bundle.has_online_recognizer else (None, 0.0)
    recognizer = DigitRecognizer(bundle.recognizer, bundle.recognizer_version, metrics, *online)
    name = recognizer_pb2.DESCRIPTOR.services_by_name["RecognizerService"].full_name
    servicer = RecognizerServicer(recognizer)
    Service("recognizer", settings, settings.recognizer_port, settings.recognizer_metrics_port,
            [Registration(recognizer_pb2_grpc.add_RecognizerServiceServicer_to_server, servicer, name)], metrics).run()


if __name__ == "__main__":
    main()
