import numpy as np
import pytest

from engine.keyfind import estimate_key


def profile(pitches):
    w = np.zeros(12)
    for p in pitches:
        w[p % 12] += 1
    return w


@pytest.mark.parametrize(
    "scale,expected",
    [
        ([60, 62, 64, 65, 67, 69, 71, 60, 64, 67], "C major"),
        ([67, 69, 71, 72, 74, 76, 78, 67, 71, 74], "G major"),
        ([57, 59, 60, 62, 64, 65, 68, 57, 60, 64, 57], "A minor"),
    ],
)
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
    assert key_pitch_classes(9, "minor") == frozenset({9, 11, 0, 2, 4, 5, 7, 8})  # A minor + G#
    for bad in ("", "H major", "C lydian", "7"):
        with pytest.raises(ValueError, match="not a key"):
            parse_key(bad)


def test_out_of_scale_notes_snap_to_the_nearest_scale_tone_ties_upward():
    from engine.keyfind import key_pitch_classes, snap_to_scale

    c_major = key_pitch_classes(0, "major")
    assert snap_to_scale(61, c_major) == 62  # C# -> D (tie: up)
    assert snap_to_scale(66, c_major) == 67  # F# -> G
    assert snap_to_scale(64, c_major) == 64  # in scale: kept
    assert snap_to_scale(61, None) == 61  # no key: untouched


@pytest.mark.parametrize(
    "key,chords,expected",
    [
        ("C# minor", [(8, "min"), (4, "maj"), (11, "maj"), (1, "min")], ["G#m", "E", "B", "C#m"]),
        ("F minor", [(8, "maj"), (1, "maj"), (0, "7")], ["Ab", "Db", "C7"]),
        ("E major", [(6, "min"), (3, "hdim7")], ["F#m", "D#m7b5"]),
        ("Bb minor", [(1, "maj"), (6, "maj")], ["Db", "Gb"]),
        ("A minor", [(4, "7"), (10, "maj")], ["E7", "Bb"]),
    ],
)
def test_chord_names_are_spelled_in_the_key(key, chords, expected):
    """G#m in C# minor, not Abm; Db in F minor, not C#."""
    from engine.keyfind import parse_key
    from models.tokens import chord_name, chord_token

    k = parse_key(key)
    assert [chord_name(chord_token(r, q), k) for r, q in chords] == expected


def test_key_names_use_the_key_signatures_spelling():
    from engine.keyfind import key_name

    assert key_name(8, "minor") == "G# minor" and key_name(1, "major") == "Db major"
    assert key_name(1, "minor") == "C# minor" and key_name(6, "major") == "F# major"
    assert key_name(3, "minor") == "Eb minor" and key_name(10, "major") == "Bb major"
