"""The audio half of an offline render (engine.offline): the audio callback's stand-in
loop (``audio_loop``: the band's and the player's events into the mixer, a block at a
time, into the WAV and the kept audio), and the forked process that runs it while the
render's own process generates the band (``audio_process``; its errors are raised in
the parent by ``raise_child_error``).
"""

from __future__ import annotations

import collections
import os
import pickle
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine import parts as P
from engine.clock import Clock
from engine.events import NOTE_OFF, NOTE_ON, EventQueue
from engine.mixer import Mixer
from engine.synth import Synth
from engine.wav import WavWriter


@dataclass
class MixStats:
    """What the limiter had to do to the mix: where a render clipped, for the user."""

    limited_frames: int = 0  # frames rendered while the limiter held the mix down
    max_gain_reduction_db: float = 0.0  # how far the mix went over the limiter's ceiling
    nonfinite_blocks: int = 0  # blocks of NaN/inf audio replaced by silence

    def notices(self, sample_rate: int) -> list[str]:
        """One line per problem (none for a clean mix), as transcribe reports its input's."""
        out = []
        if self.limited_frames:
            out.append(
                f"the mix clipped: peaks up to {self.max_gain_reduction_db:.1f} dB over full scale were "
                f"held down by the limiter for {self.limited_frames / sample_rate:.1f} s"
            )
        if self.nonfinite_blocks:
            out.append(
                f"{self.nonfinite_blocks} blocks of invalid (NaN/inf) audio from the synth were replaced by silence"
            )
        return out


@dataclass(frozen=True)
class RenderJob:
    """What both halves of a render (the band's and the audio's) agree on."""

    sample_rate: int
    block: int  # frames per Mixer.process call
    clock: Clock
    mel: list  # engine.offline.melody_events(): (sample, on, pitch, velocity)
    play_melody: bool
    end_step: int  # the band commits steps < end_step ...
    end_time: int  # ... and releases everything here
    total: int  # frames of audio (the release rings out until here)
    soundfont: Path
    synth_gain: float
    wav_path: Path | None


def audio_loop(
    job: RenderJob,
    mixer: Mixer,
    band_q: EventQueue,
    writer: WavWriter | None,
    audio: np.ndarray | None,
    before: Callable[[int, int], None],
    after: Callable[[], None],
) -> MixStats:
    """The audio callback's stand-in: ``before(now, n)`` returns once the band is queued
    through the block [now, now + n); then the player's notes of the block are queued and
    ``Mixer.process`` renders it. Thread: whichever thread owns the mixer."""
    mel_q = EventQueue(1024)
    mixer.add_queue(band_q)  # band first: at equal times the band's events go first
    mixer.add_queue(mel_q)
    mel, play = job.mel, job.play_melody
    buf = np.zeros((job.block, 2), np.float32)
    mi = 0
    total = job.total
    stats = MixStats()
    while mixer.clock < total:
        now = mixer.clock
        n = min(job.block, total - now)
        before(now, n)
        # the player's own notes, a block at a time (the queue is small)
        while mi < len(mel) and mel[mi][0] < now + n:
            t, on, pitch, vel = mel[mi]
            if play:
                mel_q.push(t, NOTE_ON if on else NOTE_OFF, P.MELODY.channel, pitch, vel)
            mi += 1
        view = buf[:n]
        mixer.process(view)
        if mixer.gain_reduction_db > 0.0:
            stats.limited_frames += n
            stats.max_gain_reduction_db = max(stats.max_gain_reduction_db, mixer.gain_reduction_db)
        if writer is not None:
            writer.write(view)
        if audio is not None:
            audio[now : now + n] = view
        after()
    stats.nonfinite_blocks = mixer.nonfinite_blocks
    return stats


def raise_child_error(conn: Connection, proc: BaseProcess) -> None:
    """Raise here what the audio process sent instead of its result (or that it died)."""
    try:
        kind, value = conn.recv()
    except (EOFError, OSError):
        proc.join(1.0)
        raise RuntimeError(f"the render's audio process ended (exit code {proc.exitcode})") from None
    if kind == "error":
        raise value
    raise RuntimeError(f"the render's audio process sent {kind!r} early")


def audio_process(
    job: RenderJob,
    conn: Connection,
    audio: np.ndarray | None,
    audio_clock: Any,
    parent_conn: Connection | None = None,
    parent_pid: int | None = None,
) -> None:
    """The forked audio half: synth, mixer, WAV. Sends ("done", (late mixer events, MixStats)) or
    ("error", exception). Thread: the child process's only thread.

    It never outlives the parent: it closes the parent's end of the pipe it inherited
    (else its ``recv`` would wait forever once the parent is gone), dies with the parent
    (Linux), ignores Ctrl-C (which reaches the whole process group: the parent decides,
    and terminates it) and lets SIGTERM end it at once (the handler the parent may have
    installed is not for this process)."""
    if parent_conn is not None:
        parent_conn.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent_pid)
    try:
        synth = Synth(job.soundfont, job.sample_rate, gain=job.synth_gain)
        writer = None
        try:
            mixer = Mixer(synth, job.sample_rate, job.block)
            band_q = EventQueue(8192)
            pending: collections.deque = collections.deque()
            through = -1 << 62
            writer = WavWriter(job.wav_path, job.sample_rate) if job.wav_path is not None else None

            def before(now: int, n: int) -> None:
                nonlocal through
                end = now + n
                while through < end:  # wait for the band to be final here
                    events, through = conn.recv()
                    pending.extend(events)
                # only this block's events: the mixer would pop no others
                while pending and pending[0][0] < end:
                    band_q.push(*pending.popleft())

            def after() -> None:
                audio_clock.value = mixer.clock

            mix = audio_loop(job, mixer, band_q, writer, audio, before, after)
            if writer is not None:
                writer.close()
                writer = None
            conn.send(("done", (mixer.late_events, mix)))
        finally:
            if writer is not None:
                writer.close()
            synth.close()
    except BaseException as exc:  # the parent raises it as its own
        _send_quietly(conn, ("error", exc))
    finally:
        conn.close()


def _die_with_parent(parent_pid: int | None) -> None:
    """Ask Linux to kill this process when the parent dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the closed pipe still ends it
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before prctl took effect


def _send_quietly(conn: Connection, msg: tuple[str, BaseException]) -> None:
    """Send ``msg`` to a parent that may be gone (it stopped first: nothing to tell)."""
    try:
        try:
            conn.send(msg)
        except (pickle.PicklingError, TypeError, AttributeError):  # an exception pickle cannot carry
            kind, exc = msg
            conn.send((kind, RuntimeError(f"{type(exc).__name__}: {exc}")))
    except (OSError, EOFError):
        pass
