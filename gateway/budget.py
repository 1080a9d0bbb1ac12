"""What is left of one public call's time: every downstream call gets the rest as its deadline."""

from __future__ import annotations

import math
import time

from hwotp.errors import DeadlineExceeded


class Budget:
    def __init__(self, budget_s: float, caller_left_s: float | None = None):
        """caller_left_s: what the caller's own deadline leaves (None: no deadline)."""
        limit = min(budget_s, caller_left_s if caller_left_s is not None else math.inf)
        self.deadline = time.monotonic() + limit

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the call ran out of its time budget")
        return left
