"""Verifier gRPC servicer: protobuf in, domain call, protobuf out."""

from __future__ import annotations

import numpy as np

from hwotp import boxes, strokes
from hwotp.errors import InvalidInput, NotFound
from hwotp.internal.v1 import box_pb2, verifier_pb2, verifier_pb2_grpc
from hwotp.outcomes import SCAN, STROKES
from services.verifier.signatures import SignatureVerifier
from services.verifier.verification import WriterVerifier

MAX_BOXES = 128
_DOMAIN = {box_pb2.DOMAIN_SCAN: SCAN, box_pb2.DOMAIN_STROKES: STROKES}


def _subject(request) -> str:
    if not request.subject:
        raise InvalidInput("subject is missing")
    return request.subject


def _batch(request):
    if len(request.boxes) > MAX_BOXES:
        raise InvalidInput(f"{len(request.boxes)} boxes; at most {MAX_BOXES} per request")
    return boxes.to_batch(request.boxes)


def _signature(data: bytes, where: str):
    """A serialized hwotp.v1.Handwriting -> its strokes as (n, 6) arrays (hwotp.strokes.to_points)."""
    return strokes.to_points(strokes.deserialized(data, where), where)


class VerifierServicer(verifier_pb2_grpc.VerifierServiceServicer):
    def __init__(self, verifier: WriterVerifier, signatures: SignatureVerifier):
        self.verifier, self.signatures = verifier, signatures

    def Enroll(self, request, context):
        fields, fingerprints, known = _batch(request)
        if request.originals and len(request.originals) != len(fields):
            raise InvalidInput(f"{len(request.originals)} originals for {len(fields)} boxes")
        if request.trajectories and len(request.trajectories) != len(fields):
            raise InvalidInput(f"{len(request.trajectories)} trajectories for {len(fields)} boxes")
        designated = list(request.display_samples)
        if any(i >= len(fields) for i in designated) or \
                len({request.digits[i] for i in designated}) != len(designated):
            raise InvalidInput("display_samples must index distinct digits' samples")
        templates = self.verifier.enrol(_subject(request), fields, list(request.digits), fingerprints[known],
                                        list(request.originals), list(request.trajectories), designated,
                                        replace=request.replace, paths=boxes.paths_of(request.boxes))
        return verifier_pb2.EnrollResponse(model_version=templates.model_version, samples=templates.samples)

    def Verify(self, request, context):
        fields, fingerprints, known = _batch(request)
        verdict = self.verifier.verify(_subject(request), fields, list(request.digits), fingerprints[known],
                                       _DOMAIN.get(request.domain, SCAN), boxes.paths_of(request.boxes),
                                       request.strict)
        replayed = np.zeros(len(fields), dtype=bool)
        replayed[known] = verdict.replayed
        return verifier_pb2.VerifyResponse(
            scores=verdict.scores.tolist(), passed=verdict.passed.tolist(), writer_ok=verdict.writer_ok,
            model_version=self.verifier.version, policy=self.verifier.policy, replayed=replayed.tolist(),
            expected_digits=verdict.expected.tolist(), near_miss=verdict.near_miss, modalities=verdict.modalities)

    def GetEnrollment(self, request, context):
        version, fixed_length, signed = self.verifier.enrolment(_subject(request))
        if version is None:
            return verifier_pb2.GetEnrollmentResponse(enrolled=False)
        return verifier_pb2.GetEnrollmentResponse(
            enrolled=True, model_version=version, current=version == self.verifier.version, fixed_length=fixed_length,
            display_templates=self.verifier.display, signature=signed)

    def RememberAccepted(self, request, context):
        fingerprints = boxes.fingerprints(request.fingerprints)
        return verifier_pb2.RememberAcceptedResponse(remembered=self.verifier.remember(_subject(request), fingerprints))

    def SetRepositioning(self, request, context):
        active = self.verifier.set_repositioning(_subject(request), request.scheme)
        return verifier_pb2.SetRepositioningResponse(active=active)

    def GetDisplayTemplates(self, request, context):
        images = self.verifier.store.display_templates(_subject(request), list(request.digits))
        if images is None:
            raise NotFound("no display templates kept for this user")
        return verifier_pb2.GetDisplayTemplatesResponse(images=images)

    def DeleteEnrollment(self, request, context):
        return verifier_pb2.DeleteEnrollmentResponse(deleted=self.verifier.store.delete(_subject(request)))

    def EnrollSignature(self, request, context):
        signed = [_signature(data, f"signature {i}") for i, data in enumerate(request.signatures)]
        count = self.signatures.enrol(_subject(request), signed)
        return verifier_pb2.EnrollSignatureResponse(model_version=self.signatures.model.version, signatures=count)

    def VerifySignature(self, request, context):
        verdict = self.signatures.verify(_subject(request), _signature(request.signature, "the signature"))
        return verifier_pb2.VerifySignatureResponse(score=verdict.score, passed=verdict.passed,
                                                    replayed=verdict.replayed)

    def RememberSignature(self, request, context):
        remembered = self.signatures.remember(_subject(request), _signature(request.signature, "the signature"))
        return verifier_pb2.RememberSignatureResponse(remembered=remembered)
