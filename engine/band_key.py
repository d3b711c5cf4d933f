"""Listening first, and the key the band keeps to (the generator's, see engine.generator).

Until the player has given enough melody for a key (``LISTEN_ONSETS`` notes or
``LISTEN_STEPS`` sounding steps, as the model hears them) the band only listens (the
generator plays the drums); on the next beat it enters in the key the melody implies,
which the sampler then keeps to. A fixed key or a given chord (a chart's, the arranger's)
ends the listening at once. With no key fixed, the band's key follows the melody, so the
key shown is always the one the band plays in. It follows two ways:

- a gradual modulation: the key moves when the melody's slow profile (half-life ~4 bars)
  has implied another key at two bar lines running;
- a key jump (a singer who moves the song up a tritone): when ``JUMP_FOREIGN`` of the
  last ``JUMP_ONSETS`` melody notes are outside the band's key, the band lets the key go
  at once (no key shown; the model and the melody's own pull choose the chords) and on
  a following beat keeps to the old key moved by the interval the jump's notes imply:
  the melody's own pitch-class profile before the jump, moved by each interval, scored
  on the notes since (``_moved_key``), among the moves whose scale holds them all. A
  singer who jumps sings the same tune higher, so its own profile names the new key from
  two or three notes, where a generic key profile on so few notes named a neighbour key
  a fifth off (Bb minor for Ab major) half the time and its penalty held the band off
  the new key's dominant. Failing that, the key of the melody's last beat or two (a fast
  profile) once that key holds all the last notes. Waiting for the slow profile kept the
  band in the old key, its chords penalised into it, for 12-13 beats after a tritone jump
  (``liveband eval``'s perturbation protocol played live). A single note outside the key
  moves nothing: while it is one of the last notes the key's penalty pauses (``step``).

Thread: the generator worker changes it; ``listening``, ``entered_step`` and ``key`` may
be read from any thread (single attribute reads).
"""

from __future__ import annotations

import collections

import numpy as np

from engine.keyfind import estimate_key, key_name, key_pitch_classes, parse_key
from models.sampling import ControlledSampler
from models.tokens import HOLD, chord_pitch_classes, is_note_on, token_pitch

LISTEN_ONSETS = 3  # the band enters after this many melody notes...
LISTEN_STEPS = 8  # ... or this many sounding melody steps (a held note), on the next beat
KEY_DECAY = 0.99  # per step: the melody's key profile halves in ~4 bars (follows a modulation)
KEY_MOVE_BARS = 2  # bar lines running another key must be implied before the band moves
JUMP_ONSETS = 4  # a key jump: of the melody's last this many notes ...
JUMP_FOREIGN = 2  # ... at least this many outside the band's key
FAST_DECAY = 0.85  # per step: the fast profile halves in ~a beat (the jump's own notes)
# A moved key is kept when it is this many nats (log-likelihood of the jump's notes under
# the tune's own profile) ahead of the next move whose scale holds them, or alone.
MOVE_MARGIN = 1.0
MOVE_NOTES = 16  # the jump's latest notes it is scored on
MOVE_FLOOR = 0.02  # the profile's floor per pitch class: a note the tune never sang is rare, not impossible
GIVEN_CHORD_WEIGHT = 0.5  # a given chord's tones, per step, in the key profile


class BandKey:
    def __init__(self, sampler: ControlledSampler, listen: bool, first_step: int) -> None:
        self.sampler = sampler
        self.listening = bool(listen)
        self.entered_step: int | None = None if listen else first_step
        self.key = ""  # the key the band keeps to ('' while it listens)
        self.auto = bool(listen)  # the key follows the melody (no key fixed)
        self._w = np.zeros(12, np.float64)  # decaying melody pitch-class durations
        self._pc: int | None = None  # the sounding melody note's pitch class
        self._onsets = 0
        self._steps = 0
        self._moves = 0  # bar lines running the melody implied another key
        self._fast = np.zeros(12, np.float64)  # the melody's last beat or two (key jumps)
        self._recent: collections.deque[int] = collections.deque(maxlen=JUMP_ONSETS)  # onset pitch classes
        self._scale: frozenset[int] = frozenset()  # the band's key's pitch classes ('' : none)
        self._yielding = False  # a recent melody note is outside the key: no key penalty
        # a key jump: the key let go, the tune's profile then, and the notes since its first
        # foreign note (pitch class, steps sounding)
        self._left: tuple[int, str] | None = None
        self._tune = np.zeros(12, np.float64)
        self._jump_notes: collections.deque[list[int]] = collections.deque(maxlen=MOVE_NOTES)

    def hear(self, tok: int) -> None:
        """A melody token the model hears, into the key profile and the listening counts."""
        self._w *= KEY_DECAY
        self._fast *= FAST_DECAY
        if is_note_on(tok):
            self._pc = token_pitch(tok) % 12
            self._onsets += 1
            self._recent.append(self._pc)
            if self._left is not None:
                self._jump_notes.append([self._pc, 0])
        elif tok != HOLD:
            self._pc = None
        if self._pc is not None:
            self._w[self._pc] += 1.0
            self._fast[self._pc] += 1.0
            self._steps += 1
            if self._left is not None and self._jump_notes:
                self._jump_notes[-1][1] += 1

    def commit(self, key: str) -> None:
        """The band keeps to ``key`` from the next cell it draws ('' : no key)."""
        self.key = key
        if key:  # a key found (or fixed) ends any search for a jump's key
            self._left = None
            self._jump_notes.clear()
        self._moves = 0
        self._scale = key_pitch_classes(*parse_key(key)) if key else frozenset()
        self._yielding = False
        self.sampler.set_key(self._scale or None)

    def enter(self, k: int) -> None:
        if self.listening:
            self.listening = False
            self.entered_step = k

    def fix(self, pitch_classes: frozenset[int] | None, name: str, k: int) -> None:
        """The player fixed a key (pitch classes, its name) or let it go (None)."""
        self.auto = pitch_classes is None
        if pitch_classes is not None:
            self.sampler.set_key(pitch_classes)
            self.key = name
            self._scale = frozenset(pitch_classes)
            self._yielding = False
            self._left = None
            self.enter(k)  # a fixed key: the band plays in it from now
        elif self.listening:
            self.sampler.set_key(None)
        else:
            est = estimate_key(self._w)
            if est:
                self.commit(est)
            # else nothing heard yet: the band stays in the key it has been playing in

    def step(self, k: int, given_chord: int | None, beat_steps: int, bar_steps: int) -> None:
        """Before the model draws step ``k``: a given chord (or None) and the melody so far."""
        if given_chord is not None and self.auto:
            self._w[list(chord_pitch_classes(given_chord))] += GIVEN_CHORD_WEIGHT  # a chord implies a key too
        if self.listening and given_chord is not None:
            self.enter(k)  # the player gave a chord (chart, left hand)
            if self.auto:
                self.commit(estimate_key(self._w))
        if self.listening:
            enough = self._onsets >= LISTEN_ONSETS or self._steps >= LISTEN_STEPS
            if enough and k % beat_steps == 0:
                self.enter(k)
                if self.auto:
                    self.commit(estimate_key(self._w))
        elif self.auto and self._foreign() >= JUMP_FOREIGN:
            # the melody has left the key: the band stops keeping to it at once (no key
            # shown) and finds the new one on a beat below
            self._let_go()
        elif self.auto and not self.key and k % beat_steps == 0 and (moved := self._moved_key())[1]:
            if moved[0] is not None and self._left is not None:
                self.commit(key_name((self._left[0] + moved[0]) % 12, self._left[1]))
                # the tune goes on, moved: the slow profile is its profile moved with it
                self._w[:] = np.roll(self._tune, moved[0])
            # else two moves still fit the notes: wait for the next beat's
        elif self.auto and not self.key and k % beat_steps == 0 and self._found(est := estimate_key(self._fast)):
            self.commit(est)
            # the old key's weight must not pull the slow profile back: it restarts from
            # the notes that made the jump
            self._w[:] = self._fast
        elif self.auto and k % bar_steps == 0:
            est = estimate_key(self._w)
            self._moves = self._moves + 1 if est and est != self.key else 0
            if self._moves >= KEY_MOVE_BARS:
                self.commit(est)
        if self.auto and self._scale:
            # a note outside the key (a passing C#, a blue note) is the melody's: while
            # one of the last notes is, the band does not hold its chords against it
            yield_ = self._foreign() > 0
            if yield_ != self._yielding:
                self._yielding = yield_
                self.sampler.set_key(None if yield_ else self._scale)

    def _let_go(self) -> None:
        """The melody left the band's key: no key until the new one is found; keep what
        ``_moved_key`` needs (the old key, the tune's profile, the jump's notes so far)."""
        if self.key:
            recent = list(self._recent)
            first = next(i for i, pc in enumerate(recent) if pc not in self._scale)
            self._left = parse_key(self.key)
            self._tune = self._w.copy()
            self._jump_notes.clear()
            self._jump_notes.extend([pc, 1] for pc in recent[first:])
        self.commit("")

    def _moved_key(self) -> tuple[int | None, bool]:
        """(the interval 0-11 the old key moved by, or None; whether any move is still
        possible). From the notes since the jump: the most likely move under the tune's
        own profile moved by it, among the moves whose scale holds every one of them,
        when ``MOVE_MARGIN`` ahead of the next or alone. (None, True) while the notes
        leave two moves close, until ``MOVE_NOTES`` notes; (None, False) when no move
        holds them (a change of mode, say) or no key was let go."""
        if self._left is None:
            return None, False
        tonic, mode = self._left
        prof = self._tune / max(float(self._tune.sum()), 1e-9)
        logp = np.log(np.maximum(prof, 0.0) + MOVE_FLOOR)
        pcs = {pc for pc, _ in self._jump_notes}
        scored = sorted(
            (
                (sum(max(n, 1) * logp[(pc - move) % 12] for pc, n in self._jump_notes), move)
                for move in range(12)
                if pcs <= key_pitch_classes((tonic + move) % 12, mode)
            ),
            reverse=True,
        )
        if not scored:
            return None, False
        if len(self._jump_notes) < JUMP_FOREIGN or (len(scored) > 1 and scored[0][0] - scored[1][0] < MOVE_MARGIN):
            # still close after MOVE_NOTES notes (a two-note ostinato): the generic profile decides
            return None, len(self._jump_notes) < MOVE_NOTES
        return scored[0][1], True

    def _foreign(self) -> int:
        """How many of the melody's last notes are outside the band's key (0 without one)."""
        if not self._scale:
            return 0
        return sum(pc not in self._scale for pc in self._recent)

    def _found(self, est: str) -> bool:
        """Whether ``est`` (the fast profile's key) holds all the melody's last notes."""
        return bool(est) and set(self._recent) <= key_pitch_classes(*parse_key(est))
