"""What a caller may make the gateway do: calls per sliding minute, and images decoded at once.

Both guard this replica's CPU and memory, so they are counted here, per replica,
not in Redis: decoding is what a cheap request can make expensive.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque

import numpy as np

from gateway.budget import Budget
from gateway.ports import Prepared, Written
from hwotp.errors import DeadlineExceeded, InvalidInput, ResourceExhausted
from hwotp.ink import prepare_strokes
from hwotp.trajectory import CHANNELS, POINTS, path_features
from hwotp.outcomes import SCAN, STROKES
from hwotp.preprocess import FINGERPRINT_BYTES, InvalidImage, prepare_box


class SlidingWindow:
    """At most `limit` calls per caller in any `window_s` seconds."""

    def __init__(self, limit: int, window_s: float = 60.0, clock=time.monotonic):
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self.calls: dict[str, deque] = defaultdict(deque)
        self.lock = threading.Lock()

    def admit(self, caller: str, what: str) -> None:
        now = self.clock()
        with self.lock:
            calls = self.calls[caller]
            while calls and calls[0] <= now - self.window_s:
                calls.popleft()
            if len(calls) >= self.limit:
                retry = max(1, math.ceil(calls[0] + self.window_s - now))
                raise ResourceExhausted(f"{what} rate limit of this caller reached; retry in {retry} s", retry)
            calls.append(now)


class Admission:
    def __init__(self, submits_per_min: int, enrols_per_min: int, decoders: int):
        self.submits = SlidingWindow(submits_per_min)
        self.enrols = SlidingWindow(enrols_per_min)
        self.decoders = threading.BoundedSemaphore(decoders)

    def decode(self, boxes: list[Written], budget: Budget, one_domain: bool = False) -> Prepared:
        """Model inputs and replay fingerprints of the boxes (strokes rendered, images
        decoded), with at most `decoders` requests decoding at once; a request that cannot
        start within its budget is DEADLINE_EXCEEDED. With `one_domain` (an answer, which
        is scored in one domain), boxes must all come as strokes or all as images."""
        written_as = {bool(box.strokes) for box in boxes}
        if one_domain and len(written_as) > 1:
            raise InvalidInput("some boxes came as strokes and some as images only: send every box the same way")
        if not self.decoders.acquire(timeout=budget.remaining()):
            raise DeadlineExceeded("the gateway is busy decoding other requests' images")
        try:
            fields = np.empty((len(boxes), 1, 28, 28), dtype=np.float32)
            prints = np.empty((len(boxes), FINGERPRINT_BYTES), dtype=np.int8)
            # the online model judges paths only when every box has one
            paths = np.empty((len(boxes), CHANNELS, POINTS), dtype=np.float32) if written_as == {True} else None
            for index, box in enumerate(boxes):
                try:
                    fields[index, 0], prints[index] = \
                        prepare_strokes(box.strokes) if box.strokes else prepare_box(box.image)
                except InvalidImage as exc:
                    raise InvalidImage(f"box {index}: {exc}") from exc
                if paths is not None:
                    paths[index] = path_features(box.strokes)
            return Prepared(fields, prints, STROKES if True in written_as else SCAN, paths)
        finally:
            self.decoders.release()
