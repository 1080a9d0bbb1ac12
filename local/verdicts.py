"""Which of a held-out writer's probes the deployed models decide for certain: so that tests,
and the fault run, know what every login must come to.

System tests and the fault run check the system's plumbing, not model quality
(that is training.evaluate's job): a genuine login writes only probes the
models accept, an impostor only probes the writer check rejects against the
victim, so that an accepted impostor can only be the system's fault.
"""

from __future__ import annotations

import numpy as np

from hwotp import scoring
from hwotp.config import ChallengeSettings, VerifierSettings
from hwotp.models import IMAGE, IMAGE_ONLINE, SCAN, STROKES, ModelBundle


def probe_verdicts(bundle: ModelBundle, writer, victim, length: int, domain: str = SCAN) -> dict[int, np.ndarray]:
    """Per digit: which of the writer's probes are read right, and which score above the deployed
    writer threshold against the victim's enrolment (the online verifier's too, for strokes):
    an attempt of such boxes passes the deployed check, one of boxes below it fails."""
    settings = VerifierSettings()
    enrolled = victim.enrol_index, victim.digits[victim.enrol_index]
    depth = scoring.enrolment_depth(enrolled[1])  # the calibration the verifier will pick
    embedder, config, cohort = bundle.verifier("deployed", domain, depth)
    templates = scoring.make_templates(embedder(victim.fields(enrolled[0])), enrolled[1])
    scorer = scoring.Scorer(cohort, config)
    by_path = domain == STROKES and bundle.has_online
    if by_path:
        online_config, online_cohort = bundle.online_scoring(depth)
        online_scorer = scoring.Scorer(online_cohort, online_config)
        online_templates = scoring.make_templates(bundle.online_verifier(victim.paths(enrolled[0])), enrolled[1])
    threshold = bundle.threshold(settings.writer_policy, length, domain=domain,
                                 modalities=IMAGE_ONLINE if by_path else IMAGE, depth=depth)
    out = {}
    for digit, rows in writer.probes.items():
        fields, digits = writer.fields(rows), np.full(len(rows), digit)
        read = bundle.digit_logits(fields, writer.paths(rows) if domain == STROKES else None).argmax(axis=1) == digit
        score = scorer(embedder(fields), digits, templates[None])[:, 0]
        if by_path:
            score = bundle.image_weight(depth) * score + \
                online_scorer(bundle.online_verifier(writer.paths(rows)), digits, online_templates[None])[:, 0]
        out[digit] = (read, (score > threshold) & (score > settings.box_floor))
    return out


def keep_certain(bundle: ModelBundle, genuine, impostor, domain: str) -> None:
    """Keep of each writer only probes whose decision is certain: a genuine login writes
    probes the models accept, an impostor probes the writer check rejects against the victim."""
    length = ChallengeSettings().challenge_length
    own = probe_verdicts(bundle, genuine, genuine, length, domain)
    genuine.probes = {d: genuine.probes[d][read & ok] for d, (read, ok) in own.items()}
    other = probe_verdicts(bundle, impostor, genuine, length, domain)
    impostor.probes = {d: impostor.probes[d][read & ~ok] for d, (read, ok) in other.items()}
    for who, w in (("genuine", genuine), ("impostor", impostor)):
        empty = [d for d, rows in w.probes.items() if len(rows) == 0]
        if empty:
            raise ValueError(f"{who} writer has no usable probe of digits {empty}; choose other writers")
