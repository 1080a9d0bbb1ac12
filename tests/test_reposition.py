"""Secret repositioning: what must be written, box by box, for each scheme."""

import pytest

from hwotp.errors import FailedPrecondition, InvalidInput
from hwotp.reposition import apply, validate


@pytest.mark.parametrize("scheme,written", [
    ("reverse", "654321"), ("rotate:2", "345612"), ("swap-pairs", "214365"), ("perm:5,0,4,1,3,2", "615243"),
])
def test_schemes(scheme, written):
    assert apply(scheme, "123456") == written
    assert sorted(apply(scheme, "123456")) == sorted("123456")  # a permutation, nothing lost


def test_swap_pairs_keeps_the_last_of_an_odd_length():
    assert apply("swap-pairs", "12345") == "21435"


@pytest.mark.parametrize("scheme", ["", "backwards", "rotate:0", "rotate:x", "perm:0,0,1,2", "perm:0,1,2", "perm:a,b"])
def test_bad_schemes_are_refused(scheme):
    with pytest.raises(InvalidInput):
        validate(scheme)


def test_a_permutation_fits_only_its_length():
    with pytest.raises(FailedPrecondition, match="does not fit") as refused:
        apply("perm:5,0,4,1,3,2", "1234")
    assert "6" not in str(refused.value)  # the scheme's length is not told
