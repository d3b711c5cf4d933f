"""Offline render: the live engine on a simulated clock.

The render loop is the audio callback's stand-in: before each block it lets the
``StreamingGenerator`` commit whatever is due at the simulated clock (``pump``, the
same method the live worker calls), feeds the melody's own notes to the mixer, and
calls ``Mixer.process`` on the block (the same method the sounddevice callback
calls), which advances the clock. Nothing in this path knows it is offline. With
``worker_thread=True`` the generator runs in its live worker thread instead, and the
loop waits until the band is committed through each block (same output, bit for bit).

The melody is given to the quantiser up front (a file is a player who never plays
late); the quantiser still hands the model only committed steps ``<= t - lookahead``,
so what the band plays before time T cannot depend on the melody after T.
"""
from __future__ import annotations

import math
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine import parts as P
from engine.clock import Clock
from engine.events import NOTE_OFF, NOTE_ON, EventQueue
from engine.generator import GeneratorMetrics, StreamingGenerator
from engine.melody_file import Melody
from engine.mixer import Mixer
from engine.quantiser import Quantiser
from engine.renderer import EventLog, PartRenderer
from engine.sampler import ControlledSampler
from engine.synth import Synth
from models.contract import Accompanist
from models.tokens import METERS, STYLES


@dataclass(frozen=True)
class RenderSettings:
    style: str = "pop"
    tempo: float = 100.0
    meter: str = "4/4"
    temperature: float = 0.9
    density: float = 0.5
    harmony_follow: float = 0.5
    seed: int = 0
    chunk_steps: int = 4
    margin_steps: int = 2
    sample_rate: int = 48000
    block: int = 512
    count_in_bars: int = 0
    tail_bars: int = 1             # the band plays on one bar after the melody ends
    release_s: float = 1.5         # then everything is released and rings out this long
    # True: generate in the live worker thread on the simulated clock (the render loop
    # waits for it), so model and synth could overlap. Same output bit for bit; on the
    # shared 2-core build machines it measured slower (thread hand-offs under load), so
    # the default generates in the render thread.
    worker_thread: bool = False
    programs: dict[str, int] = field(default_factory=dict)
    muted: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if self.meter not in METERS:
            raise ValueError(f"meter must be one of {', '.join(METERS)}, got {self.meter!r}")
        if self.block <= 0 or self.sample_rate <= 0:
            raise ValueError("block and sample rate must be positive")
        ControlledSampler(0, self.temperature, self.density, self.harmony_follow)  # validates
        for name in self.muted:
            P.part(name)


@dataclass
class RenderResult:
    events: list[tuple[int, int, int, int, int]]   # band + melody, time-ordered, samples
    clock: Clock
    frames: int
    metrics: GeneratorMetrics
    audio: np.ndarray | None                       # (frames, 2) float32 when kept
    seconds_wall: float = 0.0
    late_mixer_events: int = 0
    steps: int = 0


class _WavWriter:
    """16-bit stereo WAV written block by block (a long render never sits in memory)."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._w = wave.open(str(path), "wb")
        self._w.setnchannels(2)
        self._w.setsampwidth(2)
        self._w.setframerate(sample_rate)

    def write(self, block: np.ndarray) -> None:
        pcm = np.clip(block, -1.0, 1.0)
        # writeframesraw: the header's length is fixed once, at close (writeframes
        # would seek back and rewrite it after every block)
        self._w.writeframesraw((pcm * 32767.0).astype("<i2").tobytes())

    def close(self) -> None:
        self._w.close()


def melody_events(melody: Melody, clock: Clock) -> list[tuple[int, bool, int, int]]:
    """(sample, on, pitch, velocity) for each note boundary, time-ordered, releases
    before onsets at the same sample."""
    out = []
    for n in melody.notes:
        out.append((clock.beat_to_sample(n.start), True, n.pitch, n.velocity))
        out.append((clock.beat_to_sample(n.end), False, n.pitch, 0))
    out.sort(key=lambda e: (e[0], e[1]))
    return out


def render_melody(melody: Melody, accompanist: Accompanist, settings: RenderSettings,
                  soundfont: str | Path, wav_path: str | Path | None = None, *,
                  keep_audio: bool = False, backend: str = "",
                  progress: Callable[[int, int], None] | None = None,
                  synth_gain: float = 0.5) -> RenderResult:
    """Accompany ``melody`` and render the mix. ``progress(frames_done, frames_total)``
    is called after each block. Thread: the caller's (it is the render thread)."""
    import time as _time

    t_wall = _time.perf_counter()
    s = settings
    if not melody.notes:
        raise ValueError("the melody has no notes")
    clock = Clock(s.sample_rate, s.tempo, s.meter, s.count_in_bars)
    band_q = EventQueue(8192)
    mel_q = EventQueue(1024)
    log = EventLog()            # the band's events (the generator's thread)
    mel_log = EventLog()        # the melody's (this thread)
    renderer = PartRenderer([band_q, log], s.style, s.meter, seed=s.seed, density=s.density,
                            programs=s.programs)
    renderer.muted.update(x for x in s.muted if x != "melody")
    quantiser = Quantiser(clock)
    sampler = ControlledSampler(s.seed, s.temperature, s.density, s.harmony_follow)
    synth = Synth(soundfont, s.sample_rate, gain=synth_gain)
    try:
        # offline nobody waits on the render thread: let the synth release the GIL so
        # the generator thread runs while FluidSynth renders
        mixer = Mixer(synth, s.sample_rate, s.block, hold_gil=not s.worker_thread)
        mixer.add_queue(band_q)
        mixer.add_queue(mel_q)
        gen = StreamingGenerator(accompanist, clock, renderer, style=s.style, sampler=sampler,
                                 quantiser=quantiser, chunk_steps=s.chunk_steps,
                                 margin_steps=s.margin_steps, clock_source=lambda: mixer.clock,
                                 backend=backend)
        mel = melody_events(melody, clock)
        for t, on, pitch, _ in mel:
            quantiser.note(t, pitch, on)
        play_melody = "melody" not in s.muted
        # last band step: the end of the bar after the melody's last note
        last_step = int(math.ceil(melody.end_beat * 4 - 1e-9))
        end_step = (last_step // clock.bar_steps + 1 + s.tail_bars) * clock.bar_steps
        end_time = clock.step_time(end_step)
        total = end_time + int(s.release_s * s.sample_rate)
        writer = _WavWriter(Path(wav_path), s.sample_rate) if wav_path is not None else None
        audio = np.zeros((total, 2), np.float32) if keep_audio else None
        buf = np.zeros((s.block, 2), np.float32)
        mi = 0
        released = False
        gen.prime()
        threaded = s.worker_thread
        if threaded:
            # the live worker thread, on the simulated clock: it generates the next steps
            # while this thread renders audio (the synth and the model release the GIL),
            # and this loop never renders a block before the band is committed through it
            gen.until_step = end_step
            gen.start()
        try:
            while mixer.clock < total:
                now = mixer.clock
                n = min(s.block, total - now)
                if not released:
                    need = clock.step_at(now + n - 1)      # the last step this block touches
                    if threaded:
                        gen.wait_committed(min(need, end_step - 1))
                    elif gen.next_step < end_step:
                        gen.pump(now, until_step=end_step)
                    if need >= end_step:
                        gen.stop()                         # one producer at a time
                        renderer.all_off(end_time)
                        released = True
                # the player's own notes, a block at a time (the queue is small)
                while mi < len(mel) and mel[mi][0] < now + n:
                    t, on, pitch, vel = mel[mi]
                    if play_melody:
                        kind = NOTE_ON if on else NOTE_OFF
                        mel_q.push(t, kind, P.MELODY.channel, pitch, vel)
                        mel_log.push(t, kind, P.MELODY.channel, pitch, vel)
                    mi += 1
                view = buf[:n]
                mixer.process(view)
                if threaded and not released and gen.due(mixer.clock):
                    gen.wake()
                if writer is not None:
                    writer.write(view)
                if audio is not None:
                    audio[now:now + n] = view
                if progress is not None:
                    progress(mixer.clock, total)
        finally:
            gen.stop()
            if writer is not None:
                writer.close()
        # band before melody at equal times, whatever the threads' interleaving
        events = sorted(log.events + mel_log.events, key=lambda e: e[0])
        return RenderResult(events, clock, total, gen.metrics(), audio, _time.perf_counter() - t_wall,
                            mixer.late_events, gen.steps)
    finally:
        synth.close()
