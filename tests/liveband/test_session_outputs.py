"""The dispatcher (liveband.session_outputs): events the audio applied reach the take in
order, and ``settle`` returns only after they have (no sleep orders the threads)."""

from __future__ import annotations

import threading

import pytest

from engine.events import NOTE_OFF, NOTE_ON
from engine.mixer import Mixer
from engine.synth import Synth
from liveband.config import AudioConfig
from liveband.session_audio import SessionAudio
from liveband.session_notices import Notices
from liveband.session_outputs import Outputs


class Take:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def add_event(self, *ev) -> None:
        self.events.append(ev)


@pytest.fixture()
def parts(soundfont):
    synth = Synth(soundfont, sample_rate=48000)
    mixer = Mixer(synth, 48000, 1024)
    notices = Notices()
    audio = SessionAudio(mixer, AudioConfig(), 48000, threading.RLock(), notices)  # no stream
    take = Take()
    out = Outputs(mixer, audio, notices, recorder=lambda: take, band_clock=lambda: None)
    yield out, take, notices
    out.close()
    synth.close()


def test_settle_refuses_to_wait_on_a_dispatcher_that_does_not_run(parts):
    out, take, _ = parts
    assert out.settle(timeout=0.05) is False


def test_after_settle_every_logged_event_is_in_the_take_in_order(parts):
    out, take, notices = parts
    out.start()
    for round_ in range(20):
        sent = [
            (1000 * round_ + k, NOTE_ON if k % 2 == 0 else NOTE_OFF, 0, 60 + k, 90 if k % 2 == 0 else 0)
            for k in range(8)
        ]
        for ev in sent:
            out.log.push(*ev)
        assert out.settle(timeout=5.0)
        assert take.events[-8:] == sent, round_
    assert len(take.events) == 160 and notices.current() == ()
