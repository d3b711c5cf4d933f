"""No key before the player plays (issue 14 item 5), on a real (software) PulseAudio server
with the shipped model and the real SoundFont: with no key fixed the band plays only its
drums until the player has given a few notes, then enters in the key those notes imply,
and the key shown is the one its chords keep to; with a key fixed it plays from the start."""

from __future__ import annotations

import time

from waiting import wait_for

from engine import parts as P
from engine.events import NOTE_ON
from engine.keyfind import key_pitch_classes, parse_key
from engine.renderer import EventLog
from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session
from models.tokens import CHORD_BASE, chord_pitch_classes

TONAL = (P.BASS.channel, P.KEYS.channel, P.PAD.channel)
E_MINOR = (64, 67, 71, 69, 67, 66, 64, 71)


def onsets(log: EventLog, channels: tuple[int, ...]) -> list[int]:
    return [t for t, kind, ch, _, vel in list(log.events) if kind == NOTE_ON and vel > 0 and ch in channels]


def test_the_band_waits_for_the_players_key_with_drums_then_plays_in_the_key_it_shows(pulse_server, liveband_home):
    with Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        assert s.prepare(120)
        log = EventLog()
        s.add_band_listener(log)
        s.play()
        clock = s.clock
        # two bars (4 s at 120 BPM) with nothing played: a groove, no key
        assert wait_for(lambda: clock.step_at(s.mixer.clock) >= 32, 15.0)
        drums, tonal = onsets(log, (P.DRUMS.channel,)), onsets(log, TONAL)
        assert len(drums) >= 16 and tonal == [], (len(drums), tonal[:4])
        snap = s.snapshot()
        assert snap.key == "" and snap.chord in ("", "N.C."), (snap.key, snap.chord)
        assert not any(n[0] in ("bass", "keys", "pad") for n in s.roll(0.0))
        # the player plays a tune in E minor, a note a beat
        k_first = clock.step_at(s.mixer.clock)
        for i in range(12):
            s.key_event(E_MINOR[i % len(E_MINOR)], True, 100)
            time.sleep(0.4)
            s.key_event(E_MINOR[i % len(E_MINOR)], False)
            time.sleep(0.1)
        gen = s.generator
        entered = gen.entered_step
        tonal = onsets(log, TONAL)
        # the band entered within a bar of the first note, on a beat, and not before it
        assert entered is not None and k_first <= entered <= k_first + 16 and entered % 4 == 0, (k_first, entered)
        assert tonal and min(clock.step_at(t) for t in tonal) >= entered, (entered, tonal[:4])
        assert len(tonal) >= 8
        snap = s.snapshot()
        assert snap.key == "E minor", snap.key
        scale = key_pitch_classes(*parse_key(snap.key))
        chords = [int(f[1]) for f in list(gen.recent) if f[0] >= entered and f[1] >= CHORD_BASE]
        assert chords
        in_key = sum(chord_pitch_classes(c) <= scale for c in chords) / len(chords)
        assert in_key >= 0.9, in_key  # the chords keep to the key shown
        s.stop()
        assert s.snapshot().key == "E minor"  # what the band played in stays shown


def test_with_a_key_fixed_the_band_plays_in_it_from_the_first_bar(pulse_server, liveband_home):
    with Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        assert s.prepare(120)
        s.set_key("E minor")
        log = EventLog()
        s.add_band_listener(log)
        s.play()
        clock = s.clock
        assert wait_for(lambda: clock.step_at(s.mixer.clock) >= 16, 15.0)
        tonal = onsets(log, TONAL)
        assert tonal and min(clock.step_at(t) for t in tonal) < 8, tonal[:4]  # nothing was played
        assert s.snapshot().key == "E minor"
        gen = s.generator
        scale = key_pitch_classes(*parse_key("E minor"))
        chords = [int(f[1]) for f in list(gen.recent) if f[1] >= CHORD_BASE]
        assert chords and sum(chord_pitch_classes(c) <= scale for c in chords) / len(chords) >= 0.9
        s.stop()
