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


def test_keys_are_read_in_the_spellings_players_type():
    import pytest

    from engine.keyfind import key_name, key_pitch_classes, parse_key

    assert parse_key("D minor") == (2, "minor")
    assert parse_key("Bb") == (10, "major")
    assert parse_key("f#m") == (6, "minor")
    assert parse_key("Eb maj") == (3, "major")
    assert key_name(*parse_key("A# major")) == "Bb major"
    assert key_pitch_classes(9, "minor") == frozenset({9, 11, 0, 2, 4, 5, 7, 8})   # A minor + G#
    for bad in ("", "H major", "C lydian", "7"):
        with pytest.raises(ValueError, match="not a key"):
            parse_key(bad)


def test_out_of_scale_notes_snap_to_the_nearest_scale_tone_ties_upward():
    from engine.keyfind import key_pitch_classes, snap_to_scale

    c_major = key_pitch_classes(0, "major")
    assert snap_to_scale(61, c_major) == 62         # C# -> D (tie: up)
    assert snap_to_scale(66, c_major) == 67         # F# -> G
    assert snap_to_scale(64, c_major) == 64         # in scale: kept
    assert snap_to_scale(61, None) == 61            # no key: untouched
