"""The parts table every room reads: distinct channels, GM drums on channel 10."""

import pytest

from engine import parts as P


def test_each_part_has_its_own_channel_and_drums_are_on_gm_channel_ten():
    channels = [p.channel for p in P.ALL_PARTS]
    assert len(set(channels)) == len(channels)
    assert P.DRUMS.channel == 9 and P.part("bass").program == 33 and P.part("pad").program == 89
    assert P.MELODY not in P.BAND_PARTS and set(P.KEYS_PROGRAMS) == {0, 4}


def test_unknown_part_and_bad_numbers_are_refused():
    with pytest.raises(ValueError, match="unknown part"):
        P.part("banjo")
    with pytest.raises(ValueError, match="channel"):
        P.Part("x", 16, 0, "x")
    with pytest.raises(ValueError, match="program"):
        P.Part("x", 0, 128, "x")
