"""Recorded takes (liveband.session_takes): track names, no empty take without a stream,
the take being recorded cannot be renamed or deleted."""

from __future__ import annotations

import threading

import pytest

from engine import parts as P
from engine.mixer import Mixer
from engine.synth import Synth
from liveband.config import AudioConfig
from liveband.session_audio import SessionAudio
from liveband.session_notices import Notices
from liveband.session_takes import Takes, track_names
from liveband.session_types import SessionError


def test_track_names_say_the_part_and_its_instrument_the_melody_plain():
    names = track_names({"bass": 33, "keys": 0})
    assert names[P.BASS.channel] == "Bass (Fingered Bass)"
    assert names[P.KEYS.channel] == "Keys (Acoustic Grand Piano)"
    assert names[P.MELODY.channel] == "Melody"
    assert names[P.DRUMS.channel].startswith("Drums (")
    assert set(names) == {p.channel for p in P.ALL_PARTS}


@pytest.fixture()
def takes(soundfont, liveband_home):
    synth = Synth(soundfont, sample_rate=48000)
    mixer = Mixer(synth, 48000, 1024)
    notices = Notices()
    audio = SessionAudio(mixer, AudioConfig(), 48000, threading.RLock(), notices)  # never started
    settled = []
    yield Takes(mixer, audio, notices, 48000, settle=settled.append), notices, settled
    synth.close()


def test_without_a_playing_stream_no_take_starts_and_the_player_is_told(takes):
    t, notices, _ = takes
    t.start({"tempo": 100.0}, 100.0, None, {}, {})
    assert t.recorder is None
    assert any(n.startswith("not recording: no audio output") for n in notices.current())
    assert t.list_all() == []


def test_stopping_without_a_take_waits_for_nothing(takes):
    t, notices, settled = takes
    t.stop("C major")
    assert settled == [] and notices.confirmation() == ""


def test_the_take_being_recorded_cannot_be_renamed_or_deleted(takes):
    t, _, _ = takes

    class Recording:
        class folder:
            name = "2026-12-02_2300"

    t.recorder = Recording()
    with pytest.raises(SessionError, match="being recorded"):
        t.rename("2026-12-02_2300", "song")
    with pytest.raises(SessionError, match="being recorded"):
        t.delete("2026-12-02_2300")
