"""Shared setup of the real-session tests over JACK (sync, Link, MIDI learn): a session on
the JACK dummy server, a condition wait, and a record of the audio stream's DAC line."""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Iterator

import numpy as np
import pytest
from waiting import wait_for

from liveband.config import AudioConfig, EngineConfig
from liveband.session import VIRTUAL_IN_NAME, Session

os.environ.setdefault("JACK_NO_START_SERVER", "1")


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., bool]:
    return wait_for


@pytest.fixture()
def jack_session(jack_server, liveband_home) -> Iterator[Callable[..., Session]]:
    """``jack_session(tempo=120, count_in_bars=1, midi_in=False, sync=None, prepare=True)``:
    a session playing on the JACK dummy server (256-frame blocks), with the virtual MIDI
    input ("LiveBand in") open and the tempo sync set when asked, then its model ready
    unless ``prepare`` is False; closed after the test (closing twice is harmless)."""
    opened: list[Session] = []

    def make(
        tempo: float = 120.0,
        count_in_bars: int = 1,
        midi_in: bool = False,
        sync: str | None = None,
        prepare: bool = True,
    ) -> Session:
        s = Session(EngineConfig(tempo=tempo, count_in_bars=count_in_bars), AudioConfig(blocksize=256))
        opened.append(s)
        assert s.audio.active, s.snapshot().notices
        if midi_in:
            s.open_midi_input(VIRTUAL_IN_NAME)
        if sync is not None:
            s.set_sync(sync)
        if prepare:
            assert s.prepare(60)
        return s

    yield make
    for s in opened:
        s.close()


class DacLine:
    """The audio stream's DAC line (monotonic time of sample 0) over time: an audio dropout
    moves it, so a sample's time is read on the line as it was when the sample played."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, session: Session) -> None:
        def watch() -> None:
            while not self._stop.wait(0.02):
                off = session.audio.dac_offset()
                if off is not None:
                    self.lines.append((time.monotonic(), off))

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)

    def offset_at(self, t: float) -> float:
        """The line's offset in force at monotonic time ``t`` (the last one if later)."""
        times = np.array([x for x, _ in self.lines])
        return self.lines[min(len(self.lines) - 1, int(np.searchsorted(times, t)))][1]

    def heard(self, sample: int, sample_rate: int) -> float:
        """The monotonic time a sample of the audio clock reached the DAC."""
        t = sample / sample_rate
        return t + self.offset_at(t + self.lines[-1][1])

    def bpm(self, clock, q: int, beats: int = 8) -> float:
        """The band's tempo as heard over its ``beats`` beats before beat ``q``: on a busy
        machine the audio server loses time (each of its own overruns holds the audio
        clock back), so the band's beats are shorter in samples than in time heard."""
        rate = clock.sample_rate
        return (
            beats
            * 60.0
            / (self.heard(clock.beat_to_sample(q), rate) - self.heard(clock.beat_to_sample(q - beats), rate))
        )

    def lost(self, t0: float, t1: float) -> float:
        """Seconds the audio clock lost between monotonic times ``t0`` and ``t1``."""
        return self.offset_at(t1) - self.offset_at(t0)


@pytest.fixture()
def dac_line() -> Iterator[DacLine]:
    line = DacLine()
    yield line
    line.stop()
