"""An SVC2004 signer for demos and system tests: their signatures as strokes, and which of them
the served verifier judges with a margin (so that a demo or a test shows both outcomes every time;
training.evaluate_signatures measures the rates)."""

from __future__ import annotations

from pathlib import Path

from hwotp import signature
from hwotp.models import models_dir
from training import signatures
from training.evaluate_signatures import default_data

SIGNER = 4  # an SVC2004 Task 2 user
REFERENCES = range(1, 1 + signature.REFERENCES)


def load_signer(user: int = SIGNER, data: Path | None = None) -> tuple[dict, list[int], list[int]]:
    """({number: strokes}: 1-20 genuine, 21-40 skilled forgeries; the genuine probes (11-20) and the
    forgeries scoring at least 1 above / below the served threshold against references 1-5)."""
    raw = signatures.read_signatures(data or default_data())
    signed = {number: signatures.strokes_of(rows) for (owner, number), rows in raw.items() if owner == user}
    model = signature.SignatureModel.load(models_dir())
    enrolled = model.enrol([signature.signature_of(signed[n]) for n in REFERENCES])
    score = {n: enrolled.score(signature.signature_of(signed[n])) for n in range(11, 41)}
    genuine = [n for n in range(11, 21) if score[n] > model.threshold + 1]
    forged = [n for n in range(21, 41) if score[n] < model.threshold - 1]
    return signed, genuine, forged
