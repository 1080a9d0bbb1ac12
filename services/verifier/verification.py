"""Enrol writers and check boxes against their templates (no gRPC here)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import replace as replace_fields

import numpy as np

from hwotp import replay_check, reposition, scoring, strokes
from hwotp.errors import FailedPrecondition, InvalidInput, NotFound
from hwotp.metrics import Metrics
from hwotp.models import IMAGE, IMAGE_ONLINE, SCAN, STROKES, ModelBundle
from hwotp.preprocess import prepare_box, prepare_boxes
from hwotp.trajectory import path_features
from services.verifier import display
from services.verifier.templates import Templates, TemplateStore


@dataclass(frozen=True)
class Verdict:
    scores: np.ndarray
    passed: np.ndarray
    writer_ok: bool
    replayed: np.ndarray
    expected: np.ndarray  # the digit each box must hold, after the user's secret repositioning
    near_miss: bool = False  # failed the writer check, but only just
    modalities: str = IMAGE  # what judged the writer: IMAGE, or IMAGE_ONLINE (the pen's path too)


class WriterVerifier:
    def __init__(self, bundle: ModelBundle, store: TemplateStore, metrics: Metrics, policy: str,
                 replay_threshold: float = replay_check.DEFAULT_THRESHOLD, target_far: float | None = None,
                 keep_images: bool = False, display: bool = False, near_miss_margin: float = 1.0,
                 workers: int = 16, box_floor: float = float("-inf")):
        self.embedder = bundle.verifier("deployed")[0]
        self.version, self.store, self.metrics, self.policy = bundle.verifier_version, store, metrics, policy
        self.replay_threshold, self.keep_images, self.display = replay_threshold, keep_images, display
        self.near_miss_margin, self.box_floor = near_miss_margin, box_floor
        # each domain its own cohort and calibration: raw scores of rendered strokes and of scans
        # differ; and within a domain one per enrolment depth calibrated (hwotp.models)
        self.depths = {domain: bundle.depths(domain) for domain in bundle.domains}
        self.scorers = {}
        for domain, depths in self.depths.items():
            for depth in depths:
                _, config, cohort = bundle.verifier("deployed", domain, depth)
                self.scorers[(domain, depth)] = scoring.Scorer(cohort, config)
        # inference releases the GIL: a verification embeds its boxes here while it reads
        # Redis (one thread per request thread, workers: HWOTP_WORKERS)
        self.alongside = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed")
        # the pen's path, when the models include an online verifier: strokes are then judged on both
        self.online = bundle.online_verifier if bundle.has_online else None
        if self.online is not None:
            self.online_version = bundle.online_version
            self.image_weight = {depth: bundle.image_weight(depth) for depth in self.depths[STROKES]}
            self.online_scorers = {depth: scoring.Scorer(*reversed(bundle.online_scoring(depth)))
                                   for depth in self.depths[STROKES]}
        judged = [(domain, IMAGE) for domain in bundle.domains] + [(STROKES, IMAGE_ONLINE)] * bool(self.online)
        # per domain, modalities, depth and strictness, rule and length 1-10; strict: the strictest
        # target calibrated, for users under brute force
        targets = {False: target_far, True: min(bundle.target_fars)}
        self.thresholds = {(domain, modalities, depth, strict): {
            rule: {n: bundle.threshold(rule, n, targets[strict], domain, modalities, depth) for n in range(1, 11)}
            for rule in ("all_pass", "fused_mean")}
            for domain, modalities in judged for depth in self.depths[domain] for strict in targets}

    def _embed(self, batch: np.ndarray, model=None, name: str = "verifier") -> np.ndarray:
        started = time.perf_counter()
        embeddings = (model or self.embedder)(batch)
        self.metrics.inference_seconds.labels(name).observe(time.perf_counter() - started)
        self.metrics.batch_size.labels(name).observe(len(batch))
        return embeddings

    def _embed_paths(self, paths: np.ndarray) -> np.ndarray:
        return self._embed(paths, self.online, "online_verifier")

    @staticmethod
    def _check_digits(digits, count: int) -> np.ndarray:
        if len(digits) != count:
            raise InvalidInput(f"{count} boxes but {len(digits)} digits")
        digits = np.asarray(digits, dtype=np.int64)
        if len(digits) and (digits.min() < 0 or digits.max() > 9):
            raise InvalidInput("digits must be 0-9")
        return digits

    def enrol(self, subject: str, batch: np.ndarray, digits, fingerprints: np.ndarray,
              originals: list[bytes] = (), trajectories: list[bytes] = (), display_samples=(),
              replace: bool = False, paths: np.ndarray | None = None) -> Templates:
        """originals: the enrolment images, kept sealed only when the service is set to keep them
        (all) or to show display templates (one per digit, rendered anew from display_samples,
        else the most typical); trajectories: serialized strokes per box, kept sealed when the
        client sent any; paths: every box's pen path (hwotp.trajectory), when all came as
        strokes: online templates join the image ones. Without `replace`, an enrolled subject
        is refused."""
        digits = self._check_digits(digits, len(batch))
        missing = sorted(set(range(10)) - set(digits.tolist()))
        if missing:
            raise InvalidInput(f"no enrolment sample of digit(s) {missing}")
        online = self.alongside.submit(self._embed_paths, paths) if paths is not None and self.online else None
        embeddings = self._embed(batch)
        templates = Templates(self.version, scoring.make_templates(embeddings, digits), len(batch),
                              depth=scoring.enrolment_depth(digits))
        if online is not None:
            templates = replace_fields(templates, online=scoring.make_templates(online.result(), digits),
                                       online_version=self.online_version)
        kept = list(zip(digits.tolist(), originals)) if self.keep_images else []
        kept_strokes = list(zip(digits.tolist(), trajectories)) if any(trajectories) else []
        shown = self._display_images(digits, embeddings, originals, display_samples) if self.display else None
        if shown:
            # what is shown must never pass as an answer: it joins the enrolment's fingerprints
            fingerprints = np.concatenate([fingerprints, [prepare_box(image)[1] for image in shown.values()]])
        self.store.save(subject, templates, fingerprints, kept, kept_strokes, shown, replace=replace)
        return templates

    @staticmethod
    def _display_images(digits: np.ndarray, embeddings: np.ndarray, originals, designated) -> dict[int, bytes]:
        if len(originals) != len(digits):
            raise InvalidInput("display templates need the original enrolment images")
        chosen = {int(digits[i]): int(i) for i in designated}
        for digit in set(range(10)) - set(chosen):
            rows = np.flatnonzero(digits == digit)
            chosen[digit] = int(rows[scoring.most_typical(embeddings[rows])])
        return {digit: display.render(originals[index]) for digit, index in chosen.items()}

    def reenrol(self, subject: str) -> Templates:
        """New templates from the kept enrolment images, with the models now served; online
        ones too when every sample was written as strokes (their paths are computed anew)."""
        kept = self.store.kept(subject, "img")
        if not kept:
            raise NotFound("no kept enrolment images for this user: they must enrol again")
        digits, images = [d for d, _ in kept], [image for _, image in kept]
        fields, fingerprints = prepare_boxes(images)
        trajectories = dict(enumerate(data for _, data in self.store.kept(subject, "trj")))
        sent = [trajectories.get(i, b"") for i in range(len(images))]
        paths = np.stack([path_features(strokes.to_arrays(strokes.deserialized(data, f"kept sample {i}"),
                                                           f"kept sample {i}"))
                          for i, data in enumerate(sent)]) if all(sent) else None
        return self.enrol(subject, fields, digits, fingerprints, images, sent, replace=True, paths=paths)

    def set_repositioning(self, subject: str, scheme: str) -> bool:
        if self.store.model_version(subject) is None:
            raise NotFound("user is not enrolled")
        self.store.set_repositioning(subject, reposition.validate(scheme) if scheme else "")
        return bool(scheme)

    def enrolment(self, subject: str) -> tuple[str | None, int, bool]:
        """The model the subject's templates belong to (None: not enrolled), the only
        challenge length their secret repositioning fits (0: any), and whether they
        enrolled a signature."""
        version, scheme, signed = self.store.enrolment(subject)
        return version, reposition.fixed_length(scheme), signed

    def verify(self, subject: str, batch: np.ndarray, displayed, fingerprints: np.ndarray,
               domain: str = SCAN, paths: np.ndarray | None = None, strict: bool = False) -> Verdict:
        """displayed: the challenge as shown; fingerprints: of the boxes that have one
        (compared with the enrolment's and the accepted answers'; they join them only
        through remember(), once the answer is accepted); domain: where the boxes' ink
        came from, which picks the calibration; paths: the boxes' pen paths, judged by the
        online verifier too when the user's enrolment has online templates of its model;
        strict: at the strictest calibrated target FAR instead of the configured one."""
        if domain not in self.depths:
            raise FailedPrecondition(f"the verifier model is not calibrated for {domain} boxes")
        displayed = self._check_digits(displayed, len(batch))
        if not 1 <= len(displayed) <= 10:
            raise InvalidInput("between 1 and 10 boxes can be verified at once")
        embedding = self.alongside.submit(self._embed, batch)
        by_path = domain == STROKES and paths is not None and self.online is not None
        online = self.alongside.submit(self._embed_paths, paths) if by_path else None
        found = self.store.load_for_verification(subject)
        if found is None:
            raise NotFound("user is not enrolled")
        templates, history, scheme = found
        digits = displayed
        if scheme:
            digits = np.array([int(c) for c in reposition.apply(scheme, "".join(map(str, displayed)))])
        if templates.model_version != self.version:
            raise FailedPrecondition(
                f"re-enrolment required: templates belong to {templates.model_version}, "
                f"the verifier now runs {self.version}")
        replayed = replay_check.replayed(fingerprints, history, self.replay_threshold)
        # the deepest calibration the user's enrolment reaches
        depth = max(d for d in self.depths[domain] if d <= templates.depth)
        scores = self.scorers[(domain, depth)](embedding.result(), digits, templates.vectors[None])[:, 0]
        modalities = IMAGE
        if online is not None and templates.online is not None and templates.online_version == self.online_version:
            # two log-likelihood ratios of one box: their (weighted) sum is the box's
            scores = self.image_weight[depth] * scores + \
                self.online_scorers[depth](online.result(), digits, templates.online[None])[:, 0]
            modalities = IMAGE_ONLINE
        length, thresholds = len(digits), self.thresholds[(domain, modalities, depth, strict)]
        passed = scores > thresholds["all_pass"][length]
        writer_ok, near_miss = scoring.writer_check(scores, self.policy, thresholds[self.policy][length],
                                                    self.near_miss_margin, self.box_floor)
        self.metrics.writer_checks.labels(modalities).inc()
        return Verdict(scores, passed, writer_ok, replayed, digits, near_miss=near_miss, modalities=modalities)

    def remember(self, subject: str, fingerprints: np.ndarray) -> bool:
        return self.store.remember(subject, fingerprints)
