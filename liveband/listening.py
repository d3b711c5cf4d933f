"""What the listener hears: the listening measures of ``models.listen`` on band parts
rendered by the engine (``engine.offline.render_melody``, the path ``liveband render``
takes), for any accompaniment.

An accompaniment *source* is a function ``(piece, seed) -> Accompanist | frames``:

- an ``Accompanist`` (the model, the rule-based floor, a new model) is run by the
  engine online over the piece's melody, through the app's sampler on its default
  controls, exactly as ``liveband render`` plays it;
- ``Live(accompanist)``: the same, played as the live app plays it with no key fixed
  (the band listens first, then keeps to the key the melody implies and moves with it,
  ``engine.band_key``): what a performer hears on stage, where a render imposes no key;
- ``frames``, a (T, 4) array (chord, bass, tenor, alto) per 16th step of the piece
  (the song's own human part, or an offline render that knew the melody in advance),
  is replayed through the same engine path.

Either way the measures read the note events the engine renders (bass, keys, pad;
drums carry no pitch) and the chord stream it played. For the perturbation protocol
the source is asked again for each transposed excerpt (``piece.name`` ends "@+6").

From Python::

    from liveband.listening import listen_eval
    res = listen_eval("runs/x/model.safetensors", limit=20)          # model, human, rules
    res = listen_eval(None, limit=20, sources={"offline": my_frames})  # + any source
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import numpy as np

from engine import parts as P
from engine.events import NOTE_OFF, NOTE_ON
from engine.melody_file import Melody, MelodyNote
from engine.offline import RenderSettings, render_melody
from models.contract import Accompanist
from models.data.piece import Piece
from models.listen import (
    EXCERPT_BEATS,
    JUMP_BEAT,
    PRE_JUMP_BEATS,
    RECOVER_SHARE,
    Note,
    RecordingAccompanist,
    ReplayAccompanist,
    beats_to_recover,
    chord_lengths,
    harmony_counts,
    length_entropy,
    melody_in_chord,
    notes_from_tokens,
    per_beat_melody_in_chord,
    perturb_excerpt,
    ratio,
    song_mean,
)
from models.rules import RuleAccompanist
from models.sampling import DEFAULT_DENSITY, DEFAULT_HARMONY_FOLLOW, DEFAULT_TEMPERATURE
from models.tokens import ALTO, BASS, CHORD, CHORD_NONE, MELODY, NOTE_BASE, REST, STEPS_PER_BEAT, TENOR, bar_steps


@dataclass(frozen=True)
class Live:
    """A source's accompanist to be played as the live app plays it (see the module doc)."""

    accompanist: Accompanist


Source = Callable[[Piece, int], Union[Accompanist, Live, np.ndarray]]
# The measures read events, not audio: the synth's sample rate only sets its work.
SAMPLE_RATE = 8000
TEMPO = 100.0
PERTURB_SHIFTS = (6, 5)
BAND_CHANNELS = (P.BASS.channel, P.KEYS.channel, P.PAD.channel)


@dataclass(frozen=True)
class Heard:
    """One song as the engine rendered it; times in 16th steps of the piece."""

    frames: np.ndarray  # (T, 4) chord, bass, tenor, alto per step
    melody: list[Note]
    band: list[Note]


def human_part(piece: Piece, seed: int = 0) -> np.ndarray:
    """The song's own chords and voices (its annotated chords, its reduced human part)."""
    return piece.tokens[:, [CHORD, BASS, TENOR, ALTO]].astype(np.int64)


def rules_source(piece: Piece, seed: int = 0) -> Accompanist:
    return RuleAccompanist()


def model_source(model) -> Source:
    """A source for a LoadedModel (``models.runtime.load_model``): a fresh accompanist per song."""
    return lambda piece, seed: model.accompanist(seed)


def live_model_source(model) -> Source:
    """The same model as the live app plays it with no key fixed (``Live``)."""
    return lambda piece, seed: Live(model.accompanist(seed))


def _pad_to_downbeat(piece: Piece) -> tuple[Piece, int]:
    """The engine's clock starts on a downbeat: songs that start inside a bar get rest rows
    before them (N chord, silent parts). Returns (padded piece, rows added)."""
    k = int(piece.step_in_bar[0]) if len(piece) else 0
    if k == 0:
        return piece, 0
    pad = np.zeros((k, piece.tokens.shape[1]), np.int16)
    pad[:] = REST
    pad[:, CHORD] = CHORD_NONE
    sib = np.arange(k, dtype=np.int8) % bar_steps(piece.meter)
    return Piece(
        piece.name,
        piece.style,
        piece.meter,
        np.concatenate([pad, piece.tokens]),
        np.concatenate([sib, piece.step_in_bar]),
    ), k


def melody_for_engine(piece: Piece) -> Melody:
    """The piece's melody as the MIDI-file melody the engine renders (beats = steps / 4)."""
    notes = tuple(
        MelodyNote(n.start / STEPS_PER_BEAT, n.end / STEPS_PER_BEAT, n.pitch)
        for n in notes_from_tokens(piece.tokens[:, MELODY])
    )
    return Melody(notes, TEMPO, piece.meter, piece.meter, "melody")


def event_notes(events, clock, channels: tuple[int, ...], end: int) -> list[Note]:
    """Rendered events (sample, kind, channel, pitch, velocity) -> notes in 16th steps on
    the given channels; a note never released ends at step ``end``. Every event of this
    render is on the grid: times round to steps."""
    open_: dict[tuple[int, int], int] = {}
    out: list[Note] = []
    for t, kind, ch, pitch, vel in events:
        if ch not in channels or kind not in (NOTE_ON, NOTE_OFF):
            continue
        step = int(round(clock.sample_to_steps(t)))
        key = (ch, pitch)
        if key in open_:
            out.append(Note(open_.pop(key), step, pitch))
        if kind == NOTE_ON and vel > 0:
            open_[key] = step
    out += [Note(s, max(end, s + 1), p) for (_, p), s in open_.items()]
    out.sort()
    return out


def hear(piece: Piece, band: Accompanist | Live | np.ndarray, soundfont: str | Path, seed: int = 0) -> Heard:
    """Render ``piece``'s melody with ``band`` through the engine's offline path."""
    padded, k = _pad_to_downbeat(piece)
    live = isinstance(band, Live)
    if isinstance(band, Live):
        acc: Accompanist = band.accompanist
    elif isinstance(band, np.ndarray):
        frames = np.asarray(band, dtype=np.int64)
        if frames.shape != (len(piece), 4):
            raise ValueError(f"{piece.name}: frames must be ({len(piece)}, 4), got {frames.shape}")
        rest = np.tile(np.array([CHORD_NONE, REST, REST, REST], np.int64), (k, 1))
        acc = ReplayAccompanist(np.concatenate([rest, frames]))
    else:
        acc = band
    rec = RecordingAccompanist(acc)
    melody = melody_for_engine(padded)
    # the band plays on to the song's end (the render's own end: the bar after the last note)
    bar = bar_steps(piece.meter)
    last_bar_end = (math.ceil(melody.end_beat * STEPS_PER_BEAT - 1e-9) // bar + 1) * bar
    tail = max(0, math.ceil((len(padded) - last_bar_end) / bar))
    settings = RenderSettings(
        style=piece.style,
        tempo=TEMPO,
        meter=piece.meter,
        seed=seed,
        sample_rate=SAMPLE_RATE,
        tail_bars=tail,
        release_s=0.1,
        listen=live,
    )
    res = render_melody(melody, rec, settings, soundfont)
    got = rec.recorded()[k : k + len(piece)]
    if len(got) != len(piece):
        raise RuntimeError(f"{piece.name}: the render played {len(got)} of {len(piece)} steps")
    end = int(round(res.clock.sample_to_steps(res.frames)))
    shift = lambda notes: [Note(n.start - k, n.end - k, n.pitch) for n in notes]  # noqa: E731
    return Heard(
        got,
        shift(event_notes(res.events, res.clock, (P.MELODY.channel,), end)),
        shift(event_notes(res.events, res.clock, BAND_CHANNELS, end)),
    )


def listening_metrics(pieces: list[Piece], sources: dict[str, Source], soundfont: str | Path, seed: int = 0) -> dict:
    """melody_in_chord, harmony_now / harmony_late / clash and chord-length entropy of each
    source over ``pieces``; the perturbation protocol at +6 and +5."""
    mic: dict[str, list[tuple[int, int]]] = {k: [] for k in sources}
    harm = {k: {"now": [0, 0], "late": [0, 0], "clash": [0, 0]} for k in sources}
    lengths: dict[str, list[int]] = {k: [] for k in sources}
    pieces = [p for p in pieces if (p.tokens[:, MELODY] >= NOTE_BASE).any()]  # a render needs a melody
    for i, p in enumerate(pieces):
        for name, src in sources.items():
            h = hear(p, src(p, seed + i), soundfont, seed + i)
            mic[name].append(melody_in_chord(p.tokens[:, MELODY], h.frames[:, 0]))
            lengths[name] += chord_lengths(h.frames[:, 0])
            for m, (a, n) in harmony_counts(h.melody, h.band).items():
                harm[name][m][0] += a
                harm[name][m][1] += n
    out = {
        "songs": len(pieces),
        "melody_in_chord": {k: song_mean(v) for k, v in mic.items()},
        "harmony_now": {k: ratio(*v["now"]) for k, v in harm.items()},
        "harmony_late": {k: ratio(*v["late"]) for k, v in harm.items()},
        "clash": {k: ratio(*v["clash"]) for k, v in harm.items()},
        "melody_onsets": {k: v["now"][1] for k, v in harm.items()},
        "band_onsets_under_melody": {k: v["clash"][1] for k, v in harm.items()},
        "chord_length_entropy": {k: length_entropy(v) for k, v in lengths.items()},
        "perturbation": {
            f"shift_{s:+d}": perturbation_metrics(pieces, sources, soundfont, s, seed) for s in PERTURB_SHIFTS
        },
    }
    return out


def perturbation_metrics(
    pieces: list[Piece], sources: dict[str, Source], soundfont: str | Path, shift: int, seed: int = 0
) -> dict:
    """ReaLchords' protocol: each song's first 64 beats (from the downbeat before its first
    melody note), melody moved ``shift`` semitones from beat 17; per-beat melody-in-chord of
    each source's chords (frames pooled over songs), and the beats it takes to recover."""
    curves = {k: np.zeros((EXCERPT_BEATS, 2), np.int64) for k in sources}
    used = []
    for i, p in enumerate(pieces):
        ex = perturb_excerpt(p, shift)
        if ex is None:
            continue
        used.append(p.name)
        for name, src in sources.items():
            h = hear(ex, src(ex, seed + i), soundfont, seed + i)
            curves[name] += per_beat_melody_in_chord(ex.tokens[:, MELODY], h.frames[:, 0], EXCERPT_BEATS)
    per_beat = {k: [ratio(*c) for c in v] for k, v in curves.items()}
    return {
        "songs": len(used),
        "shift_semitones": shift,
        "jump_beat": JUMP_BEAT,
        "melody_in_chord_per_beat": per_beat,
        "pre_jump_level": {k: _level(v) for k, v in per_beat.items()},
        "beats_to_recover": {k: beats_to_recover(v) for k, v in per_beat.items()},
        "recover_rule": (
            f"first beat from the jump (the jump's beat = 1) at >= {RECOVER_SHARE} x the mean of "
            f"the {PRE_JUMP_BEATS} beats before it; null = not within the excerpt"
        ),
        "song_names": used,
    }


def _level(curve: list) -> float | None:
    pre = [x for x in curve[JUMP_BEAT - 1 - PRE_JUMP_BEATS : JUMP_BEAT - 1] if x is not None]
    return round(float(np.mean(pre)), 4) if pre else None


def default_sources(model=None) -> dict[str, Source]:
    """model (a LoadedModel, or None) as rendered and as played live / the songs' human
    part / the rule-based floor."""
    out: dict[str, Source] = {}
    if model is not None:
        out["model"] = model_source(model)
        out["model_live"] = live_model_source(model)
    out["human"] = human_part
    out["rule_based"] = rules_source
    return out


DATA_DEFAULT = Path("<../shared/data>")  # listen_eval: the project's own copy of the corpus


def listen_eval(
    model=None,
    pop909_dir: str | Path | None = DATA_DEFAULT,
    nottingham_dir: str | Path | None = DATA_DEFAULT,
    limit: int | None = 20,
    seed: int = 0,
    sources: dict[str, Source] | None = None,
    soundfont: str | Path | None = None,
    pop909_only: str = "valid",
) -> dict:
    """The listening measures on the validation POP909 songs and Nottingham tunes.

    model: a checkpoint path, a LoadedModel, or None (no "model" row). sources: more
    sources to measure beside model / human / rule_based (e.g. {"offline": fn}).
    Folders default to ../shared/data's (skipped if absent); None skips a corpus."""
    from liveband.paths import find_soundfont
    from models.data import default_data_dir
    from models.data.pop909 import load_pop909
    from models.evaluate import nottingham_valid, one_torch_thread

    if isinstance(model, (str, Path)):
        from models.runtime import load_model

        model = load_model(model, device="cpu")
    srcs = {**default_sources(model), **(sources or {})}
    sf = find_soundfont(soundfont)
    data = default_data_dir()
    pop = _corpus_dir(pop909_dir, data / "pop909", "POP909")
    nott = _corpus_dir(nottingham_dir, data / "nottingham", "Nottingham")
    out: dict = {
        "sources": list(srcs),
        "tempo_bpm": TEMPO,
        "controls": f"the app's defaults (liveband render): creativity {DEFAULT_TEMPERATURE}, density "
        f"{DEFAULT_DENSITY}, harmony-follow {DEFAULT_HARMONY_FOLLOW} (with melody recall, models/recall.py); "
        "model_live: the same played as the live app plays with no key fixed (listening first, "
        "the key the melody implies, engine/band_key.py); offline (when measured): the checkpoint "
        "an offline render plays (liveband render's teacher, hearing the melody ahead)",
        "references": "human = the songs' own annotated chords and human part (POP909: the "
        "piano reduction; Nottingham: the block chords), rendered by the same "
        "engine; rule_based = models/rules.py",
    }
    t0 = time.perf_counter()
    with one_torch_thread():
        if pop is not None:
            pieces = load_pop909(pop, only=pop909_only, limit=limit).pieces
            out["pop909"] = {"folder": str(pop), **listening_metrics(pieces, srcs, sf, seed)}
        if nott is not None:
            out["nottingham"] = {
                "folder": str(nott),
                **listening_metrics(nottingham_valid(nott, limit), srcs, sf, seed),
            }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _corpus_dir(given, default: Path, what: str) -> Path | None:
    if given is DATA_DEFAULT:
        return default if default.is_dir() else None
    if given is None:
        return None
    if not Path(given).is_dir():
        raise FileNotFoundError(f"{what} folder not found: {given}")
    return Path(given)


__all__ = [
    "listen_eval",
    "listening_metrics",
    "perturbation_metrics",
    "hear",
    "Heard",
    "human_part",
    "rules_source",
    "model_source",
    "live_model_source",
    "Live",
    "default_sources",
    "melody_for_engine",
    "event_notes",
    "Source",
]
