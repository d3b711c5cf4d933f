"""Arranger mode: the notes a player holds below a split point name the band's chord.

``recognise(pitches)`` reads held MIDI pitches as one chord of the model's vocabulary
(``models.tokens.QUALITIES``): triads, sevenths, sixths, sus chords, in any inversion,
with a slash bass (``C/Bb`` is read as C7, ``C/E`` as C) and extensions folded in (a C9
is a C7). It is a template match over the 12 roots x 12 qualities: each candidate costs
one per played tone outside it, 0.5 for a missing fifth and 2 for any other missing tone;
the cheapest wins, then a root in the bass (``A C E G`` is Am7 over A, C6 over C), then
the plainer quality (C E G Bb D is C7; C C# D fits nothing). Fewer than three pitch
classes read as arranger keyboards read them:
one key is its major chord ("single finger"), two keys a third, fifth or seventh over
the lower one (or their inversions). A cluster that fits no chord (cost > 1) is None.

music21 names chords too, but it is an optional extra here, costs ~7 ms a chord on this
VM, and its names would still need mapping onto these 12 qualities; the template match
is exact for them and takes microseconds.

``Arranger`` is the live chord source the generator's chord forcing reads
(``engine.chart.ChartSampler``): note events below the split arrive from the MIDI or
keyboard thread with their time on the audio clock; when the generator commits step k it
applies the keys of the steps before k (each key at its nearest step, as the melody's
``Quantiser`` rounds), so the keys struck in one 16th are read together and the band
plays their chord from the next step; it re-reads the chord whenever a key went down. Lifting the
fingers keeps the chord (arranger keyboards' "chord memory"), so the left hand may let go.

Thread: ``note``/``set_split``/``clear`` from any one producer thread (events travel in a
deque whose append/popleft are atomic); ``token_at`` from the generator worker only.
"""

from __future__ import annotations

import collections
import re
from typing import Iterable

from engine.clock import Clock
from models.tokens import (
    NATURAL_PCS,
    PITCH_NAMES,
    QUALITIES,
    QUALITY_INTERVALS,
    chord_name,
    chord_of_token,
    chord_token,
)

DEFAULT_SPLIT = 54  # F#3: the left hand plays below it (F3 and down), the melody F#3 and up
SPLIT_RANGE = (1, 127)  # the MIDI notes a split point may be (note 0 would leave no chord hand)
MAX_COST = 1.0
# keys struck this close together are one chord even across a step boundary (a hand's
# spread is ~5-30 ms)
CHORD_SPREAD_S = 0.03
# tie-break among equally good readings: the plainer quality first
_PREFERENCE = ("maj", "min", "7", "min7", "maj7", "6", "sus4", "sus2", "dim", "hdim7", "dim7", "aug")
_TEMPLATES = [
    (root, q, frozenset((root + i) % 12 for i in QUALITY_INTERVALS[q]), _PREFERENCE.index(q))
    for root in range(12)
    for q in QUALITIES
]
# two pitch classes: the interval above the lower one -> (root offset from the lower one, quality)
_DYADS = {
    3: (0, "min"),
    4: (0, "maj"),
    7: (0, "maj"),
    10: (0, "7"),
    11: (0, "maj7"),
    5: (5, "maj"),
    8: (8, "maj"),
    9: (9, "min"),
}


def check_split(split: int) -> int:
    """The split point as an int; ValueError unless it is a MIDI note in SPLIT_RANGE."""
    try:
        v = int(split)
    except (TypeError, ValueError):
        raise ValueError(f"the arranger split point must be a MIDI note number, got {split!r}") from None
    lo, hi = SPLIT_RANGE
    if v != split or not lo <= v <= hi:
        raise ValueError(f"the arranger split point must be a MIDI note {lo}-{hi}, got {split!r}")
    return v


def parse_split(text: str) -> int:
    """A split point from a MIDI note number (``54``) or a note name (``F#3``, ``Bb2``;
    middle C = C4); ValueError naming the forms otherwise."""
    t = str(text).strip()
    if t.lstrip("-").isdigit():
        return check_split(int(t))
    m = re.fullmatch(r"([A-Ga-g])([#b]?)(-?\d)", t)
    if m is None:
        raise ValueError(f"the split point is a MIDI note number or a note name like F#3, got {text!r}")
    pc = NATURAL_PCS[m.group(1).upper()]
    pc += {"#": 1, "b": -1}.get(m.group(2), 0)
    return check_split((int(m.group(3)) + 1) * 12 + pc)


def recognise(pitches: Iterable[int]) -> int | None:
    """The chord token the held ``pitches`` name, or None when they name none."""
    ps = sorted({int(p) for p in pitches})
    if not ps:
        return None
    bass = ps[0] % 12
    pcs = frozenset(p % 12 for p in ps)
    if len(pcs) == 1:
        return chord_token(bass, "maj")
    if len(pcs) == 2:
        other = next(iter(pcs - {bass}))
        hit = _DYADS.get((other - bass) % 12)
        return None if hit is None else chord_token(bass + hit[0], hit[1])
    best: tuple[float, int, int, int] | None = None
    for root, q, tones, pref in _TEMPLATES:
        if root not in pcs:
            continue
        cost = float(len(pcs - tones))
        for pc in tones - pcs:
            cost += 0.5 if (pc - root) % 12 == 7 else 2.0
        if cost > MAX_COST:
            continue
        key = (cost, int(root != bass), pref, chord_token(root, q))
        if best is None or key < best:
            best = key
    return None if best is None else best[3]


def slash_name(token: int, bass_pc: int | None, key: tuple[int, str] | None = None) -> str:
    """The chord's name with its bass when that is not the root: ``C/E``."""
    name = chord_name(token, key)
    rq = chord_of_token(token)
    if rq is None or bass_pc is None or bass_pc % 12 == rq[0]:
        return name
    return f"{name}/{PITCH_NAMES[bass_pc % 12]}"


class Arranger:
    """A split keyboard's left hand as the band's chord source (see the module doc)."""

    live = True  # the chord does not depend on the step asked for: the one held now
    strict = True  # the band follows it exactly: bass and keys strike only its tones

    def __init__(self, split: int = DEFAULT_SPLIT, clock: Clock | None = None) -> None:
        self.split = check_split(split)
        self.clock = clock
        self._inbox: collections.deque[tuple[int, int, bool]] = collections.deque()
        self._held: set[int] = set()
        self._taken: set[int] = set()  # keys pressed as chord keys (producer side)
        self.token: int | None = None  # the chord read last (None: none played yet)
        self.bass: int | None = None  # its lowest held pitch class (for a slash name)
        self.chords = 0  # chords read
        self.late = 0  # chord keys that missed the step after their own
        # (sample of the chord's first new key, step the band plays it from, token) per
        # chord read: what benches and tests compare the band's chord stream against
        self.readings: collections.deque[tuple[int, int, int]] = collections.deque(maxlen=256)
        # a chord source (a chart) the band follows until the left hand plays a chord
        self.fallback = None

    def set_split(self, split: int) -> None:
        """Thread: any. Notes below ``split`` are chords from the next one played."""
        self.split = check_split(split)

    def bind(self, clock: Clock | None) -> None:
        """The clock the event times are on (a new one per play). Thread: owner, not playing."""
        self.clock = clock
        self._inbox.clear()
        self._held.clear()

    def clear(self) -> None:
        """Forget the chord (the model chooses again until one is played) and which keys
        were chord keys. Thread: any."""
        self._taken.clear()
        self._inbox.append((-1, -1, False))

    def note(self, time: int, pitch: int, on: bool) -> bool:
        """A player's note at sample ``time``; True if it is below the split (a chord
        note, taken here), False if it is the melody's. Thread: one producer."""
        p = int(pitch)
        if not 0 <= p < 128:
            raise ValueError(f"MIDI pitch out of range: {pitch}")
        if on:
            if p >= self.split:
                return False
            self._taken.add(p)
        elif p in self._taken:
            self._taken.discard(p)  # its release, wherever the split is now
        else:
            return False  # the release of a melody note (held before a split change)
        self._inbox.append((int(time), p, bool(on)))
        return True

    def held(self) -> frozenset[int]:
        """The chord keys held as of the last committed step. Thread: any (a copy)."""
        return frozenset(self._held)

    def name(self, key: tuple[int, str] | None = None) -> str:
        """The chord read last, with its slash bass (``C/E``), or "". Thread: any."""
        tok = self.token
        return "" if tok is None else slash_name(tok, self.bass, key)

    def _step_of(self, time: int) -> int:
        clock = self.clock
        if clock is None:
            return -(1 << 62)
        k = clock.step_at(time)
        t0, t1 = clock.step_time(k), clock.step_time(k + 1)
        return k + 1 if (time - t0) >= (t1 - time) else k

    def token_at(self, step: int) -> int | None:
        """Apply the chord keys of the steps before ``step`` (and any key that follows the
        last one applied within CHORD_SPREAD_S, already here: a hand's spread across a step
        boundary is one chord); the chord held now (None: none played yet, the model
        chooses). Thread: the generator worker."""
        struck = False
        first = last = -1
        clock = self.clock
        spread = int(CHORD_SPREAD_S * clock.sample_rate) if clock is not None else 0
        inbox = self._inbox
        while inbox:
            t, pitch, on = inbox[0]
            if pitch < 0:  # clear()
                inbox.popleft()
                self._held.clear()
                self.token = self.bass = None
                struck = False
                continue
            s = self._step_of(t)
            if s >= step and not (on and struck and t - last <= spread):
                break  # this step's keys (or later): read at the next one
            inbox.popleft()
            if on:
                self._held.add(pitch)
                if not struck:
                    first = t
                struck, last = True, t
                self.late += int(s < step - 1)
            else:
                self._held.discard(pitch)
        if struck and self._held:
            tok = recognise(self._held)
            if tok is not None:
                self.token, self.bass = tok, min(self._held) % 12
                self.chords += 1
                self.readings.append((first, step, tok))
        fb = self.fallback
        return self.token if self.token is not None or fb is None else fb.token_at(step)
