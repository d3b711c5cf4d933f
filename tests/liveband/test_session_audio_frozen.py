"""A frozen audio server mid-take (SIGSTOP: as a hung or starved PulseAudio or JACK):
the session says the output is lost within a few seconds, stop() and close() return
without waiting for the server, the take is kept, and play goes on when the server
answers again. A real session on a private server (liveband.bench.softaudio).

The bounds are generous: the stall is seen ~2 s after the last callback and stop/close
take well under a second, while the hang they guard against lasts as long as the freeze."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import wave
from contextlib import contextmanager
from typing import Callable, Iterator

import mido
import pytest
from waiting import wait_for

from engine.audio_out import streams_closing
from liveband.bench.softaudio import SoftwareAudioServer
from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session
from models.rules import RuleAccompanist

LOST_WITHIN_S = 6.0
PROMPT_S = 5.0
LOST = "audio device lost"


def own_pulse() -> SoftwareAudioServer:
    """A PulseAudio of the test's own: the shared one must never be frozen under others."""
    return SoftwareAudioServer("pulse", name=f"liveband-frozen-{os.getpid()}")


@pytest.fixture(params=["pulse", "jack"])
def server(request, liveband_home) -> Iterator[SoftwareAudioServer]:
    if request.param == "jack":
        yield request.getfixturevalue("jack_server")  # (it hides PulseAudio meanwhile)
    else:
        with own_pulse() as srv:
            yield srv


@pytest.fixture()
def pulse(liveband_home) -> Iterator[SoftwareAudioServer]:
    with own_pulse() as srv:
        yield srv


@contextmanager
def frozen(srv: SoftwareAudioServer) -> Iterator[None]:
    pid = srv._procs[0].pid  # the server itself (the rest are its keep-alive clients)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def returns_within(fn: Callable[[], object], seconds: float) -> bool:
    """Whether ``fn()`` returned within ``seconds`` (a hung call is left on its thread)."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive()


def playing_session() -> Session:
    s = Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256), accompanist=RuleAccompanist())
    assert s.audio.active, s.snapshot().notices
    s.play()
    s.key_event(60, True)
    time.sleep(2.0)
    return s


def lost_notices(s: Session) -> list[str]:
    return [n for n in s.snapshot().notices if n.startswith(LOST)]


def assert_take_kept(take) -> None:
    with wave.open(str(take / "mix.wav")) as w:
        assert w.getnframes() > 48000  # the two seconds before the freeze
    assert sum(1 for m in mido.MidiFile(str(take / "session.mid")) if m.type == "note_on") > 0
    assert json.loads((take / "session.json").read_text())["complete"] is True


@pytest.mark.timeout(120)
def test_a_frozen_server_is_reported_lost_and_stop_returns_then_play_resumes_when_it_answers(server):
    s = playing_session()
    try:
        take = s.recorder.folder
        with frozen(server):
            assert wait_for(lambda: lost_notices(s), LOST_WITHIN_S), s.snapshot().notices
            assert len(lost_notices(s)) == 1, s.snapshot().notices
            s.key_event(60, False)
            assert returns_within(s.stop, PROMPT_S), "stop() waited for the frozen server"
        assert_take_kept(take)
        # the server answers again: the output comes back as after a restarted server
        assert wait_for(lambda: "audio restored" in s.snapshot().notices, 10.0), s.snapshot().notices
        assert not lost_notices(s)
        blocks = s.mixer.blocks
        assert wait_for(lambda: s.mixer.blocks > blocks + 50, 5.0)
        s.play()
        assert s.snapshot().playing
        s.stop()
    finally:
        s.close()
    assert not streams_closing(10.0)


@pytest.mark.timeout(120)
def test_close_right_after_the_server_froze_returns_and_keeps_the_take(pulse):
    # (PulseAudio only: on a frozen JACK, the MIDI port watcher's python-rtmidi client
    # holds the GIL while it closes, so the whole process waits there: engine.midi_ports)
    s = playing_session()
    try:
        take = s.recorder.folder
        with frozen(pulse):
            s.key_event(60, False)
            # before the stall is seen: the open stream's own close meets the frozen server
            assert returns_within(s.close, PROMPT_S), "close() waited for the frozen server"
            assert_take_kept(take)
        assert not streams_closing(10.0)  # the stream closes once the server answers
    finally:
        s.close()
