"""music21's shipped folk tunes (ABC) as extra folk data, but only tunes with chord symbols.

A tune without chord symbols has no accompaniment to learn from, so it is skipped. In
music21 10.5 none of the Essen (8514 tunes) or O'Neill 1850 (2009 tunes) collections
carries a single quoted chord symbol (their quoted strings are tempo words and
fingerings), so ``load_music21_folk()`` returns no pieces there and counts every tune as
skipped ("no chord symbols"). music21 also ships a ``nottingham-dataset`` folder: it is a
copy of part of the Nottingham collection, whose held-out tunes must not be trained on,
so it is never read.

A tune that does carry chord symbols is converted like a Nottingham tune: melody notes
on the 16th grid, the symbols as the chord stream, and a block-chord realisation (root in
MIDI octave 3, the other chord tones stacked above it) fed through the common voice
reduction.

music21 is an optional extra (``pip install 'liveband[folk]'``), imported only when a
tune is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from models.data.encode import Note, QuantisedSong, clean_notes, identify_chord, monophonic, reduce_accompaniment
from models.data.nottingham import METER_MAP
from models.data.piece import LoadResult
from models.data.pop909 import SongError
from models.tokens import CHORD_NONE, meter_parts

STYLE = "folk"
COLLECTIONS = ("essenFolksong", "oneills1850")
MIN_CHORD_SYMBOLS = 4
# a quoted ABC chord symbol: "G", "Em", "D7", "Bbmaj7", "C/E" (not "^text", "4", "D.C.")
_CHORD_RE = re.compile(r'"[A-G][b#]?(?:m|min|maj|dim|aug|sus)?[0-9]*(?:/[A-Ga-g][b#]?)?"')
_HEADER_RE = re.compile(r"^[A-Za-z]:")


def _music21() -> Any:
    try:
        import music21
    except ImportError as exc:
        raise ImportError(f"the music21 folk loader needs music21 ({exc}): pip install 'liveband[folk]'") from None
    return music21


def split_tunes(text: str) -> list[str]:
    """An ABC file's text -> one string per tune (each starting with 'X:')."""
    return [t for t in re.split(r"\n(?=X:)", "\n" + text) if t.startswith("X:")]


def count_chord_symbols(tune: str) -> int:
    body = "\n".join(line for line in tune.splitlines() if not _HEADER_RE.match(line))
    return len(_CHORD_RE.findall(body))


def quantise_tune(tune: str, name: str) -> QuantisedSong:
    """One ABC tune with chord symbols -> quantised notes. Raises SongError."""
    music21 = _music21()
    try:
        score = music21.converter.parseData(tune, format="abc")
    except Exception as exc:  # music21 raises many exception types for bad ABC
        raise SongError(f"unparsable ABC: {exc}") from None
    flat = score.flatten()
    sigs = {ts.ratioString for ts in flat.getElementsByClass("TimeSignature")} or {"4/4"}
    if len(sigs) > 1:
        raise SongError(f"unsupported meter: changes inside the tune ({sorted(sigs)})")
    num, den = meter_parts(sigs.pop())
    if (num, den) not in METER_MAP:
        raise SongError(f"unsupported meter: {num}/{den}")
    meter, bar = METER_MAP[(num, den)]
    part = score.parts[0] if hasattr(score, "parts") and score.parts else score
    measures = part.getElementsByClass("Measure")
    shift = int(round(float(measures[0].paddingLeft) * 4)) if measures else 0

    def steps(q: float) -> int:
        return int(np.floor(float(q) * 4 + 0.5))

    melody: list[Note] = []
    symbols: list[tuple[int, int, int]] = []  # (start step, pc mask, root pc)
    for el in flat.notes:
        if el.classes and "ChordSymbol" in el.classes:
            pcs = {p.pitchClass for p in el.pitches}
            if pcs:
                symbols.append((steps(el.offset), sum(1 << pc for pc in pcs), el.root().pitchClass))
        elif hasattr(el, "pitches") and el.pitches:
            top = max(p.midi for p in el.pitches)
            melody.append((top, steps(el.offset), steps(el.offset + el.quarterLength)))
    if len(symbols) < MIN_CHORD_SYMBOLS:
        raise SongError("no chord symbols")
    melody = monophonic(clean_notes(melody))
    if not melody:
        raise SongError("empty melody")
    num_steps = max(e for _, _, e in melody)
    chords = np.full(num_steps, CHORD_NONE, dtype=np.int16)
    block: list[Note] = []
    symbols.sort()
    for i, (s, mask, root) in enumerate(symbols):
        e = symbols[i + 1][0] if i + 1 < len(symbols) else num_steps
        if s >= num_steps or e <= s:
            continue
        chords[s:e] = identify_chord(mask, root)
        bass = 48 + root
        block.append((bass, s, e))
        others = sorted((pc - root) % 12 for pc in range(12) if mask >> pc & 1 and pc != root)
        block.extend((bass + iv + 12 * (iv < 3), s, e) for iv in others)  # close position above the bass
    notes = {"melody": melody, **reduce_accompaniment(clean_notes(block, num_steps), melody, num_steps)}
    step_in_bar = ((np.arange(num_steps) + shift) % bar).astype(np.int8)
    return QuantisedSong(name, STYLE, meter, step_in_bar, notes, chords)


def collection_files(collections: tuple[str, ...] = COLLECTIONS) -> list[Path]:
    """The ABC files of music21's shipped corpus collections (sorted)."""
    root = Path(_music21().__file__).parent / "corpus"
    return sorted(f for c in collections for f in (root / c).rglob("*.abc"))


def load_music21_folk(limit: int | None = None, files: list[Path] | None = None) -> LoadResult:
    """Tunes with chord symbols from music21's folk collections (or the given ABC files).

    limit: stop after this many tunes were looked at. Tunes without chord symbols, and
    bad tunes, are skipped and counted; only tunes passing a cheap text check are parsed.
    """
    result = LoadResult()
    seen = 0
    for f in files if files is not None else collection_files():
        try:
            tunes = split_tunes(f.read_text(errors="replace"))
        except OSError as exc:
            result.skipped.append((f"music21/{f.stem}", f"unreadable: {exc}"))
            continue
        for i, tune in enumerate(tunes):
            if limit is not None and seen >= limit:
                return result
            seen += 1
            name = f"music21/{f.parent.name}/{f.stem}/{i}"
            if count_chord_symbols(tune) < MIN_CHORD_SYMBOLS:
                result.skipped.append((name, "no chord symbols"))
                continue
            try:
                result.pieces.append(quantise_tune(tune, name).to_piece())
            except ValueError as exc:
                result.skipped.append((name, str(exc)))
    return result
