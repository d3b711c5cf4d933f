"""`liveband eval`: likelihood and musical metrics of a model, beside the human part and
the rule-based floor. Everything returns plain dicts ready for JSON.

(a) JSB (``jsb_metrics``): per-token NLL in nats of the S, A, T, B cells of every 16th
    step (4 tokens per step), and of the A, T, B cells alone (accompaniment given the
    soprano online). The model scores each cell under its own factorisation (stream
    pattern, online restriction); the sum over cells is the log-likelihood of the whole
    grid, so the per-token mean is comparable with SATB raster-order figures on the same
    grid, with one representation difference: the JSON cannot tell a held note from a
    re-struck one, and our HOLD token is determined by the data (a repeated pitch is
    always HOLD), exactly as a per-step pitch model sees it.
(b) POP909 (``pop909_metrics``): online accompaniment NLL (chord, bass, tenor, alto cells),
    and the note-in-chord ratio of bass/tenor/alto ONSETS against the annotated chord
    sounding at that step (steps annotated "N" are not counted), for the model (sampled
    online with a fixed seed), the song's own PIANO part (its reduction) and the
    rule-based accompanist; how often the generated chord label's root agrees with the
    annotated chord (model and rules); and ReaLchords' melody-in-chord ratio
    (``models.listen``) of each chord stream, the annotated chords included.
(c) Recovery (``recovery_metrics``): the melody jumps up ``shift`` semitones (+5, the
    brief's example, only changes one scale tone; +6, a tritone, changes five) at the first
    downbeat after the middle of the song; the accompaniment is generated online and the
    note-in-key ratio of its onsets is reported per beat for the 16 beats after the jump
    (key = the song's key + shift; POP909 key from key_audio.txt, else estimated from the
    melody before the jump; in key = the major scale, or natural minor plus the leading
    tone), beside the same ratio in the old key over the 16 beats before the jump. The
    model starts 16 bars before that (its attention window is far shorter); the rules
    hear the whole song.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import numpy as np

from models.contract import CHORD_TEMPERATURE_SHARE, PITCH_TEMPERATURE_SHARE, Accompanist, Sampler, prime_melody
from models.data.corpus import split_train_valid
from models.data.piece import Piece
from models.listen import melody_in_chord, song_mean
from models.rules import RuleAccompanist, estimate_key, scale_pitch_classes
from models.sampling import make_sampler
from models.tokens import (
    ALTO,
    BASS,
    CHORD,
    CHORD_BASE,
    MELODY,
    NOTE_BASE,
    QUALITIES,
    REST,
    STEPS_PER_BEAT,
    TENOR,
    bar_steps,
    chord_pitch_classes,
)

ANCHORS = {
    "TonicNet (with chord tokens)": 0.220,
    "Music Transformer": 0.335,
    "Coconet": 0.436,
}
ANCHOR_NOTE = (
    "published per-token NLL (nats) on the JSB test split, SATB raster order on the "
    "16th grid; ours is on the split given (the test split is held out elsewhere)"
)
REPRESENTATION_NOTE = (
    "Each voice is a stream of REST / HOLD / note-on tokens; the JSON cannot tell held from "
    "re-struck notes, so a repeated pitch is always HOLD and that choice is deterministic from "
    "the data, as it is for a per-step pitch model. Cells are scored in the model's own "
    "stream order (online pattern: alto/tenor/bass at t see soprano only up to t - lookahead); "
    "their sum is the log-likelihood of the whole grid. No chord tokens (TonicNet's 0.220 "
    "includes them)."
)
SATB = (MELODY, ALTO, TENOR, BASS)
ACC_NOTE_STREAMS = (BASS, TENOR, ALTO)
STREAM_NAMES = {MELODY: "soprano", ALTO: "alto", TENOR: "tenor", BASS: "bass", CHORD: "chord"}
ACC_OUT = {CHORD: 0, BASS: 1, TENOR: 2, ALTO: 3}  # column in an Accompanist's output


# --------------------------------------------------------------------------- metrics
class ScoringModel(Protocol):
    """What the metrics need of a model: ``models.runtime.LoadedModel`` (or a test's stand-in)."""

    def token_nll(self, piece: Piece) -> np.ndarray: ...

    def accompanist(self, seed: int = 0, backend: str = "torch-cpu") -> Accompanist: ...


def mean_nll(nll: np.ndarray, streams: Iterable[int]) -> tuple[float, int]:
    """(sum, count) of the finite NLLs of the given stream columns of a (T, S) array."""
    sub = np.asarray(nll, dtype=np.float64)[:, list(streams)]
    ok = np.isfinite(sub)
    return float(sub[ok].sum()), int(ok.sum())


def onset_in_chord(acc: np.ndarray, chords: np.ndarray) -> tuple[int, int]:
    """acc: (T, 3) note tokens (bass, tenor, alto), chords: (T,) annotated chord tokens ->
    (onsets whose pitch class is a tone of the chord sounding there, onsets counted).
    Onsets at steps without a real chord label (N, unknown) are not counted."""
    acc = np.asarray(acc)
    chords = np.asarray(chords)
    hits = total = 0
    for t, s in zip(*np.nonzero(acc >= NOTE_BASE)):
        c = int(chords[t])
        if c < CHORD_BASE:
            continue
        total += 1
        hits += ((int(acc[t, s]) - NOTE_BASE) % 12) in chord_pitch_classes(c)
    return hits, total


def chord_root_agreement(generated: np.ndarray, annotated: np.ndarray) -> tuple[int, int]:
    """(steps where the generated chord label has the annotated chord's root, steps with a real
    annotated chord). A generated "no chord" there counts as a miss."""
    gen = np.asarray(generated, dtype=np.int64)
    ann = np.asarray(annotated, dtype=np.int64)
    real = ann >= CHORD_BASE
    n_q = len(QUALITIES)
    same = (gen >= CHORD_BASE) & ((gen - CHORD_BASE) // n_q == (ann - CHORD_BASE) // n_q)
    return int((same & real).sum()), int(real.sum())


def onsets_in_key_per_beat(acc: np.ndarray, start: int, beats: int, key_pcs: frozenset[int]) -> np.ndarray:
    """(beats, 2) int: per beat after ``start`` (4 steps each), (onsets in key, onsets)."""
    acc = np.asarray(acc)
    out = np.zeros((beats, 2), dtype=np.int64)
    for b in range(beats):
        seg = acc[start + b * STEPS_PER_BEAT : start + (b + 1) * STEPS_PER_BEAT]
        on = seg[seg >= NOTE_BASE]
        out[b, 0] = sum(((int(x) - NOTE_BASE) % 12) in key_pcs for x in on)
        out[b, 1] = len(on)
    return out


def ratio(hits: float, total: float) -> float | None:
    return round(float(hits) / float(total), 4) if total else None


# --------------------------------------------------------------------------- generation
def accompany(
    acc: Accompanist, piece: Piece, sampler: Sampler, melody: np.ndarray | None = None, num_steps: int | None = None
) -> np.ndarray:
    """Run an Accompanist online over a piece's melody -> (T, 4) tokens (chord, bass, tenor, alto).

    melody: (T,) melody tokens to play instead of the piece's own (for the recovery test).
    num_steps: stop after this many steps (default: the whole piece).
    """
    mel = piece.tokens[:, MELODY] if melody is None else np.asarray(melody)
    d = acc.lookahead
    acc.reset(piece.style, piece.meter)
    # an offline accompanist (d <= 0) starts knowing the melody of its first -d steps
    prime_melody(acc, [int(mel[t]) if t < len(mel) else REST for t in range(max(0, -d))])
    n = len(piece) if num_steps is None else min(num_steps, len(piece))
    out = np.empty((n, 4), dtype=np.int64)
    observe = getattr(sampler, "observe_melody", None)  # a sampler that follows the melody itself
    for t in range(n):
        m = int(mel[t - d]) if 0 <= t - d < len(mel) else REST
        if observe is not None:
            observe(m)
        out[t] = acc.advance(m, int(piece.step_in_bar[t]), sampler)
    return out


def shift_melody(melody: np.ndarray, start: int, semitones: int) -> np.ndarray | None:
    """Melody tokens with every onset from ``start`` on moved; None if a pitch leaves 0..127."""
    mel: np.ndarray = np.asarray(melody, dtype=np.int64).copy()
    on = np.zeros(len(mel), dtype=bool)
    on[start:] = mel[start:] >= NOTE_BASE
    p = mel[on] - NOTE_BASE + semitones
    if p.size and (p.min() < 0 or p.max() > 127):
        return None
    mel[on] = p + NOTE_BASE
    return mel


# --------------------------------------------------------------------------- sets
def jsb_metrics(model: ScoringModel, pieces: list[Piece]) -> dict[str, Any]:
    """(a) likelihood on JSB-format chorales."""
    tot = {"satb": [0.0, 0], "atb": [0.0, 0]}
    per_voice = {s: [0.0, 0] for s in SATB}
    for p in pieces:
        nll = model.token_nll(p)
        for key, streams in (("satb", SATB), ("atb", (ALTO, TENOR, BASS))):
            s, n = mean_nll(nll, streams)
            tot[key][0] += s
            tot[key][1] += n
        for v in SATB:
            s, n = mean_nll(nll, (v,))
            per_voice[v][0] += s
            per_voice[v][1] += n
    mean: Callable[[list[float]], float | None] = lambda sn: round(sn[0] / sn[1], 4) if sn[1] else None  # noqa: E731
    return {
        "chorales": len(pieces),
        "steps": int(sum(len(p) for p in pieces)),
        "nll_satb_per_token": mean(tot["satb"]),
        "nll_atb_given_soprano_per_token": mean(tot["atb"]),
        "nll_per_voice": {STREAM_NAMES[v]: mean(per_voice[v]) for v in SATB},
        "tokens_scored": tot["satb"][1],
        "unit": "nats per token",
        "anchors": ANCHORS,
        "anchors_note": ANCHOR_NOTE,
        "representation": REPRESENTATION_NOTE,
    }


def _fitted(sampler: Sampler, accompanist: Accompanist) -> Sampler:
    """The app's sampler fitted to how ``accompanist`` hears the melody, as the engine (live)
    and a render (offline) fit it (``ControlledSampler.fit_to``); others as they are."""
    fit = getattr(sampler, "fit_to", None)
    if fit is not None:
        fit(accompanist)
    return sampler


def pop909_metrics(
    model: ScoringModel | None,
    pieces: list[Piece],
    seed: int = 0,
    temperature: float = 0.9,
    played_sampler: Callable[[int], Sampler] | None = None,
    offline: ScoringModel | None = None,
) -> dict[str, Any]:
    """(b) online accompaniment NLL and note-in-chord ratios of model / human / rules.

    played_sampler: seed -> the sampler the app plays the model with (its default
    controls); when given, the model is also measured through it ("model_as_played"), and
    ``offline`` (the checkpoint an offline render plays) as a render plays it
    ("offline_as_played": the sampler fitted to a model that hears ahead)."""
    nll_tot = {s: [0.0, 0] for s in ACC_OUT}
    counts = {"model": [0, 0], "human_piano": [0, 0], "rule_based": [0, 0]}
    roots = {"model": [0, 0], "rule_based": [0, 0]}
    mic: dict[str, list[tuple[int, int]]] = {"model": [], "annotated_chords": [], "rule_based": []}
    if model is not None and played_sampler is not None:
        counts["model_as_played"] = [0, 0]
        roots["model_as_played"] = [0, 0]
        mic["model_as_played"] = []
    if offline is not None and played_sampler is not None:
        counts["offline_as_played"] = [0, 0]
        roots["offline_as_played"] = [0, 0]
        mic["offline_as_played"] = []

    def score(key: str, gen: np.ndarray, p: Piece) -> None:
        """One source's generated (T, 4) frames for piece ``p`` into its rows."""
        chords = p.tokens[:, CHORD]
        _add(counts[key], onset_in_chord(gen[:, [ACC_OUT[s] for s in ACC_NOTE_STREAMS]], chords))
        _add(roots[key], chord_root_agreement(gen[:, ACC_OUT[CHORD]], chords))
        mic[key].append(melody_in_chord(p.tokens[:, MELODY], gen[:, ACC_OUT[CHORD]]))

    for i, p in enumerate(pieces):
        chords = p.tokens[:, CHORD]
        mel = p.tokens[:, MELODY]
        mic["annotated_chords"].append(melody_in_chord(mel, chords))
        if model is not None:
            nll = model.token_nll(p)
            for s in ACC_OUT:
                a, n = mean_nll(nll, (s,))
                nll_tot[s][0] += a
                nll_tot[s][1] += n
            score("model", accompany(model.accompanist(seed), p, make_sampler(temperature, seed + i)), p)
            if played_sampler is not None:
                acc = model.accompanist(seed)
                score("model_as_played", accompany(acc, p, _fitted(played_sampler(seed + i), acc)), p)
        if offline is not None and played_sampler is not None:
            acc = offline.accompanist(seed)
            score("offline_as_played", accompany(acc, p, _fitted(played_sampler(seed + i), acc)), p)
        _add(counts["human_piano"], onset_in_chord(p.tokens[:, list(ACC_NOTE_STREAMS)], chords))
        score("rule_based", accompany(RuleAccompanist(), p, make_sampler(0.0, seed)), p)
    all_sum = sum(v[0] for v in nll_tot.values())
    all_n = sum(v[1] for v in nll_tot.values())
    return {
        "songs": len(pieces),
        "steps": int(sum(len(p) for p in pieces)),
        "accomp_nll_per_token": round(all_sum / all_n, 4) if all_n else None,
        "nll_per_stream": {STREAM_NAMES[s]: (round(v[0] / v[1], 4) if v[1] else None) for s, v in nll_tot.items()},
        "note_in_chord": {k: ratio(*v) for k, v in counts.items()},
        "onsets_counted": {k: v[1] for k, v in counts.items()},
        "chord_root_agreement": {k: ratio(*v) for k, v in roots.items() if model is not None or k != "model"},
        "melody_in_chord": {k: song_mean(v) for k, v in mic.items() if model is not None or k != "model"},
        "sampling": {
            "temperature": temperature,
            "pitch_temperature": round(temperature * PITCH_TEMPERATURE_SHARE, 4),
            "chord_temperature": round(temperature * CHORD_TEMPERATURE_SHARE, 4),
            "seed": seed,
        },
        **(
            {
                "model_as_played": "the model through the app's sampler on its default controls "
                "(harmony-follow toward the melody's recent pitch classes and the "
                "band's chord, density, creativity); 'model' is the plain sampler"
            }
            if "model_as_played" in counts
            else {}
        ),
        **(
            {
                "offline_as_played": "the checkpoint an offline render plays (it hears the melody "
                "ahead), through the same sampler fitted to it as liveband render fits it"
            }
            if "offline_as_played" in counts
            else {}
        ),
    }


def _add(acc: list[Any], hn: tuple[int, int]) -> None:
    acc[0] += hn[0]
    acc[1] += hn[1]


@dataclass(frozen=True)
class RecoverySong:
    piece: Piece
    key: tuple[int, str] | None  # the song's key before the jump, if annotated


def jump_step(piece: Piece) -> int | None:
    """First downbeat at or after the middle, leaving 16 beats after it; None if none."""
    need = 16 * STEPS_PER_BEAT
    for t in range(len(piece) // 2, len(piece) - need + 1):
        if piece.step_in_bar[t] == 0:
            return t
    return None


RECOVERY_SHIFTS = (5, 6)
RECOVERY_SONGS = 16  # per corpus, unless --limit asks for fewer
WARMUP_BARS = 16  # bars of melody the model hears before the measured 16 beats


def recovery_metrics(
    model: ScoringModel | None,
    songs: list[RecoverySong],
    shift: int = 5,
    beats: int = 16,
    seed: int = 0,
    temperature: float = 0.9,
) -> dict[str, Any]:
    """(c) note-in-key ratio per beat after an abrupt +shift transposition of the melody."""
    after = {"model": np.zeros((beats, 2), np.int64), "rule_based": np.zeros((beats, 2), np.int64)}
    before = {k: np.zeros(2, np.int64) for k in after}
    used = []
    for i, song in enumerate(songs):
        p = song.piece
        t0 = jump_step(p)
        if t0 is None or t0 < beats * STEPS_PER_BEAT:
            continue
        mel = shift_melody(p.tokens[:, MELODY], t0, shift)
        if mel is None:
            continue
        key = song.key
        if key is None:
            hist = np.zeros(12)
            for x in p.tokens[:t0, MELODY]:
                if x >= NOTE_BASE:
                    hist[(int(x) - NOTE_BASE) % 12] += 1
            key = estimate_key(hist)
        if key is None:
            continue
        old_pcs = scale_pitch_classes(*key)
        new_pcs = scale_pitch_classes((key[0] + shift) % 12, key[1])
        end = t0 + beats * STEPS_PER_BEAT  # nothing after the measured beats is needed
        gens = {"rule_based": accompany(RuleAccompanist(), p, make_sampler(0.0, seed), mel, end)}
        offsets = {"rule_based": 0}
        if model is not None:
            # The model attends to a bounded window, so it starts WARMUP_BARS bars before the
            # measured stretch (on a downbeat) instead of at the top of the song.
            start = max(0, t0 - beats * STEPS_PER_BEAT - WARMUP_BARS * bar_steps(p.meter))
            while start > 0 and p.step_in_bar[start] != 0:
                start -= 1
            sub = Piece(p.name, p.style, p.meter, p.tokens[start:end], p.step_in_bar[start:end])
            gens["model"] = accompany(model.accompanist(seed), sub, make_sampler(temperature, seed + i), mel[start:end])
            offsets["model"] = start
        for name, g in gens.items():
            notes = g[:, [ACC_OUT[s] for s in ACC_NOTE_STREAMS]]
            a = t0 - offsets[name]
            after[name] += onsets_in_key_per_beat(notes, a, beats, new_pcs)
            before[name] += onsets_in_key_per_beat(notes, a - beats * STEPS_PER_BEAT, beats, old_pcs).sum(axis=0)
        used.append(p.name)
    names = ["rule_based"] + (["model"] if model is not None else [])
    return {
        "songs": len(used),
        "shift_semitones": shift,
        "note_in_key_per_beat_after_jump": {k: [ratio(h, n) for h, n in after[k]] for k in names},
        "note_in_key_16_beats_after_jump": {k: ratio(*after[k].sum(axis=0)) for k in names},
        "note_in_key_16_beats_before_jump": {k: ratio(*before[k]) for k in names},
        "song_names": used,
    }


# --------------------------------------------------------------------------- the command
def nottingham_valid(folder: Path, limit: int | None) -> list[Piece]:
    """Nottingham validation tunes (the same hash split as training) from a Nottingham folder."""
    from models.data.nottingham import load_nottingham

    _, valid = split_train_valid(load_nottingham(folder).pieces, 0.1, 0)
    return valid[:limit] if limit is not None else valid


def evaluate(
    model: ScoringModel | None,
    jsb_path: Path | None = None,
    jsb_split: str = "valid",
    pop909_dir: Path | None = None,
    pop909_only: str = "all",
    nottingham_dir: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    temperature: float = 0.9,
    recovery_limit: int | None = None,
    played_sampler: Callable[[int], Sampler] | None = None,
    offline: ScoringModel | None = None,
) -> dict[str, Any]:
    """All metrics for the sets given (None = skip that set). ``model`` is a LoadedModel
    (``token_nll``, ``accompanist``) or None to measure only the human part and the rules;
    ``offline`` the checkpoint an offline render plays (POP909 "offline_as_played")."""
    with one_torch_thread():
        return _evaluate(
            model,
            jsb_path,
            jsb_split,
            pop909_dir,
            pop909_only,
            nottingham_dir,
            limit,
            seed,
            temperature,
            recovery_limit,
            played_sampler,
            offline,
        )


class one_torch_thread:
    """Step-by-step generation of a small model is latency-bound: on a shared 2-core machine
    a second intra-op thread spin-waits and makes each step 10-30x slower, so evaluation
    runs torch on one thread and restores the setting afterwards."""

    def __enter__(self) -> None:
        import torch

        self._n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self._n)


def _evaluate(
    model: ScoringModel | None,
    jsb_path: Path | None,
    jsb_split: str,
    pop909_dir: Path | None,
    pop909_only: str,
    nottingham_dir: Path | None,
    limit: int | None,
    seed: int,
    temperature: float,
    recovery_limit: int | None,
    played_sampler: Callable[[int], Sampler] | None = None,
    offline: ScoringModel | None = None,
) -> dict[str, Any]:
    from models.data.jsb import load_jsb
    from models.data.pop909 import load_pop909, read_key

    out: dict[str, Any] = {}
    skipped: dict[str, int] = {}
    t0 = time.perf_counter()
    if jsb_path is not None:
        res = load_jsb(jsb_path, jsb_split, limit=limit)
        skipped["jsb"] = res.skipped_count
        if model is None:
            out["jsb"] = {"file": str(jsb_path), "split": jsb_split, "chorales": len(res.pieces)}
        else:
            out["jsb"] = {"file": str(jsb_path), "split": jsb_split, **jsb_metrics(model, res.pieces)}
    rec_songs: list[RecoverySong] = []
    rec_limit = min(x for x in (recovery_limit, limit, RECOVERY_SONGS) if x is not None)
    if pop909_dir is not None:
        res = load_pop909(pop909_dir, only=pop909_only, limit=limit)
        skipped["pop909"] = res.skipped_count
        out["pop909"] = {
            "folder": str(pop909_dir),
            "songs_selected": pop909_only,
            **pop909_metrics(model, res.pieces, seed, temperature, played_sampler, offline),
        }
        rec_songs += [
            RecoverySong(p, read_key(Path(pop909_dir) / p.name.split("/")[-1])) for p in res.pieces[:rec_limit]
        ]
    if nottingham_dir is not None:
        rec_songs += [RecoverySong(p, None) for p in nottingham_valid(nottingham_dir, rec_limit)]
    if rec_songs:
        out["recovery"] = {
            f"shift_{k:+d}": recovery_metrics(model, rec_songs, shift=k, seed=seed, temperature=temperature)
            for k in RECOVERY_SHIFTS
        }
    out["skipped_songs"] = skipped
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def finite_or_none(x: Any) -> Any:
    """JSON-safe numbers (NaN/inf -> None), recursively."""
    if isinstance(x, dict):
        return {k: finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite_or_none(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


__all__ = [
    "evaluate",
    "jsb_metrics",
    "pop909_metrics",
    "recovery_metrics",
    "onset_in_chord",
    "onsets_in_key_per_beat",
    "mean_nll",
    "accompany",
    "make_sampler",
    "shift_melody",
]
