import numpy as np
import pytest

from engine.keyfind import estimate_key


def profile(pitches):
    w = np.zeros(12)
    for p in pitches:
        w[p % 12] += 1
    return w


@pytest.mark.parametrize("scale,expected", [
    ([60, 62, 64, 65, 67, 69, 71, 60, 64, 67], "C major"),
    ([67, 69, 71, 72, 74, 76, 78, 67, 71, 74], "G major"),
    ([57, 59, 60, 62, 64, 65, 68, 57, 60, 64, 57], "A minor"),
])
def test_scales_and_triads_give_their_key(scale, expected):
    assert estimate_key(profile(scale)) == expected


def test_no_evidence_gives_no_key():
    assert estimate_key(np.zeros(12)) == ""
    assert estimate_key(np.ones(12)) == ""
