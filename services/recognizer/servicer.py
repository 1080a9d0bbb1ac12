"""Recognizer gRPC servicer: protobuf in, domain call, protobuf out."""

from __future__ import annotations

from hwotp import boxes
from hwotp.errors import InvalidInput
from hwotp.internal.v1 import recognizer_pb2, recognizer_pb2_grpc
from services.recognizer.recognition import DigitRecognizer

MAX_BOXES = 128


class RecognizerServicer(recognizer_pb2_grpc.RecognizerServiceServicer):
    def __init__(self, recognizer: DigitRecognizer):
        self.recognizer = recognizer

    def Recognize(self, request, context):
        if len(request.boxes) > MAX_BOXES:
            raise InvalidInput(f"{len(request.boxes)} boxes; at most {MAX_BOXES} per request")
        fields, _, _ = boxes.to_batch(request.boxes)
        digits, confidences = self.recognizer.recognize(fields, boxes.paths_of(request.boxes))
        return recognizer_pb2.RecognizeResponse(
            results=[recognizer_pb2.Recognition(digit=int(d), confidence=float(c)) for d, c in zip(digits, confidences)],
            model_version=self.recognizer.version,
        )
