"""The decision is a pure function: every digit right, the writer check, in time."""

import pytest

from gateway.decision import decide
from hwotp.outcomes import Reason

IN_TIME, DEADLINE = 1_000, 2_000


def test_accepts_only_when_everything_passes():
    assert decide("4817", [4, 8, 1, 7], True, IN_TIME, DEADLINE) is Reason.ACCEPTED


@pytest.mark.parametrize("recognised", [[4, 8, 1, 1], [7, 1, 8, 4], [4, 8, 1], [4, 8, 1, 7, 0]])
def test_any_wrong_or_missing_digit_rejects(recognised):
    assert decide("4817", recognised, True, IN_TIME, DEADLINE) is Reason.WRONG_DIGITS


def test_writer_mismatch_rejects_right_digits():
    assert decide("4817", [4, 8, 1, 7], False, IN_TIME, DEADLINE) is Reason.WRITER_MISMATCH


def test_late_answer_rejects_even_when_perfect():
    assert decide("4817", [4, 8, 1, 7], True, DEADLINE + 1, DEADLINE) is Reason.EXPIRED


def test_answer_at_the_deadline_counts():
    assert decide("4817", [4, 8, 1, 7], True, DEADLINE, DEADLINE) is Reason.ACCEPTED


def test_replayed_box_rejects_even_with_everything_else_right():
    assert decide("4817", [4, 8, 1, 7], True, IN_TIME, DEADLINE, replayed=True) is Reason.REPLAY


def test_lateness_is_reported_before_replay():
    assert decide("4817", [4, 8, 1, 7], True, DEADLINE + 1, DEADLINE, replayed=True) is Reason.EXPIRED
