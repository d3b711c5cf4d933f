"""The app's offline render: a melody file accompanied with the session's band settings,
by the `render` command's code path (liveband.rendering), its checks included: no output
over the input or another output, each written beside its name and renamed into place, a
length cap and a free-disk check before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from engine.chart import Chart
from liveband.config import DEFAULT_LUFS, EngineConfig
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
    loudness: float | None = DEFAULT_LUFS,
    max_minutes: float | None = None,
    chart: Chart | None = None,
) -> None:
    """See Session.render_file; ``say`` receives what the user should know (tempo taken
    from the file, backend fallback); ``chart``: the chords the band follows (the loaded
    chart, or the section of it that loops). A refusal (collision, too long, disk too
    small, bad file) raises UserError with one line and writes nothing."""
    from engine.offline import render_frames
    from liveband.rendering import (
        APP_WORDING,
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

    src = Path(path)
    out = Path(out_wav)
    check_outputs(src, out, None if midi_out is None else Path(midi_out), stems, APP_WORDING)
    if not src.is_file():
        raise FileNotFoundError(f"melody file not found: {src}")
    melody = load_melody(src)
    tempo, meter = band_timing(melody, say=say)
    settings = render_settings(
        cfg,
        tempo=tempo,
        meter=meter,
        sample_rate=sample_rate,
        programs={n: s.program for n, s in parts.items()},
        muted=[n for n, s in parts.items() if s.mute],
        chart=chart,
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
    melody, acc, backend = open_band(melody, checkpoint=cfg.checkpoint, say=say)
    cb = None if progress is None else (lambda done, total: progress(done / max(1, total)))
    outputs = Outputs()
    try:
        write_render(
            melody,
            acc,
            backend,
            settings,
            soundfont,
            out,
            None if midi_out is None else Path(midi_out),
            outputs,
            stems=stems,
            loudness=loudness,
            progress=cb,
        )
    finally:
        outputs.discard()  # after a commit there is nothing left to discard
