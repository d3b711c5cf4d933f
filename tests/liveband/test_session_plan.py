"""The band's plan on screen (issue 14 item 4), on a real (software) PulseAudio server with
the shipped model: while the band plays, Session.roll reports a beat of tentative notes
past the last committed step, marked tentative; the notes the band sends to the synth are
exactly the roll's committed ones, never the tentative ones."""

from __future__ import annotations

import time

from engine import parts as P
from engine.events import NOTE_ON
from engine.renderer import EventLog
from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session

E_MINOR = (64, 67, 71, 69, 67, 66, 64, 71)
BAND = ("bass", "keys", "pad", "drums")


def test_the_roll_shows_a_tentative_beat_past_the_committed_band_and_only_committed_notes_sound(
    pulse_server, liveband_home
):
    with Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        assert s.prepare(120)
        log = EventLog()
        s.add_band_listener(log)
        s.play()
        seen = []  # (first uncommitted step, tentative notes) while playing
        for i in range(16):
            s.key_event(E_MINOR[i % len(E_MINOR)], True, 100)
            for _ in range(2):
                time.sleep(0.2)
                gen = s.generator
                k = gen.next_step
                notes = s.roll(s.snapshot().step - 40)
                seen.append((k, [n for n in notes if n[5]]))
            s.key_event(E_MINOR[i % len(E_MINOR)], False)
            time.sleep(0.1)
        gen = s.generator
        plan_ms = gen.metrics().plan_ms_p99
        s.stop()
        final = s.roll(-1000)
    with_plan = [(k, t) for k, t in seen if t]
    assert len(with_plan) >= len(seen) // 2, [len(t) for _, t in seen]  # once the band entered
    for k, tentative in with_plan:
        assert all(n[4] and n[0] in ("bass", "keys", "pad") for n in tentative)
        assert min(n[2] for n in tentative) >= k - 1  # beyond what was committed then (a read apart)
        assert max(n[3] for n in tentative) >= k + 2  # reaching most of a beat ahead
    assert 0.0 < plan_ms
    # what sounds: every band note-on sent to the synth is a committed roll note, one for one
    band_channels = {P.part(p).channel for p in BAND}
    sent = sorted(
        (ch, pitch) for t, kind, ch, pitch, vel in log.events if kind == NOTE_ON and vel > 0 and ch in band_channels
    )
    committed = sorted((P.part(n[0]).channel, n[1]) for n in final if n[0] in BAND)
    assert not any(n[5] for n in final)  # stopped: no plan is shown
    assert sent == committed and len(sent) > 50
