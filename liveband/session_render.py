"""The app's offline render: a melody file accompanied with the session's band settings,
by the `render` command's rules (liveband.rendering, liveband.commands.render), its checks
included: no output over the input or another output, each written beside its name and
renamed into place, a length cap and a free-disk check before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from liveband.config import EngineConfig
from liveband.session_types import PartState


def render_file(
    path: str,
    out_wav: str,
    midi_out: str | None,
    progress: Callable[[float], None] | None,
    *,
    cfg: EngineConfig,
    parts: dict[str, PartState],
    sample_rate: int,
    soundfont: Path,
    say: Callable[[str], None],
    stems: bool = False,
    loudness: float | None = -16.0,
    max_minutes: float | None = None,
) -> None:
    """See Session.render_file; ``say`` receives what the user should know (tempo taken
    from the file, backend fallback). A refusal (collision, too long, disk too small, bad
    file) raises UserError with one line and writes nothing."""
    from engine.offline import RenderSettings, render_frames, render_melody
    from liveband.commands.render import (
        APP_WORDING,
        DEFAULT_MAX_MINUTES,
        Outputs,
        cannot_write,
        check_outputs,
        load_melody,
        mix_synth_gain,
        refuse_too_long,
        scratch_bytes_per_frame,
        stem_paths,
    )
    from liveband.rendering import band_timing, open_band

    src = Path(path)
    out = Path(out_wav)
    check_outputs(src, out, None if midi_out is None else Path(midi_out), stems, APP_WORDING)
    if not src.is_file():
        raise FileNotFoundError(f"melody file not found: {src}")
    melody = load_melody(src)
    tempo, meter = band_timing(melody, say=say)
    c = cfg
    settings = RenderSettings(
        style=c.style,
        tempo=tempo,
        meter=meter,
        temperature=c.temperature,
        density=c.density,
        harmony_follow=c.harmony_follow,
        seed=c.seed,
        sample_rate=sample_rate,
        programs={n: s.program for n, s in parts.items()},
        muted=tuple(n for n, s in parts.items() if s.mute),
    )
    # before the model loads: moving the melody into its range (open_band) keeps its length
    refuse_too_long(
        src,
        out,
        render_frames(melody, settings),
        sample_rate,
        max_minutes or DEFAULT_MAX_MINUTES,
        scratch_bytes_per_frame(stems, loudness),
        APP_WORDING,
    )
    melody, acc, backend = open_band(melody, checkpoint=c.checkpoint, say=say)
    cb = None if progress is None else (lambda done, total: progress(done / max(1, total)))
    outputs = Outputs()
    try:
        wav_tmp = outputs.temp_for(out, keep=loudness is None and not stems)
        result = render_melody(melody, acc, settings, soundfont, wav_tmp, backend=backend, progress=cb)
        if stems or loudness is not None:
            from engine.export import export_stems_and_loudness, stem_parts

            finals = stem_paths(out)
            files = {
                p.name: (outputs.temp_for(finals[p.name], keep=False), outputs.temp_for(finals[p.name]))
                for p in (stem_parts(result.events) if stems else ())
            }
            export_stems_and_loudness(
                wav_tmp,
                outputs.temp_for(out),
                files,
                result.events,
                result.frames,
                soundfont,
                sample_rate=settings.sample_rate,
                block=settings.block,
                synth_gain=mix_synth_gain(render_melody),
                target_lufs=loudness,
            )
        if midi_out is not None:
            from engine.midi_export import write_midi

            try:
                write_midi(outputs.temp_for(Path(midi_out)), result.events, result.clock)
            except OSError as exc:
                raise cannot_write(midi_out, exc) from None
        outputs.commit()
    except OSError as exc:  # the mix or its stems (a full disk): the outputs, not their temporaries
        raise cannot_write(out if not stems else f"{out} or its stems", exc) from None
    finally:
        outputs.discard()
