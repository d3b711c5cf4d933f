"""Chord charts as plain text, and forcing the band's chord stream to follow one.

A chart is bars between bar lines, chords separated by spaces inside a bar::

    # Autumn-ish; '#' starts a comment
    A: | Cmaj7 | Am7 | Dm7 G7 | C / / A7 |
    B: |: Dm7 | G7 :| Em7 A7 | % | N.C. |

- a bar with n chords splits its beats evenly (the first ones get the longer share:
  ``| F G7 |`` in 3/4 is F for two beats, G7 for one); ``/`` repeats the previous chord
  for one more share, ``%`` repeats the previous bar, ``N.C.`` is no chord;
- ``|:`` ... ``:|`` plays the bars between twice (``:|x3`` three times);
- a word ending in ``:`` at the start of a line (``A:``, ``Verse:``) names a section;
- chord symbols: root ``C``, ``F#``, ``Bb``; qualities ``m -`` (minor), ``7``, ``maj7 M7 ^7``,
  ``m7 -7``, ``dim o``, ``dim7 o7``, ``m7b5 ø``, ``aug +``, ``sus4 sus``, ``sus2``, ``6``;
  extensions and alterations (``9``, ``13``, ``b9``, ``add9``) fold into the nearest of
  these, and a slash bass (``C/E``) is read as its chord (the model chooses the bass).

The chart repeats from its top when the music is longer. ``ChartSampler`` puts the
chart's chord into the model's chord stream at every step, so the model still chooses
the voicings, the rhythm and the bass line around it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.clock import beat_steps
from engine.small_file import read_small_text
from models.tokens import (
    CHORD,
    CHORD_BASE,
    CHORD_NONE,
    CHORD_VOCAB,
    MELODY,
    NATURAL_PCS,
    NOTE_BASE,
    NOTE_VOCAB,
    bar_steps,
    chord_name,
    chord_pitch_classes,
    chord_token,
)

_QUALITY = {
    "": "maj",
    "M": "maj",
    "maj": "maj",
    "add9": "maj",
    "add2": "maj",
    "5": "maj",
    "69": "6",
    "m": "min",
    "-": "min",
    "min": "min",
    "mi": "min",
    "m6": "min",
    "madd9": "min",
    "m9": "min7",
    "m11": "min7",
    "7": "7",
    "9": "7",
    "11": "7",
    "13": "7",
    "dom7": "7",
    "maj7": "maj7",
    "M7": "maj7",
    "^7": "maj7",
    "^": "maj7",
    "Δ": "maj7",
    "Δ7": "maj7",
    "maj9": "maj7",
    "M9": "maj7",
    "m7": "min7",
    "-7": "min7",
    "min7": "min7",
    "mi7": "min7",
    "dim": "dim",
    "o": "dim",
    "°": "dim",
    "dim7": "dim7",
    "o7": "dim7",
    "°7": "dim7",
    "m7b5": "hdim7",
    "-7b5": "hdim7",
    "ø": "hdim7",
    "ø7": "hdim7",
    "min7b5": "hdim7",
    "aug": "aug",
    "+": "aug",
    "+5": "aug",
    "#5": "aug",
    "sus4": "sus4",
    "sus": "sus4",
    "7sus4": "sus4",
    "7sus": "sus4",
    "sus2": "sus2",
    "6": "6",
    "M6": "6",
    "maj6": "6",
}
_SYMBOL = re.compile(r"^([A-G])([#b♯♭]?)(.*?)(?:/([A-G][#b♯♭]?))?$")
_ALTERATION = re.compile(r"(\((.*)\)|[#b]\d+|alt|add\d+)$")


class ChartError(ValueError):
    """A chart that cannot be read; the message names the file and line."""


def parse_chord(symbol: str) -> int:
    """The chord token of a chord symbol (``Am7``, ``F#dim``, ``Bb/D``, ``N.C.``)."""
    if symbol.upper() in ("N.C.", "NC", "N.C", "N"):
        return CHORD_NONE
    m = _SYMBOL.match(symbol)
    if not m:
        raise ValueError(f"not a chord symbol: {symbol!r}")
    root = (NATURAL_PCS[m.group(1)] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(m.group(2), 0)) % 12
    q = m.group(3)
    for _ in range(4):  # strip alterations from the end: C7(#11) -> C7, G7b9 -> G7
        if q in _QUALITY:
            break
        cut = _ALTERATION.search(q)
        if cut is None:
            break
        head = q[: cut.start()]
        # a bare alteration (Calt, Cb9) is a dominant; a bare addition (C(add9)) is not
        q = head if head or cut.group(0).startswith(("(", "add")) else "7"
    if q not in _QUALITY:
        raise ValueError(f"unknown chord quality {m.group(3)!r} in {symbol!r}")
    return chord_token(root, _QUALITY[q])


@dataclass(frozen=True)
class Chart:
    """Bars of chord slots, repeats expanded; ``sections``: (name, first bar index)."""

    bars: tuple[tuple[int, ...], ...]
    sections: tuple[tuple[str, int], ...] = ()
    source: str = ""

    def token_at(self, step: int, meter: str) -> int:
        """The chart's chord token at a 16th step (step 0 = the first bar's downbeat)."""
        n = bar_steps(meter)
        bar, pos = divmod(max(0, step), n)
        slots = self.bars[bar % len(self.bars)]
        beat = beat_steps(meter)
        beats = n // beat
        k = len(slots)
        # slot i starts at beat ceil(i * beats / k): the first ones get the longer share
        starts = [-(-i * beats // k) * beat for i in range(k)] if k <= beats else [i * n // k for i in range(k)]
        i = max(j for j, s in enumerate(starts) if s <= pos)
        return slots[i]

    def section(self, name: str) -> "Chart":
        """The bars of section ``name`` (to the next section or the end) as a chart of their own."""
        for i, (sec, first) in enumerate(self.sections):
            if sec == name:
                end = self.sections[i + 1][1] if i + 1 < len(self.sections) else len(self.bars)
                if end <= first:
                    break
                return Chart(self.bars[first:end], ((sec, 0),), f"{self.source} section {sec}")
        names = ", ".join(s for s, _ in self.sections) or "none"
        raise ValueError(f"no section {name!r} with bars in this chart (sections: {names})")

    def text(self) -> str:
        """The chart as plain text (what ``save_chart`` writes): a line of bars per section,
        headed by its name (``A: | C | Am |``), repeats written out."""

        def bars(lo: int, hi: int) -> str:
            return "| " + " | ".join(" ".join(chord_name(t) or "N.C." for t in bar) for bar in self.bars[lo:hi]) + " |"

        cuts = [(n, f) for n, f in self.sections if 0 <= f < len(self.bars)]
        lines = [bars(0, cuts[0][1])] if cuts and cuts[0][1] > 0 else ([] if cuts else [bars(0, len(self.bars))])
        for i, (name, first) in enumerate(cuts):
            end = cuts[i + 1][1] if i + 1 < len(cuts) else len(self.bars)
            if end > first:
                lines.append(f"{name}: {bars(first, end)}")
        return "\n".join(lines) + "\n"


MAX_BARS = 4096


def parse_chart(text: str, source: str = "chart") -> Chart:
    """A ``Chart`` from chart text; ChartError naming ``source`` and the line otherwise."""
    bars: list[tuple[int, ...]] = []
    sections: list[tuple[str, int]] = []
    repeat_from: int | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            m = re.match(r"^([A-Za-z][\w ]{0,19}):(?!\|)\s*", line)
            if m:
                sections.append((m.group(1).strip(), len(bars)))
                line = line[m.end() :]
            line = line.replace("||", "|").replace("|]", "|").replace("[|", "|")
            tokens = re.findall(r"\|:|:\|(?:x\d+)?|\||[^\s|:]+|:", line)
            cur: list[int] | None = None
            for tok in tokens:
                if tok in ("|", "|:") or tok.startswith(":|"):
                    if cur:
                        bars.append(tuple(cur))
                    cur = None
                    if tok == "|:":
                        repeat_from = len(bars)
                    elif tok.startswith(":|"):
                        times = int(tok[3:]) if len(tok) > 3 else 2
                        if not 2 <= times <= 16:
                            raise ValueError(f"a repeat plays 2-16 times, got {tok!r}")
                        start = repeat_from if repeat_from is not None else 0
                        body = bars[start:]
                        if not body:
                            raise ValueError("a repeat with no bars")
                        if len(bars) + len(body) * (times - 1) > MAX_BARS:  # nested repeats multiply
                            raise ValueError(f"the repeats make more than {MAX_BARS} bars")
                        bars.extend(body * (times - 1))
                        repeat_from = None
                    continue
                if cur is None:
                    cur = []
                if tok == "%":
                    if cur or not bars:
                        raise ValueError("'%' repeats the previous bar and stands alone in its bar")
                    cur.extend(bars[-1])
                elif tok in ("/", "."):
                    if not cur and not bars:
                        raise ValueError(f"{tok!r} repeats a chord, but none came before")
                    cur.append(cur[-1] if cur else bars[-1][-1])
                else:
                    cur.append(parse_chord(tok))
            if cur:
                bars.append(tuple(cur))
        except ValueError as exc:
            raise ChartError(f"{source} line {lineno}: {exc}") from None
        if len(bars) > MAX_BARS:
            raise ChartError(f"{source}: more than {MAX_BARS} bars")
    if not bars:
        raise ChartError(f"{source}: no bars (write chords between bar lines, e.g. | C | Am | F G7 |)")
    for b in bars:
        if len(b) > 16:
            raise ChartError(f"{source}: a bar with {len(b)} chords (at most 16)")
    return Chart(tuple(bars), tuple(sections), source)


def load_chart(path: str | Path) -> Chart:
    """Read a chart file (a plain text file, at most ``SMALL_FILE_MAX`` bytes); ChartError
    naming the file otherwise."""
    p = Path(path)
    try:
        text = read_small_text(p)
    except ValueError as exc:
        raise ChartError(f"{p}: {exc}") from None
    except OSError as exc:
        raise ChartError(f"cannot read chart {p}: {exc.strerror or exc}") from None
    return parse_chart(text, str(p))


def save_chart(chart: Chart, path: str | Path) -> Path:
    """Write ``chart`` as text (a temp file beside it, renamed into place)."""
    from models.atomic import write_atomic

    return write_atomic(path, chart.text())


class ChordSource(Protocol):
    """What the band's chord stream can follow (``ChartSource``, ``engine.arranger.Arranger``)."""

    live: bool  # True: the chord held now, whatever step is asked for

    def token_at(self, step: int) -> int | None: ...


class ChartSource:
    """A chart as the band's chord source: its first bar starts at step ``start`` and the
    form loops from its top. ``strict``: the bass and keys strike only chord tones."""

    live = False  # the chord depends on the step (not on when it is asked)

    def __init__(self, chart: Chart, meter: str, start: int = 0, strict: bool = False) -> None:
        self.chart = chart
        self.meter = meter
        self.start = int(start)
        self.strict = bool(strict)
        self._bar = bar_steps(meter)

    def token_at(self, step: int) -> int | None:
        """The chart's chord at ``step`` (None before the chart starts)."""
        if step < self.start:
            return None
        return self.chart.token_at(step - self.start, self.meter)

    def position(self, step: int) -> tuple[int, int, str]:
        """(bar of the form 0.., times round the form 0.., section name or "") at ``step``."""
        bars = len(self.chart.bars)
        loop, bar = divmod(max(0, step - self.start) // self._bar, bars)
        name = ""
        for sec, first in self.chart.sections:
            if first <= bar:
                name = sec
        return bar, loop, name


def _tone_masks() -> dict[int, np.ndarray]:
    """Per chord token: an additive row over the note vocabulary, -inf on the onsets whose
    pitch class is not a chord tone (rest and hold stay allowed)."""
    masks = {}
    pcs_of = np.arange(128) % 12
    for tok in range(CHORD_BASE, CHORD_VOCAB):
        row = np.zeros(NOTE_VOCAB, np.float32)
        row[NOTE_BASE:] = np.where(np.isin(pcs_of, sorted(chord_pitch_classes(tok))), 0.0, -np.inf)
        masks[tok] = row
    return masks


_TONE_MASKS = _tone_masks()


class ChartSampler:
    """Wraps the band's sampler: the chord stream's token at each step is the chord
    source's (a chart, a locked form, the arranger's left hand); the other streams are
    drawn as usual. The chord still goes through the wrapped sampler (as the only allowed
    token) so its state (the chord the band plays over) stays right. With no source, or
    where the source has no chord (None), the model chooses its own chord.

    A source has ``token_at(step) -> int | None`` and ``live``: a live source's chord is
    the one held when the step is committed (``begin_step`` reads it once), whatever
    cell asks; a chart's is the chord at the cell's own step. A ``strict`` source also
    masks the bass, tenor and alto onsets to the tones of the chord at their step.

    ``t0``: the step of the model's time 0 (its last reset). The accompanist's
    ``current_cell`` (time, stream) says which step a cell belongs to under a delay
    pattern; without it the cell is the step being generated (``step``).
    Thread: the generator worker (``source`` is replaced there, between steps).
    """

    def __init__(self, sampler, chart: "Chart | ChartSource | None", meter: str, accompanist=None) -> None:
        self.sampler = sampler
        self.meter = meter
        self.accompanist = accompanist
        self.source: ChordSource | None = ChartSource(chart, meter) if isinstance(chart, Chart) else chart
        self.t0 = 0
        self.step = 0
        self.now: int | None = None  # the source's chord for the step being committed
        self._forced: np.ndarray | None = None
        self._masked = np.empty(NOTE_VOCAB, np.float32)

    @property
    def chart(self) -> Chart | None:
        return getattr(self.source, "chart", None)

    def begin_step(self, step: int) -> None:
        """The generator is about to commit ``step``: read the source's chord for it."""
        self.step = step
        src = self.source
        self.now = None if src is None else src.token_at(step)

    def _token(self, stream: int) -> int | None:
        src = self.source
        assert src is not None  # __call__ asks only with a source
        if src.live:
            return self.now
        cell = getattr(self.accompanist, "current_cell", None)
        step = self.t0 + cell[0] if cell is not None and cell[1] == stream else self.step
        return src.token_at(step)

    def __call__(self, stream: int, logits: np.ndarray) -> int:
        if self.source is None or stream == MELODY:
            return self.sampler(stream, logits)
        if stream != CHORD:
            if getattr(self.source, "strict", False):
                tok = self._token(stream)
                mask = _TONE_MASKS.get(tok) if tok is not None else None
                if mask is not None and logits.shape[0] <= NOTE_VOCAB:
                    out = self._masked[: logits.shape[0]]
                    np.add(logits, mask[: logits.shape[0]], out=out)
                    return self.sampler(stream, out)
            return self.sampler(stream, logits)
        tok = self._token(stream)
        if tok is None:
            return self.sampler(stream, logits)
        if self._forced is None or self._forced.shape != logits.shape:
            self._forced = np.empty_like(logits)
        self._forced.fill(-np.inf)
        if 0 <= tok < logits.shape[0]:
            self._forced[tok] = 0.0
        self.sampler(stream, self._forced)  # keeps the sampler's chord state and random stream in step
        return tok

    def __getattr__(self, name):  # the wrapped sampler's controls and state
        return getattr(self.sampler, name)
