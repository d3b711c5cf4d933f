"""The band's pure rules (liveband.session_band): tap tempo and which mixer strips sound."""

from __future__ import annotations

from liveband.session_band import silenced, tap_tempo
from liveband.session_types import PartState


def strips(**over) -> dict[str, PartState]:
    parts = {n: PartState(False, False, 1.0, 0) for n in ("bass", "keys", "drums", "melody")}
    return {**parts, **over}


def test_tap_tempo_needs_two_taps_and_follows_the_median_interval():
    assert tap_tempo([]) is None and tap_tempo([10.0]) is None
    assert tap_tempo([10.0, 10.5]) == 120.0
    # one late tap among steady ones does not move the tempo
    assert tap_tempo([0.0, 0.5, 1.0, 1.9, 2.4]) == 120.0


def test_tap_tempo_stays_in_the_band_range():
    assert tap_tempo([0.0, 0.1]) == 240.0
    assert tap_tempo([0.0, 3.0]) == 40.0


def test_a_muted_strip_is_silent_and_the_others_sound():
    assert silenced(strips(keys=PartState(True, False, 1.0, 0))) == {
        "bass": False,
        "keys": True,
        "drums": False,
        "melody": False,
    }


def test_a_solo_silences_every_strip_not_soloed_and_two_solos_both_sound():
    s = silenced(strips(bass=PartState(False, True, 1.0, 0), drums=PartState(False, True, 1.0, 0)))
    assert s == {"bass": False, "keys": True, "drums": False, "melody": True}


def test_a_soloed_but_muted_strip_stays_silent():
    assert silenced(strips(bass=PartState(True, True, 1.0, 0)))["bass"] is True


def test_the_players_part_with_through_off_is_silent_here():
    assert silenced(strips(melody=PartState(False, False, 1.0, 0, through=False)))["melody"] is True
