"""What both offline render paths share, the `render` command and the app's Render: one
code path, so a file renders the same from the app as from the command line.

- the melody of a file (MIDI, or a sung/hummed WAV through the pitch room), the band's
  tempo and meter for it, and the model it is rendered with;
- the checks before anything starts: no output over the input or another output, a
  length cap and a free-disk check;
- the writing: every output (mix, stems, MIDI) to a temporary file beside its name,
  all renamed into place only when the whole render succeeded (``Outputs``,
  ``write_render``); on any failure or interrupt nothing is replaced."""

from __future__ import annotations

import inspect
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from engine.errors import first_line
from engine.melody_file import Melody
from liveband.config import DEFAULT_BACKEND, DEFAULT_LUFS, DEFAULT_METER, DEFAULT_TEMPO, TEMPO_RANGE, EngineConfig
from liveband.errors import UserError
from models.atomic import temp_beside
from models.contract import Accompanist

if TYPE_CHECKING:
    from engine.chart import Chart
    from engine.offline import RenderSettings

# a recording has no beat grid: its seconds are read as beats at this tempo
RECORDING_TEMPO = DEFAULT_TEMPO
WAV_SUFFIXES = (".wav", ".wave")
MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")
# minutes of audio; a longer render must be asked for with --max-minutes
DEFAULT_MAX_MINUTES = 120.0


def band_timing(
    melody: Melody, tempo: float | None = None, meter: str | None = None, say: Callable[[str], None] = print
) -> tuple[float, str]:
    """The tempo and meter the band plays a melody file at: the ones given, else the
    file's (a tempo outside the band's range folded by octaves), else 100 BPM in 4/4.
    ``say`` gets a line for each thing of the file the band does not follow."""
    lo, hi = TEMPO_RANGE
    bpm = tempo if tempo is not None else (melody.tempo or RECORDING_TEMPO)
    if tempo is None and melody.tempo is not None and not lo <= bpm <= hi:
        # half/double time
        while bpm > hi:
            bpm /= 2
        while bpm < lo:
            bpm *= 2
        say(f"the file's tempo {melody.tempo:.1f} BPM is outside {lo:g}-{hi:g}; playing at {bpm:.1f} BPM")
    chosen = meter or melody.meter or DEFAULT_METER
    if meter is None and melody.source_meter and melody.meter is None:
        say(f"the file's meter {melody.source_meter} is not supported; playing in {chosen}")
    if melody.tempo_changes and tempo is None:
        say(f"the file changes tempo {melody.tempo_changes} time(s); the band keeps {bpm:.1f} BPM")
    return bpm, chosen


def open_band(
    melody: Melody, backend: str | None = None, checkpoint: str | None = None, say: Callable[[str], None] = print
) -> tuple[Melody, Accompanist, str]:
    """The model on ``backend`` (default onnx-cpu, with the usual fallback; default model:
    the shipped offline teacher, see ``models.runtime.default_offline_checkpoint``) and the
    melody moved by octaves into the model's range. Returns (melody, accompanist, backend used);
    a missing or broken checkpoint raises UserError."""
    from engine.backends import open_accompanist
    from engine.melody_file import DEFAULT_MELODY_RANGE, fit_to_range

    if checkpoint is None:
        # a file's whole melody is known: the offline teacher, which hears it a beat ahead
        from models.runtime import default_offline_checkpoint

        checkpoint = str(default_offline_checkpoint())
    try:
        acc, used = open_accompanist(backend or DEFAULT_BACKEND, checkpoint, notify=say)
    except FileNotFoundError as exc:
        raise UserError(f"model checkpoint not found: {exc.filename or exc}") from None
    except RuntimeError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    lo, hi = getattr(acc, "melody_range", DEFAULT_MELODY_RANGE)
    melody, shift = fit_to_range(melody, (lo, hi))
    if shift:
        octaves = abs(shift) // 12
        say(
            f"melody transposed {'up' if shift > 0 else 'down'} {octaves} octave{'s' if octaves > 1 else ''} "
            f"into the model's range (MIDI {lo}-{hi})"
        )
    return melody, acc, used


def render_settings(
    cfg: EngineConfig,
    *,
    tempo: float,
    meter: str,
    sample_rate: int | None = None,
    programs: Mapping[str, int] | None = None,
    muted: Iterable[str] = (),
    chart: Chart | None = None,
    synth_process: bool = False,
) -> RenderSettings:
    """The engine's render settings from the band's settings ``cfg`` (style, controls,
    seed, feel) at the melody file's ``tempo`` and ``meter``: the one place both render
    paths build them, so neither drops a setting the other keeps. ``sample_rate`` None:
    the engine's; ``chart``: the chords the band follows; ``synth_process``: only for a
    process without live audio/UI threads (engine.offline.RenderSettings)."""
    from engine.offline import RenderSettings

    return RenderSettings(
        style=cfg.style,
        tempo=tempo,
        meter=meter,
        temperature=cfg.temperature,
        density=cfg.density,
        harmony_follow=cfg.harmony_follow,
        seed=cfg.seed,
        synth_process=synth_process,
        programs=dict(programs or {}),
        muted=tuple(muted),
        feel=cfg.feel,
        chart=chart,
        sample_rate=RenderSettings.sample_rate if sample_rate is None else sample_rate,
    )


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
    finals = [out, *([midi_out] if midi_out is not None else []), *(stem_paths(out).values() if stems else ())]
    for final in finals:
        refuse_unwritable(final)


def refuse_unwritable(final: Path) -> None:
    """Refuse an output that could not be renamed into place at the end (a folder of that
    name, a missing or unwritable folder): told before the render, not after it. Missing
    folders are not made (a typo in -o would leave empty folders behind), as transcribe."""
    if final.is_dir():
        raise UserError(f"cannot write {final}: it is a folder")
    folder = final.parent
    if not folder.exists():
        raise UserError(f"cannot write {final}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"cannot write {final}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {final}: {folder} is not writable")


def stem_paths(out: Path) -> dict[str, Path]:
    """Where ``--stems`` writes each part: beside the mix, OUT.<part>.wav."""
    from engine import parts as P

    return {p.name: out.with_name(f"{out.stem}.{p.name}{out.suffix}") for p in P.ALL_PARTS}


class Outputs:
    """Each output is written to a temporary file beside it (same folder, so the rename
    is atomic) and renamed into place only when the whole render has succeeded; on any
    failure or interrupt the temporary files are removed and nothing is replaced."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, Path]] = []  # (temporary, final)
        self._scratch: list[Path] = []  # intermediate files, never kept

    def temp_for(self, final: Path, keep: bool = True) -> Path:
        """A new temporary file beside ``final``, renamed onto it at commit (``keep=False``:
        an intermediate, removed at commit as on failure)."""
        tmp = temp_beside(final, ".part")
        if keep:
            self._files.append((tmp, final))
        else:
            self._scratch.append(tmp)
        return tmp

    def commit(self) -> None:
        """Rename every temporary file onto its output, all or none: each old output is
        first moved aside, and when one rename fails the outputs already replaced get
        their old files back (a new output with none is removed)."""
        done: list[tuple[Path, Path | None]] = []  # (final, its old file moved aside, or None)
        try:
            for tmp, final in self._files:
                old = None
                try:
                    if os.path.lexists(final):
                        old = temp_beside(final, ".old")
                        try:
                            os.replace(final, old)
                        except OSError:
                            old.unlink()
                            raise
                    done.append((final, old))
                    os.replace(tmp, final)
                except OSError as exc:
                    raise cannot_write(final, exc) from None
        except BaseException:
            for final, old in reversed(done):
                try:
                    if old is not None:
                        os.replace(old, final)
                    else:
                        os.unlink(final)
                except OSError:
                    pass  # the old file stays beside it under its hidden name
            raise
        for _, old in done:
            if old is not None:
                old.unlink(missing_ok=True)
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
        if path.is_dir():
            raise UserError(f"{path} is a folder, not a WAV file")
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
            line = first_line(exc)  # the reader's errors name the file already
            raise UserError(line if str(path) in line else f"{path}: {line}") from None
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


def mix_synth_gain(render_melody) -> float:
    """The synth gain ``render_melody`` renders the mix at (its default): the stems are
    rendered at the same, so that they add up to the mix."""
    return float(inspect.signature(render_melody).parameters["synth_gain"].default)


@dataclass(frozen=True)
class Rendered:
    """What ``write_render`` wrote: the engine's render result (events, clock, metrics,
    the mixer's notices), the loudness pass's level (None without one) and the stems."""

    result: Any  # engine.offline.RenderResult
    level: Any = None  # engine.export's level, with a loudness target
    stems: dict[str, Path] = field(default_factory=dict)


def write_render(
    melody: Melody,
    acc: Accompanist,
    backend: str,
    settings: Any,
    soundfont: Path,
    out: Path,
    midi_out: Path | None,
    outputs: Outputs,
    *,
    stems: bool = False,
    loudness: float | None = DEFAULT_LUFS,
    progress: Callable[[int, int], None] | None = None,
) -> Rendered:
    """Render ``melody`` with ``acc`` by ``settings`` (engine.offline.RenderSettings) and
    write the mix to ``out`` (brought to ``loudness`` LUFS unless None), each part beside
    it when ``stems``, and the band's MIDI to ``midi_out``: every file to its temporary
    beside it, all renamed into place at the end. ``progress(done, total)`` in frames. A
    bad SoundFont or an output that cannot be written raises UserError (one line); the
    caller discards ``outputs`` on any exception."""
    from engine.midi_export import write_midi
    from engine.offline import render_melody
    from engine.synth import SoundFontError

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
                outputs.temp_for(out),
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
    written = {name: path for name, path in stem_paths(out).items() if name in stem_files}
    return Rendered(result, level, written)
