"""Feel changed while the band plays, on a real (software) PulseAudio server with the
shipped model and the real SoundFont: after ``Session.set_feel(swing=0.6, fills="off")``
the off-beat 8ths the band plays (bass, keys, drums) move to 0.6 of the beat (long:short
1.5:1) from the next steps, the fills stop, and the recorded take holds the swung band."""

from __future__ import annotations

import time

import pytest
from waiting import wait_for

from engine import parts as P
from engine.events import NOTE_ON
from engine.renderer import EventLog
from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session

TOM_HIGH = 50


def jam(s: Session, seconds: float) -> None:
    """Quarter notes on the computer keyboard's path, for ``seconds``."""
    melody = (60, 64, 67, 72, 67, 64)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        s.key_event(melody[i % len(melody)], True, 100)
        time.sleep(0.4)
        s.key_event(melody[i % len(melody)], False)
        time.sleep(0.1)
        i += 1


def test_swing_set_while_the_band_plays_moves_its_off_beat_eighths_by_the_set_ratio(pulse_server, liveband_home):
    # rock: 8th-note bass, guitar chugs and hi-hat, so every part has off-beat 8ths; fills at phrase ends
    with Session(EngineConfig(tempo=120.0, count_in_bars=0, style="rock"), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        log = EventLog()
        s.add_band_listener(log)  # everything the band is told to play
        s.play()
        assert wait_for(lambda: s.generator is not None and s.generator.steps > 0, 10.0)
        jam(s, 8.5)  # past bar 4's fill (2 s a bar)
        clock = s.clock
        k_change = clock.step_at(s.mixer.clock)
        s.set_feel(swing=0.6, fills="off", time_feel="normal", humanise=0.0)
        jam(s, 8.5)
        k_end = clock.step_at(s.mixer.clock)
        take = s.recorder.folder
        s.stop()
        assert s.generator is None or s.generator.error is None
    length = clock.step_time(1) - clock.step_time(0)

    def offbeat_lateness(ch: int, lo: int, hi: int) -> list[float]:
        """How late (in steps) the onsets on off-beat 8th steps lo..hi fall after their step."""
        out = []
        for t, kind, c, *_ in log.events:
            k = clock.step_at(t)
            if kind == NOTE_ON and c == ch and lo <= k < hi and k % 4 == 2:
                out.append((t - clock.step_time(k)) / length)
        return out

    for ch in (P.BASS.channel, P.KEYS.channel, P.DRUMS.channel):
        before = offbeat_lateness(ch, 0, k_change - 1)
        after = offbeat_lateness(ch, k_change + 4, k_end - 1)  # the commit lead: set at the next step
        assert len(before) >= 8 and len(after) >= 8, (ch, len(before), len(after))
        assert max(abs(x) for x in before) < 0.01, (ch, before)
        assert all(x == pytest.approx(0.4, abs=0.01) for x in after), (ch, after)  # at 0.6 of the beat
    toms = [
        clock.step_at(t)
        for t, kind, c, d1, _ in log.events
        if kind == NOTE_ON and c == P.DRUMS.channel and d1 == TOM_HIGH
    ]
    assert any(k < k_change for k in toms), toms  # rock's fill at the end of bar 4
    assert not any(k > k_change + 4 for k in toms), (k_change, toms)
    # the recorded take holds what the band played, swung included
    import mido

    mid = mido.MidiFile(str(take / "session.mid"))
    ons = sum(1 for tr in mid.tracks for m in tr if m.type == "note_on" and m.velocity > 0 and m.channel == 0)
    assert ons >= 0.9 * sum(1 for e in log.events if e[1] == NOTE_ON and e[2] == P.BASS.channel)


def test_the_band_plays_live_in_twelve_eight_and_the_take_says_so(pulse_server, liveband_home):
    import json

    import mido

    with Session(EngineConfig(tempo=100.0, count_in_bars=0, style="blues"), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        s.set_meter("12/8")
        log = EventLog()
        s.add_band_listener(log)
        s.play()
        assert wait_for(lambda: s.generator is not None and s.generator.steps > 0, 10.0)
        assert s.clock.bar_steps == 24 and s.snapshot().meter == "12/8"
        jam(s, 6.0)
        take = s.recorder.folder
        s.stop()
    channels = {e[2] for e in log.events if e[1] == NOTE_ON}
    assert {P.BASS.channel, P.KEYS.channel, P.PAD.channel, P.DRUMS.channel} <= channels, channels
    assert json.loads((take / "session.json").read_text())["meter"] == "12/8"
    sigs = {
        (m.numerator, m.denominator)
        for tr in mido.MidiFile(str(take / "session.mid")).tracks
        for m in tr
        if m.type == "time_signature"
    }
    assert sigs == {(12, 8)}, sigs
