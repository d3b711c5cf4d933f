"""`liveband render INPUT -o OUT.wav [--midi-out OUT.mid] ...`: accompany a melody offline.

Runs the live engine (generator, part renderer, mixer) on a simulated clock, writes the
mixed WAV and, when asked, a multi-track MIDI (one track per part plus the melody).
Deterministic for a seed.

Nothing is lost: an output may not be the input or the other output, each is written
beside its final name and renamed into place only when the whole render succeeded, and
Ctrl-C, SIGTERM, a full disk or an error remove the temporary files and stop the audio
process. ``--stems`` adds each part as its own WAV beside the mix (OUT.bass.wav, ...),
adding up to the mix; the mix (and its stems, by the same gain) is brought to
``--loudness`` LUFS (default -16) with peaks under -1 dBFS (engine.export). A render
longer than ``--max-minutes`` or than the disk can hold is refused before it starts.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from pathlib import Path

from engine.export import CEILING_DBFS
from liveband.config import DEFAULT_BACKEND, EngineConfig
from liveband.paths import find_soundfont
from liveband.rendering import (
    DEFAULT_MAX_MINUTES,
    Outputs,
    band_timing,
    check_outputs,
    load_melody,
    open_band,
    refuse_too_long,
    render_settings,
    scratch_bytes_per_frame,
    write_render,
)


def _say(msg: str) -> None:
    print(f"liveband render: {msg}", file=sys.stderr)


class _PlainProgress:
    """Progress for a log or a pipe (where tqdm draws nothing): a plain line at each 10 %
    step, and at least every 30 s, for renders of a minute of audio or more."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.step = 0
        self.last = time.monotonic()

    def update(self, done: int, total: int) -> None:
        if total < 60 * self.sample_rate or done >= total:
            return
        step = done * 10 // total
        now = time.monotonic()
        if step > self.step or now - self.last >= 30.0:
            self.step, self.last = max(step, self.step), now
            _say(f"{done * 100 // total}% ({done / self.sample_rate:.0f} of {total / self.sample_rate:.0f} s of audio)")


class _Stopped(BaseException):
    """SIGTERM/SIGHUP during a render: unwinds like Ctrl-C, so that every cleanup runs
    (the audio process is stopped, the temporary files are removed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _catch_stops():
    """Turn SIGINT/SIGTERM/SIGHUP into exceptions for this render; returns the undo.
    A repeat within 3 s is ignored, so a second Ctrl-C cannot cut the cleanup short."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    first: list[float] = []

    def handler(signum, frame) -> None:
        if first and time.monotonic() - first[0] < 3.0:
            return
        first[:] = [time.monotonic()]
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise _Stopped(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    return lambda: [signal.signal(sig, h) for sig, h in old.items()]


def _loudness_line(level, target: float) -> str:
    """What normalisation did, in one line."""
    if not math.isfinite(level.measured_lufs):
        return "the mix is silent; loudness left as rendered"
    line = f"loudness {level.lufs:.1f} LUFS (rendered at {level.measured_lufs:.1f}; {level.gain_db:+.1f} dB)"
    if level.held_back_db > 0.05:
        line += (
            f", {level.held_back_db:.1f} dB under the {target:g} LUFS target so that peaks stay under "
            f"{CEILING_DBFS:g} dBFS"
        )
    return line


def main(args) -> int:
    outputs = Outputs()
    restore = _catch_stops()
    try:
        return _render(args, outputs)
    except KeyboardInterrupt:
        outputs.discard()
        _say("interrupted; no output was written")
        return 130
    except _Stopped as stop:
        outputs.discard()
        _say(f"stopped by {signal.Signals(stop.signum).name}; no output was written")
        return 128 + stop.signum
    finally:
        outputs.discard()  # after commit() there is nothing left to discard
        restore()


def _render(args, outputs: Outputs) -> int:
    from engine.offline import render_frames

    src = Path(args.input)
    out = Path(args.output)
    midi_out = Path(args.midi_out) if args.midi_out else None
    stems = bool(getattr(args, "stems", False))
    loudness = getattr(args, "loudness", None)
    check_outputs(src, out, midi_out, stems)
    chart = None
    if getattr(args, "chart", None):
        from engine.chart import load_chart

        chart = load_chart(args.chart)  # before the long work; a bad chart is one line
    melody = load_melody(src, getattr(args, "tracker", "pesto"), args.tempo, say=_say)
    tempo, meter = band_timing(melody, args.tempo, args.meter, _say)
    # validates tempo, meter, style and the controls with clear messages
    cfg = EngineConfig(
        tempo=tempo,
        meter=meter,
        style=args.style,
        temperature=args.temperature,
        density=args.density,
        harmony_follow=args.harmony_follow,
        backend=getattr(args, "backend", None) or DEFAULT_BACKEND,
        seed=args.seed,
        checkpoint=args.checkpoint,
        count_in_bars=0,
        swing=getattr(args, "swing", None),
        fills=getattr(args, "fills", None),
        time_feel=getattr(args, "time_feel", None),
        humanise=getattr(args, "humanise", 0.0),
    )
    # this command has no audio or UI threads, so the audio may render in a forked
    # process while this one runs the model (engine.offline.RenderSettings.synth_process)
    settings = render_settings(cfg, tempo=cfg.tempo, meter=cfg.meter, chart=chart, synth_process=True)
    refuse_too_long(
        src,
        out,
        render_frames(melody, settings),
        settings.sample_rate,
        getattr(args, "max_minutes", None) or DEFAULT_MAX_MINUTES,
        scratch_bytes_per_frame(stems, loudness),
    )
    soundfont = find_soundfont(args.soundfont)
    melody, acc, backend = open_band(melody, cfg.backend, cfg.checkpoint, _say)
    from tqdm import tqdm

    with tqdm(
        total=1,
        unit="s",
        unit_scale=True,
        desc="render",
        disable=None,
        file=sys.stderr,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}]",
    ) as bar:
        plain = _PlainProgress(settings.sample_rate) if bar.disable else None  # not a terminal

        def progress(done: int, total: int) -> None:
            if plain is not None:
                plain.update(done, total)
                return
            bar.total = total / settings.sample_rate
            bar.n = done / settings.sample_rate
            if done == total or done % (settings.sample_rate * 2) < settings.block:
                bar.refresh()

        done = write_render(
            melody,
            acc,
            backend,
            settings,
            soundfont,
            out,
            midi_out,
            outputs,
            stems=stems,
            loudness=loudness,
            progress=progress,
        )
    result, level = done.result, done.level
    m = result.metrics
    seconds = result.frames / settings.sample_rate
    speed = seconds / result.seconds_wall if result.seconds_wall > 0 else float("inf")
    print(
        f"wrote {out} ({seconds:.1f} s, {cfg.style}, {round(cfg.tempo, 2):g} BPM {cfg.meter}, seed {cfg.seed}, "
        f"{backend}, {speed:.1f}x real time)" + (f" and {args.midi_out}" if args.midi_out else "")
    )
    if done.stems:
        print(f"stems: {', '.join(str(path) for path in done.stems.values())}")
    if level is not None and loudness is not None:  # a level comes only with a loudness target
        print(_loudness_line(level, loudness))  # a result, like "wrote": stdout
    if m.late_steps:
        _say(f"{m.late_steps} steps were generated late (the band held)")
    for msg in result.mix.notices(settings.sample_rate):
        _say(f"note: {msg}")
    return 0
