"""Enrol users' signatures and check a signed answer against them (no gRPC here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwotp import signature
from hwotp.errors import FailedPrecondition, InvalidInput, NotFound
from services.verifier.templates import TemplateStore


@dataclass(frozen=True)
class SignatureVerdict:
    score: float  # calibrated: log odds that the enrolled user signed
    passed: bool
    replayed: bool  # almost identical to an enrolled or accepted signature


class SignatureVerifier:
    def __init__(self, model: signature.SignatureModel, store: TemplateStore):
        self.model, self.store = model, store

    def enrol(self, subject: str, signed: list[list[np.ndarray]]) -> int:
        """signed: each signature's strokes, (n, 4) x, y, t_ms, pressure. The user must be
        enrolled (digits first); the signatures replace any enrolled before."""
        if len(signed) != signature.REFERENCES:
            raise InvalidInput(f"{len(signed)} signatures given; a signature enrolment takes {signature.REFERENCES}")
        parsed = [self._parse(strokes, f"signature {i}") for i, strokes in enumerate(signed)]
        enrolled = self.model.enrol(parsed)
        if enrolled.has_twins():
            raise InvalidInput("two enrolment signatures are almost identical: nobody signs twice identically; "
                               "sign each one anew")
        if self.store.model_version(subject) is None:
            raise NotFound("user is not enrolled: enrol the digits first")
        self.store.save_signatures(subject, self.model.version, [signature.to_bytes(p) for p in parsed])
        return len(parsed)

    @staticmethod
    def _parse(strokes: list[np.ndarray], where: str) -> signature.Signature:
        try:
            return signature.signature_of(strokes)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from None

    def verify(self, subject: str, strokes: list[np.ndarray]) -> SignatureVerdict:
        probe = self._parse(strokes, "the signature")
        found = self.store.load_signatures(subject)
        if found is None:
            raise NotFound("user has no enrolled signature")
        version, references, accepted = found
        if version != self.model.version:
            raise FailedPrecondition(f"signature re-enrolment required: it belongs to {version}, "
                                     f"the verifier now runs {self.model.version}")
        enrolled = self.model.enrol([signature.from_bytes(r) for r in references])
        score, replayed = enrolled.judge(probe, [signature.from_bytes(a) for a in accepted])
        return SignatureVerdict(score, score >= self.model.threshold, replayed)

    def remember(self, subject: str, strokes: list[np.ndarray]) -> bool:
        return self.store.remember_signature(subject, signature.to_bytes(self._parse(strokes, "the signature")))
