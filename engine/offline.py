"""Offline render: the live engine on a simulated clock.

The render loop is the audio callback's stand-in: before each block it lets the
``StreamingGenerator`` commit whatever is due at the simulated clock (``pump``, the
same method the live worker calls), feeds the melody's own notes to the mixer, and
calls ``Mixer.process`` on the block (the same method the sounddevice callback
calls), which advances the clock. Nothing in this path knows it is offline. With
``worker_thread=True`` the generator runs in its live worker thread instead, and the
loop waits until the band is committed through each block (same output, bit for bit).

With ``synth_process=True`` (``liveband render``, the bench) the same loop runs in a
forked process and the band's events reach it through a pipe while this process keeps
generating, so the model and the synth overlap on two cores; the mixer sees the same
events before the same blocks, so the audio is the same, bit for bit. The loop and that
process are engine.render_audio; this module drives the band and either one.

The melody is given to the quantiser up front (a file is a player who never plays
late); the quantiser hands the model committed steps ``<= t - lookahead``. With a live
model (lookahead >= 1) what the band plays before time T cannot depend on the melody
after T, exactly as live; an offline model (lookahead <= 0, the teacher ``liveband
render`` uses by default) hears ``-lookahead`` steps ahead, because a file knows them.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine import parts as P
from engine.chart import Chart
from engine.clock import DEFAULT_METER, DEFAULT_TEMPO, METERS, Clock  # METERS: 12/8 too, not only the model's
from engine.events import NOTE_OFF, NOTE_ON, EventQueue
from engine.feel import Feel
from engine.generator import GeneratorMetrics, StreamingGenerator
from engine.melody_file import Melody
from engine.mixer import Mixer
from engine.quantiser import Quantiser
from engine.render_audio import MixStats, RenderJob, audio_loop, audio_process, raise_child_error
from engine.renderer import EventLog, PartRenderer
from engine.styles import DEFAULT_STYLE, get_style
from engine.synth import Synth
from engine.wav import WavWriter
from models.contract import Accompanist
from models.sampling import DEFAULT_DENSITY, DEFAULT_HARMONY_FOLLOW, DEFAULT_TEMPERATURE, ControlledSampler

_FORK: multiprocessing.context.ForkContext | None
try:  # fork: the child inherits the job as it is (no pickling, no second import)
    _FORK = multiprocessing.get_context("fork")
except ValueError:  # pragma: no cover - platforms without fork render in one process
    _FORK = None


@dataclass(frozen=True)
class RenderSettings:
    # the app's and the command line's defaults (liveband.config reads the same constants)
    style: str = DEFAULT_STYLE
    tempo: float = DEFAULT_TEMPO
    meter: str = DEFAULT_METER
    temperature: float = DEFAULT_TEMPERATURE
    density: float = DEFAULT_DENSITY
    harmony_follow: float = DEFAULT_HARMONY_FOLLOW
    seed: int = 0
    chunk_steps: int = 4
    margin_steps: int = 2
    sample_rate: int = 48000
    # frames per Mixer.process call: offline nobody hears the block latency, and each call
    # costs Python time (docs/engine.md, "Offline render"). Events stay sample-accurate
    # at any size; only the limiter's ramps follow blocks.
    block: int = 4096
    count_in_bars: int = 0
    tail_bars: int = 1  # the band plays on one bar after the melody ends
    release_s: float = 1.5  # then everything is released and rings out this long
    # True: generate in the live worker thread on the simulated clock (the render loop
    # waits for it), so model and synth could overlap. Same output bit for bit, but the
    # thread hand-offs cost more than the overlap wins on a loaded machine (docs/engine.md,
    # "Offline render"), so the default generates in the render thread.
    worker_thread: bool = False
    # True: the audio (synth, mixer, WAV) is rendered in a forked process while this one
    # generates the band, so the model and FluidSynth use both cores; same bits as one
    # process. Off by default: a fork copies every lock other threads hold at that moment,
    # so only a process without live audio/UI threads should ask (`liveband render`, the
    # bench). Without fork, or with worker_thread, one process renders.
    synth_process: bool = False
    programs: dict[str, int] = field(default_factory=dict)
    muted: tuple[str, ...] = ()
    feel: Feel = field(default_factory=Feel)  # swing, fills, half/double time, humanise
    chart: Chart | None = None  # a chord chart the band's chord stream follows
    # True: the band plays as the live app does with no key fixed: it listens first, then
    # keeps to the key the melody implies (engine.band_key), so `liveband eval` can
    # measure what a player hears live; False (a render): no key is imposed
    listen: bool = False

    def __post_init__(self) -> None:
        get_style(self.style)  # ValueError naming the styles
        if self.meter not in METERS:
            raise ValueError(f"meter must be one of {', '.join(METERS)}, got {self.meter!r}")
        if self.block <= 0 or self.sample_rate <= 0:
            raise ValueError("block and sample rate must be positive")
        ControlledSampler(0, self.temperature, self.density, self.harmony_follow)  # validates
        for name in self.muted:
            P.part(name)


@dataclass
class RenderResult:
    events: list[tuple[int, int, int, int, int]]  # band + melody, time-ordered, samples
    clock: Clock
    frames: int
    metrics: GeneratorMetrics
    audio: np.ndarray | None  # (frames, 2) float32 when kept
    seconds_wall: float = 0.0
    late_mixer_events: int = 0
    steps: int = 0
    mix: MixStats = field(default_factory=MixStats)
    chords: list[tuple[int, int]] = field(default_factory=list)  # (step, chord token) at each change


def melody_events(melody: Melody, clock: Clock) -> list[tuple[int, bool, int, int]]:
    """(sample, on, pitch, velocity) for each note boundary, time-ordered, releases
    before onsets at the same sample."""
    out = []
    for n in melody.notes:
        out.append((clock.beat_to_sample(n.start), True, n.pitch, n.velocity))
        out.append((clock.beat_to_sample(n.end), False, n.pitch, 0))
    out.sort(key=lambda e: (e[0], e[1]))
    return out


def _end_step(melody: Melody, clock: Clock, s: RenderSettings) -> int:
    """The band commits steps before this one: the end of the bar after the melody's
    last note, then ``tail_bars`` more."""
    last_step = int(math.ceil(melody.end_beat * 4 - 1e-9))
    return (last_step // clock.bar_steps + 1 + s.tail_bars) * clock.bar_steps


def render_frames(melody: Melody, settings: RenderSettings) -> int:
    """Frames of audio ``render_melody`` will write for ``melody`` (tail and release
    included), known before anything is rendered."""
    s = settings
    clock = Clock(s.sample_rate, s.tempo, s.meter, s.count_in_bars)
    return clock.step_time(_end_step(melody, clock, s)) + int(s.release_s * s.sample_rate)


def render_melody(
    melody: Melody,
    accompanist: Accompanist,
    settings: RenderSettings,
    soundfont: str | Path,
    wav_path: str | Path | None = None,
    *,
    keep_audio: bool = False,
    backend: str = "",
    progress: Callable[[int, int], None] | None = None,
    synth_gain: float = 0.5,
) -> RenderResult:
    """Accompany ``melody`` and render the mix. ``progress(frames_done, frames_total)``
    is called after each block (the audio process's progress when there is one).
    Thread: the caller's (it is the render thread)."""
    t_wall = time.perf_counter()
    s = settings
    if not melody.notes:
        raise ValueError("the melody has no notes")
    clock = Clock(s.sample_rate, s.tempo, s.meter, s.count_in_bars)
    log = EventLog()  # the band's events (for the MIDI file and the audio process)
    renderer = PartRenderer(
        [log], s.style, s.meter, seed=s.seed, density=s.density, programs=s.programs, feel=s.feel, clock=clock
    )
    renderer.chord_log = []  # the band's chord stream, for RenderResult.chords
    renderer.muted.update(x for x in s.muted if x != "melody")
    quantiser = Quantiser(clock)
    sampler = ControlledSampler(s.seed, s.temperature, s.density, s.harmony_follow)
    mel = melody_events(melody, clock)
    for t, on, pitch, _ in mel:
        quantiser.note(t, pitch, on)
    play_melody = "melody" not in s.muted
    # the melody the mixer plays, as the MIDI file records it
    mel_log = (
        [(t, NOTE_ON if on else NOTE_OFF, P.MELODY.channel, pitch, vel) for t, on, pitch, vel in mel]
        if play_melody
        else []
    )
    end_step = _end_step(melody, clock, s)
    job = RenderJob(
        s.sample_rate,
        s.block,
        clock,
        mel,
        play_melody,
        end_step,
        clock.step_time(end_step),
        clock.step_time(end_step) + int(s.release_s * s.sample_rate),
        Path(soundfont),
        synth_gain,
        None if wav_path is None else Path(wav_path),
    )

    def generator(clock_source: Callable[[], int]) -> StreamingGenerator:
        return StreamingGenerator(
            accompanist,
            clock,
            renderer,
            style=s.style,
            sampler=sampler,
            quantiser=quantiser,
            chunk_steps=s.chunk_steps,
            margin_steps=s.margin_steps,
            clock_source=clock_source,
            backend=backend,
            offline=True,
            chart=s.chart,
            listen=s.listen,
        )

    if s.synth_process and not s.worker_thread and _FORK is not None:
        gen, audio, late_events, mix = _render_two_processes(s, job, generator, renderer, log, keep_audio, progress)
    else:
        gen, audio, late_events, mix = _render_one_process(s, job, generator, renderer, log, keep_audio, progress)
    # band before melody at equal times, whatever the threads' interleaving
    events = sorted(log.events + mel_log, key=lambda e: e[0])
    return RenderResult(
        events,
        clock,
        job.total,
        gen.metrics(),
        audio,
        time.perf_counter() - t_wall,
        late_events,
        gen.steps,
        mix,
        renderer.chord_log or [],
    )


def _render_one_process(
    s: RenderSettings, job: RenderJob, generator, renderer: PartRenderer, log: EventLog, keep_audio: bool, progress
) -> tuple[StreamingGenerator, np.ndarray | None, int, MixStats]:
    """Model and synth take turns in this process (``worker_thread``: the generator in its
    live worker thread on the simulated clock, this thread waiting for it)."""
    band_q = EventQueue(8192)
    renderer.sinks.insert(0, band_q)
    synth = Synth(job.soundfont, s.sample_rate, gain=job.synth_gain)
    try:
        # offline nobody waits on the render thread: let the synth release the GIL so
        # the generator thread runs while FluidSynth renders
        mixer = Mixer(synth, s.sample_rate, s.block, hold_gil=not s.worker_thread)
        gen = generator(lambda: mixer.clock)
        writer = WavWriter(job.wav_path, s.sample_rate) if job.wav_path is not None else None
        audio = np.zeros((job.total, 2), np.float32) if keep_audio else None
        released = False
        end_step = job.end_step
        gen.prime()
        threaded = s.worker_thread
        if threaded:
            # the live worker thread, on the simulated clock: it generates the next steps
            # while this thread renders audio (the synth and the model release the GIL),
            # and this loop never renders a block before the band is committed through it
            gen.until_step = end_step
            gen.start()

        def before(now: int, n: int) -> None:
            nonlocal released
            if released:
                return
            need = job.clock.step_at(now + n - 1)  # the last step this block touches
            if threaded:
                gen.wait_committed(min(need, end_step - 1))
            elif gen.next_step < end_step:
                # due at the block's last frame: a block may be longer than a step
                gen.pump(now + n - 1, until_step=end_step)
            if need >= end_step:
                gen.stop()  # one producer at a time
                renderer.all_off(job.end_time)
                released = True

        def after() -> None:
            if threaded and not released and gen.due(mixer.clock):
                gen.wake()
            if progress is not None:
                progress(mixer.clock, job.total)

        try:
            mix = audio_loop(job, mixer, band_q, writer, audio, before, after)
        finally:
            gen.stop()
            if writer is not None:
                writer.close()
        return gen, audio, mixer.late_events, mix
    finally:
        synth.close()


def _render_two_processes(
    s: RenderSettings, job: RenderJob, generator, renderer: PartRenderer, log: EventLog, keep_audio: bool, progress
) -> tuple[StreamingGenerator, np.ndarray | None, int, MixStats]:
    """The band in this process, the audio in a forked one, at the same time.

    Why: the model's steps and the audio (FluidSynth, mixer, limiter, WAV) are each
    single-threaded, so on two cores they can overlap: the longer of the two sets the
    render's time instead of their sum (docs/engine.md, "Offline render", has where the
    time goes). The audio process runs the
    one-process render loop unchanged except that the band's events arrive through a
    pipe (a chunk at a time, each with the time before which the band is final) instead
    of from ``pump``; the mixer sees the same events before the same blocks, so the audio
    is the same, bit for bit. Its clock (shared memory) is the generator's clock source,
    so a step committed after the audio passed it would still count as late.
    """
    audio = shared = None
    if keep_audio:
        shared = mmap.mmap(-1, job.total * 8)  # MAP_SHARED: the child writes it
        audio = np.frombuffer(shared, np.float32).reshape(job.total, 2)
    assert _FORK is not None  # render_melody asks for two processes only with fork
    audio_clock = _FORK.RawValue("q", 0)
    conn, child_conn = _FORK.Pipe()
    proc = _FORK.Process(
        target=audio_process,
        args=(job, child_conn, audio, audio_clock, conn, os.getpid()),
        name="liveband-render-audio",
        daemon=True,
    )
    gen = generator(lambda: audio_clock.value)
    # fork first: the child loads the SoundFont while this process warms the model up
    proc.start()
    child_conn.close()
    sent = 0

    def send(through: int, final: bool = False) -> None:
        nonlocal sent
        events = log.events[sent:]
        sent = len(log.events)
        try:
            conn.send((events, through))
        except (BrokenPipeError, ConnectionResetError):
            raise_child_error(conn, proc)
        if not final and conn.poll():  # before the end the child only speaks to fail
            raise_child_error(conn, proc)

    try:
        gen.prime()
        send(job.clock.step_time(gen.next_step))
        clock = job.clock
        while gen.next_step < job.end_step:
            target = min(gen.next_step + s.chunk_steps, job.end_step)
            gen.pump(clock.step_time(target), until_step=target)
            if gen.next_step >= job.end_step:
                renderer.all_off(job.end_time)
                send(job.total + 1, final=True)  # nothing more will come
            else:
                send(clock.step_time(gen.next_step))
            if progress is not None:
                progress(audio_clock.value, job.total)
        while not conn.poll(0.05):
            if not proc.is_alive() and not conn.poll():
                raise RuntimeError("the render's audio process ended without a result")
            if progress is not None:
                progress(audio_clock.value, job.total)
        kind, value = conn.recv()
        if kind != "done":
            raise value
        proc.join()
        if progress is not None:
            progress(job.total, job.total)
        late_events, mix = value
        return gen, audio, late_events, mix
    finally:
        conn.close()
        if proc.is_alive():
            proc.terminate()
            proc.join()
