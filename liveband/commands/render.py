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

import inspect
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.errors import first_line
from engine.export import CEILING_DBFS
from liveband.cli import UserError
from liveband.config import EngineConfig
from liveband.paths import find_soundfont
from liveband.rendering import DEFAULT_BACKEND, RECORDING_TEMPO, band_timing, open_band
from models.atomic import temp_beside

WAV_SUFFIXES = (".wav", ".wave")
MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")
# minutes of audio; a longer render must be asked for with --max-minutes
DEFAULT_MAX_MINUTES = 120.0


def _say(msg: str) -> None:
    print(f"liveband render: {msg}", file=sys.stderr)


def cannot_write(path: Path | str, exc: OSError) -> UserError:
    """The one line for an output that could not be written (a full disk, a read-only
    folder), naming the output rather than its temporary file."""
    return UserError(f"cannot write {path}: {exc.strerror or exc}")


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same inode when both exist (links, case-
    insensitive file systems), else the same resolved path."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


@dataclass(frozen=True)
class Wording:
    """How a render's refusals name its outputs and the way past the length cap: the
    command's options, or the app's words (the checks are the same)."""

    out: str = "-o {}"
    midi: str = "--midi-out {}"
    stems: str = "--stems"
    longer: str = "pass --max-minutes {} to render it anyway"


# the app has no options: it names the files, and the command that renders a longer file
APP_WORDING = Wording(
    out="the WAV {}", midi="the MIDI {}", stems="the stems", longer="render it with `liveband render --max-minutes {}`"
)


def check_outputs(
    src: Path, out: Path, midi_out: Path | None, stems: bool = False, wording: Wording = Wording()
) -> None:
    """Refuse, before anything is read or written, an output of the wrong kind, or one
    that is the input or another output (a render never writes over its input, nor two
    outputs to one file)."""
    w = wording
    if out.suffix.lower() not in WAV_SUFFIXES:
        raise UserError(f"{w.out.format(out)}: the output must be a .wav file")
    if midi_out is not None and midi_out.suffix.lower() not in MIDI_SUFFIXES:
        raise UserError(f"{w.midi.format(midi_out)}: the MIDI output must be a .mid file")
    if same_file(src, out):
        raise UserError(f"{w.out.format(out)} is the input file; choose another output")
    if midi_out is not None:
        if same_file(src, midi_out):
            raise UserError(f"{w.midi.format(midi_out)} is the input file; choose another output")
        if same_file(out, midi_out):
            raise UserError(
                f"{w.midi.format(midi_out)} and {w.out.format(out)} are the same file; give them different names"
            )
    for stem in stem_paths(out).values() if stems else ():
        for other, what in ((src, "the input file"), (midi_out, None if midi_out is None else w.midi.format(midi_out))):
            if other is not None and same_file(stem, other):
                raise UserError(f"{w.stems} would write {stem}, which is {what}; choose another {w.out.format('name')}")


def stem_paths(out: Path) -> dict[str, Path]:
    """Where ``--stems`` writes each part: beside the mix, OUT.<part>.wav."""
    from engine import parts as P

    return {p.name: out.with_name(f"{out.stem}.{p.name}{out.suffix}") for p in P.ALL_PARTS}


class _Outputs:
    """Each output is written to a temporary file beside it (same folder, so the rename
    is atomic) and renamed into place only when the whole render has succeeded; on any
    failure or interrupt the temporary files are removed and nothing is replaced."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, Path]] = []  # (temporary, final)
        self._scratch: list[Path] = []  # intermediate files, never kept

    def temp_for(self, final: Path, keep: bool = True) -> Path:
        """A new temporary file beside ``final``, renamed onto it at commit (``keep=False``:
        an intermediate, removed at commit as on failure)."""
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_beside(final, ".part")
        if keep:
            self._files.append((tmp, final))
        else:
            self._scratch.append(tmp)
        return tmp

    def commit(self) -> None:
        for tmp, final in self._files:
            try:
                os.replace(tmp, final)
            except OSError as exc:
                raise cannot_write(final, exc) from None
        self._files.clear()
        self._remove_scratch()

    def discard(self) -> None:
        for tmp, _ in self._files:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
        self._files.clear()
        self._remove_scratch()

    def _remove_scratch(self) -> None:
        for tmp in self._scratch:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
        self._scratch.clear()


Outputs = _Outputs  # the app's render (Session.render_file) writes its files the same way


def load_melody(
    path: Path, tracker: str = "pesto", tempo: float | None = None, say: Callable[[str], None] | None = None
):
    """The melody of a MIDI file or (through the pitch room) of a hummed/sung WAV.

    A recording has no beat grid: its notes keep their timing in seconds, read as beats
    at ``tempo`` (default 100 BPM), so the band plays at that tempo under them. ``say``
    gets the tracker's hints about a recording (clipping, NaN samples), as transcribe
    prints them."""
    from engine.melody_file import Melody, MelodyFileError, MelodyNote, read_melody_midi

    suffix = path.suffix.lower()
    if suffix in WAV_SUFFIXES:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        try:
            from engine.pitch import transcribe_wav
        except ImportError:
            raise UserError(
                f"{path}: accompanying a WAV needs the pitch tracker (engine.pitch), "
                "which is not available in this build; transcribe it to MIDI first"
            ) from None
        notices: list[str] = []
        try:
            notes = transcribe_wav(str(path), tracker=tracker, notices=notices)
        except (ValueError, OSError, RuntimeError) as exc:
            raise UserError(f"{path}: {first_line(exc)}") from None
        if not notes:
            why = f" ({'; '.join(notices)})" if notices else ""
            raise UserError(f"{path}: no sung or hummed notes were found in the recording{why}")
        if say is not None:
            for msg in notices:
                say(f"note: {msg}")
        bpm = tempo or RECORDING_TEMPO
        beats = bpm / 60.0
        mel = tuple(
            MelodyNote(start * beats, end * beats, int(pitch), int(vel))
            for pitch, start, end, vel in sorted(notes, key=lambda n: n[1])
            if end > start
        )
        return Melody(mel, bpm, None, None, "transcribed")
    if suffix not in MIDI_SUFFIXES:
        raise UserError(f"{path}: expected a MIDI file (.mid) or a WAV recording (.wav)")
    try:
        return read_melody_midi(path)
    except MelodyFileError as exc:
        raise UserError(str(exc)) from None


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours" if seconds >= 5400 else f"{seconds / 60:.1f} minutes"


def scratch_bytes_per_frame(stems: bool, loudness: float | None) -> int:
    """Disk a render needs beyond its 16-bit stereo mix, per frame: raw float (8 bytes a
    frame) and 24-bit WAV (6) for each of up to five stems; the mix before loudness
    normalisation (4)."""
    return (5 * 14 if stems else 0) + (4 if loudness is not None else 0)


def refuse_too_long(
    src: Path,
    out: Path,
    frames: int,
    sample_rate: int,
    max_minutes: float,
    extra_bytes_per_frame: int = 0,
    wording: Wording = Wording(),
) -> None:
    """Refuse, before anything starts, a render longer than ``max_minutes`` of audio (a
    stray huge delta time in a tiny MIDI file would otherwise start a days-long render)
    or one whose WAV (and the stems' and loudness pass's files: ``extra_bytes_per_frame``)
    would not fit on the output's disk."""
    seconds = frames / sample_rate
    wav_bytes = frames * 4 + 44  # 16-bit stereo
    if seconds > max_minutes * 60:
        raise UserError(
            f"{src}: the render would last {_duration(seconds)} of audio ({_size(wav_bytes)}), "
            f"over the {max_minutes:g}-minute cap; {wording.longer.format(math.ceil(seconds / 60))}"
        )
    folder = out.resolve().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return  # unknown: writing will tell
    free = usage.free
    need = wav_bytes + frames * extra_bytes_per_frame
    if usage.total and need > free:  # (a pseudo file system reports no size)
        raise UserError(f"cannot write {out}: the render needs {_size(need)} and {folder} has {_size(free)} free")


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


def mix_synth_gain(render_melody) -> float:
    """The synth gain ``render_melody`` renders the mix at (its default): the stems are
    rendered at the same, so that they add up to the mix."""
    return float(inspect.signature(render_melody).parameters["synth_gain"].default)


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
    outputs = _Outputs()
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


def _render(args, outputs: _Outputs) -> int:
    from engine.midi_export import write_midi
    from engine.offline import RenderSettings, render_frames, render_melody
    from engine.synth import SoundFontError

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
    settings = RenderSettings(
        style=cfg.style,
        tempo=cfg.tempo,
        meter=cfg.meter,
        temperature=cfg.temperature,
        density=cfg.density,
        harmony_follow=cfg.harmony_follow,
        seed=cfg.seed,
        synth_process=True,
        feel=cfg.feel,
        chart=chart,
    )
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

        try:
            # normalised, or the sum of the stems: the mix is rendered to an intermediate file first
            wav_tmp = outputs.temp_for(out, keep=loudness is None and not stems)
            result = render_melody(melody, acc, settings, soundfont, wav_tmp, backend=backend, progress=progress)
        except SoundFontError as exc:
            raise UserError(str(exc)) from None
        except OSError as exc:
            raise cannot_write(out, exc) from None
    level = None
    stem_files: dict[str, tuple[Path, Path]] = {}
    if stems or loudness is not None:
        from engine.export import export_stems_and_loudness, stem_parts

        finals = stem_paths(out)
        try:
            for part in stem_parts(result.events) if stems else ():
                final = finals[part.name]
                stem_files[part.name] = (outputs.temp_for(final, keep=False), outputs.temp_for(final))
            level = export_stems_and_loudness(
                wav_tmp,
                outputs.temp_for(out) if loudness is not None or stems else out,
                stem_files,
                result.events,
                result.frames,
                soundfont,
                sample_rate=settings.sample_rate,
                block=settings.block,
                synth_gain=mix_synth_gain(render_melody),
                target_lufs=loudness,
            )
        except SoundFontError as exc:
            raise UserError(str(exc)) from None
        except OSError as exc:
            raise cannot_write(f"{out} or its stems", exc) from None
    if midi_out is not None:
        try:
            write_midi(outputs.temp_for(midi_out), result.events, result.clock)
        except OSError as exc:
            raise cannot_write(midi_out, exc) from None
    outputs.commit()
    m = result.metrics
    seconds = result.frames / settings.sample_rate
    speed = seconds / result.seconds_wall if result.seconds_wall > 0 else float("inf")
    print(
        f"wrote {out} ({seconds:.1f} s, {cfg.style}, {round(cfg.tempo, 2):g} BPM {cfg.meter}, seed {cfg.seed}, "
        f"{backend}, {speed:.1f}x real time)" + (f" and {args.midi_out}" if args.midi_out else "")
    )
    if stem_files:
        print(f"stems: {', '.join(str(path) for name, path in stem_paths(out).items() if name in stem_files)}")
    if level is not None and loudness is not None:  # a level comes only with a loudness target
        print(_loudness_line(level, loudness))  # a result, like "wrote": stdout
    if m.late_steps:
        _say(f"{m.late_steps} steps were generated late (the band held)")
    for msg in result.mix.notices(settings.sample_rate):
        _say(f"note: {msg}")
    return 0
