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
from liveband.session_takes import TakeRecorder, Takes, track_names
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


def _track_notes(path) -> dict[str, list[tuple[int, int, bool]]]:
    """A MIDI file's tracks (after the tempo track) by name: [(tick, pitch, is a note-on)]."""
    import mido

    tracks = {}
    for tr in mido.MidiFile(str(path)).tracks[1:]:
        t, notes = 0, []
        for m in tr:
            t += m.time
            if m.type in ("note_on", "note_off"):
                notes.append((t, m.note, m.type == "note_on" and m.velocity > 0))
        tracks[tr.name] = notes
    return tracks


@pytest.mark.timeout(120)
def test_every_note_sounding_when_the_band_stops_ends_in_the_takes_midi(jack_server, liveband_home):
    """A key still held when the player presses stop, and the band's notes sounding then:
    the synth's all-off silences them, and the take's MIDI ends each of them there too,
    after everything that started in the take (a DAW would hold them on forever)."""
    from collections import Counter

    from waiting import wait_for

    from liveband.config import EngineConfig
    from liveband.session import Session
    from models.rules import RuleAccompanist

    cfg = EngineConfig(tempo=120.0, count_in_bars=0)
    with Session(cfg, AudioConfig(blocksize=256), accompanist=RuleAccompanist()) as s:
        assert s.audio.active, s.snapshot().notices
        s.play()
        take = s.recorder.folder
        assert wait_for(lambda: any(part == "drums" for part, *_ in s.roll(-1000)), 5)
        s.key_event(60, True)
        assert wait_for(lambda: any(part == "melody" for part, *_ in s.roll(-1000)), 5)
        s.stop()
        s.key_event(60, False)  # the key comes up after the stop: the take has ended
    tracks = _track_notes(take / "session.mid")
    assert [(p, on) for _t, p, on in tracks["Melody"]] == [(60, True), (60, False)]
    last_on = max(t for notes in tracks.values() for t, _p, on in notes if on)
    assert tracks["Melody"][-1][0] >= last_on
    for name, notes in tracks.items():
        ons = Counter(p for _t, p, on in notes if on)
        offs = Counter(p for _t, p, on in notes if not on)
        assert ons == offs, (name, ons - offs, offs - ons)


def test_a_stopped_take_ends_each_sounding_note_at_the_stop_or_if_struck_after_it_at_its_end(tmp_path):
    """The take's recorder counts what sounds: a note begun before the stop ends at the
    stop, one struck at or after it (it goes on sounding) at the take's last sample, a
    pitch struck twice gets both its ends, and a note already ended gets nothing."""

    from engine.events import NOTE_OFF, NOTE_ON

    rec = TakeRecorder(tmp_path / "take", 48000, track_names={0: "Melody", 9: "Drums"})
    rec.start()
    for ev in [(0, NOTE_ON, 0, 60, 90), (4800, NOTE_ON, 0, 62, 90), (9600, NOTE_OFF, 0, 62, 0)]:
        rec.add_event(*ev)
    for t in (0, 2400):
        rec.add_event(t, NOTE_ON, 9, 36, 100)
    rec.add_event(50000, NOTE_ON, 0, 64, 90)  # struck as stop was pressed
    rec.end_notes(48000, 52000)
    rec.stop()
    got = _track_notes(rec.midi_path)
    beat = 480  # ticks; 120 BPM: 24000 samples a beat
    tick = lambda sample: round(sample / 24000 * beat)  # noqa: E731
    assert got["Melody"] == [
        (0, 60, True),
        (tick(4800), 62, True),
        (tick(9600), 62, False),
        (tick(48000), 60, False),
        (tick(50000), 64, True),
        (tick(52000), 64, False),
    ]
    assert got["Drums"] == [(0, 36, True), (tick(2400), 36, True), (tick(48000), 36, False), (tick(48000), 36, False)]
