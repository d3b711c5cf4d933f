"""The one sampler: ``models.contract.Sampler`` with the player's controls.

``ControlledSampler`` is what the engine's generator hands to ``Accompanist.advance``.
Per call (one stream's logits at one position) it applies

- harmony-follow (0 free .. 1 strict): a bonus to notes and chords whose pitch classes
  the player has been singing lately (a decaying pitch-class profile of the melody) and,
  for note streams, to notes of the chord the band chose last;
- anticipation, at the same strength: when the last bar of melody repeats a passage
  heard before (``models.recall.MelodyRecall``), the chord is chosen for the pitch classes
  that followed that passage (instead of those just sung, which would make the band a
  beat late) and the voices strike those pitch classes more readily;
- the model's own belief, at the same strength: from the chord distribution the model
  gives at each chord draw (before any bias), the chance that each pitch class is a tone
  of the chord; the voices favour the tones it is surest of, and strike more readily
  where it is sure of the band's chord and hold or rest more where it is not (a pianist
  lays back on a change they cannot hear coming);
- clash avoidance, at the same strength: a voice's pitch a semitone (or a major 7th)
  from the melody note sounding, or from the one forecast for its step, is drawn less
  readily (the rub a listener hears as a wrong note; struck chord tones were most of
  the band's clashes on folk tunes);
- a fixed key (``set_key``, when the player chose one): a penalty on notes outside
  its scale and on chords for each of their tones outside it (the pad and keys sound
  every chord tone, so one foreign tone is as audible as a foreign note);
- density (0 sparse .. 1 busy): shifts note streams between new onsets and HOLD/REST;
- temperature ("creativity"): divides the logits before sampling; for note streams the
  pitch of an onset is drawn at a small share of it (``PITCH_TEMPERATURE_SHARE``) while
  strike / hold / rest keep the temperature, and chords are drawn at
  ``CHORD_TEMPERATURE_SHARE`` of it;

then draws from a seeded ``numpy.random.Generator``, so a seed gives the same band.

``make_sampler`` (``liveband eval``, tests) is the same sampler with the controls off
(harmony-follow 0, density 0.5, no key): only the split-temperature decoding; at
temperature 0 it is ``greedy``.

Thread: only the generator worker calls it (``set_controls``/``observe_melody`` too).
"""

from __future__ import annotations

import math

import numpy as np

from models.contract import CHORD_TEMPERATURE_SHARE, PITCH_TEMPERATURE_SHARE, Accompanist, Sampler
from models.recall import MelodyRecall, recall_steps
from models.tokens import (
    CHORD,
    CHORD_BASE,
    CHORD_VOCAB,
    HOLD,
    MAX_VOCAB,
    MELODY,
    NOTE_BASE,
    NOTE_VOCAB,
    REST,
    VOCAB_SIZES,
    chord_pitch_classes,
    is_note_on,
    token_pitch,
)

# The harmony-follow gains below are at full strength (harmony_follow = 1); the default
# (0.5) plays at half of each. The harmony, recall-chord and clash gains were doubled
# from (5, 24, 8): on validation songs 41-50 (not the reported first 20) melody-in-chord
# and harmony-now rose on POP909 and Nottingham, harmony-late did not, clash fell on
# Nottingham (docs/data-and-eval.md, "Harmony-follow at twice the gain"). The recall
# note gain stays: it is an onset bonus, and doubled it changed how often the band
# strikes (a rock render's drums, which follow the band's density, went to their busy
# 16ths variant).
# Log-probability bonus for a fully matching pitch class; large enough to dominate a
# small model's doubt, small enough that a confident model can still pass a note outside
# the profile.
HARMONY_GAIN = 10.0
# Logit shift between onsets and holds/rests from density 0 to 1.
DENSITY_GAIN = 3.0
# Log-probability penalty for a note (or a whole chord) outside a key the player fixed:
# the player's explicit choice outweighs the model's doubt and full harmony-follow
# (HARMONY_GAIN), not a confident model.
KEY_GAIN = 12.0
# The player's creativity knob: the temperatures the band may be played at (the app's
# and the command line's range, liveband.config.TEMPERATURE_RANGE).
TEMPERATURE_RANGE = (0.05, 2.0)
# The band's controls when nobody set them (the app's, the command line's and a render's,
# through liveband.config): creativity, density (0 sparse .. 1 busy) and harmony-follow
# (0 free .. 1 strictly follows the player's notes).
DEFAULT_TEMPERATURE = 0.9
DEFAULT_DENSITY = 0.5
DEFAULT_HARMONY_FOLLOW = 0.5
# Melody pitch-class memory: per-step decay (0.93 ** 16 ~ a third left after a bar).
PROFILE_DECAY = 0.93
# ... for a model that hears the melody ahead (an offline render's teacher): it has heard
# the notes around the step it draws, so the profile keeps about a beat (0.8 ** 4 ~ 0.4);
# a bar's memory held its chords in the old key for 5-6 beats after a key jump. On the
# first 20 validation songs (teacher, app defaults) 0.8 against 0.93: POP909
# melody-in-chord 0.776 -> 0.816, harmony-now 0.734 -> 0.762, clash 1.7 -> 2.4 % (human
# 3.5 %), beats to recover from a tritone 5 -> 1; Nottingham 0.764 -> 0.788, 0.752 -> 0.783,
# clash 0.8 -> 1.2 % (human 1.3 %); docs/data-and-eval.md.
PROFILE_DECAY_AHEAD = 0.8
# Anticipation at full harmony-follow: the chord bonus for a forecast pitch class (it
# replaces the sung-profile bonus while a forecast stands) and the onset bonus for a
# note of a forecast pitch class. Chosen on POP909/Nottingham validation songs 41-50,
# which the reported measures (the first 20) do not include; docs/data-and-eval.md.
RECALL_CHORD_GAIN = 48.0
RECALL_NOTE_GAIN = 8.0
# Log-probability penalty at full harmony-follow for a voice pitch a semitone / major 7th
# from the melody note sounding, and its multiple against a forecast note (the note the
# melody will be on when the voice sounds, where the one now may have moved on). Chosen
# on validation songs 41-50 as the recall gains were; docs/data-and-eval.md.
CLASH_GAIN = 16.0
CLASH_FORECAST_SHARE = 3.0
# The model's own belief at full harmony-follow: the voices' pitch bonus per unit of
# P(pitch class in the chord) under the model's unbiased chord distribution, and the
# strike bonus per unit of the mean belief in the band chord's tones ("sure") above its
# running mean over the last bars (below it, a penalty: the band holds where it is
# unsure). Against the running mean, not a fixed level, so the band keeps the density the
# player set: a model that hears ahead is sure far more often (against a fixed 0.65 an
# offline render struck 70 % more notes). SURE_CENTER starts the mean; SURE_DECAY per
# chord draw (0.98 ** 64 ~ a quarter left after 4 bars). The band's chord is the
# recall's pick more often than the model's own (that keeps it on the beat), so its tones
# the model doubts are where its notes leave the song's harmony. On POP909 validation
# songs 41-60 (not the reported first 20), stage 31 as played, seeds 0 / 1 / 2:
# note-in-chord 0.6904 / 0.6911 / 0.6933 -> 0.7006 / 0.6967 / 0.6970 with the pitch bonus
# alone (2 / 4 / 6 / 8: 0.6972 / 0.7006 / 0.6960 / 0.6970); with the strike bonus 0.7150
# against a fixed centre 0.65 (0.6 with gain 4 / 8: 0.7039 / 0.7115) and 0.7140 against
# the running mean as shipped (onsets -4 %); the listening measures on the same songs
# barely move (docs/data-and-eval.md).
BELIEF_NOTE_GAIN = 4.0
SURE_ONSET_GAIN = 8.0
SURE_CENTER = 0.65
SURE_DECAY = 0.98
# Steps from the last melody step heard to the step a chord / a voice note is drawn for,
# in the shipped live pattern (parallel, lookahead 1: the generator feeds melody step
# k - 1 and the model draws the chord and the voices of step k). ``fit_to`` sets them
# from the model's own pattern (``models.recall.recall_steps``).
RECALL_AHEAD = (1, 1)
# The voices' pitch bonus: this share for the band's own chord's pitch classes, the rest
# for the melody's recent ones (so the voices sound the chord the band committed to).
CHORD_NOTE_SHARE = 0.4


def _pitch_class_tables() -> tuple[np.ndarray, np.ndarray]:
    """(MAX_VOCAB, 12) pitch-class membership for note tokens and for chord tokens."""
    notes = np.zeros((MAX_VOCAB, 12), np.float32)
    for tok in range(NOTE_BASE, NOTE_VOCAB):
        notes[tok, (tok - NOTE_BASE) % 12] = 1.0
    chords = np.zeros((MAX_VOCAB, 12), np.float32)
    for tok in range(CHORD_BASE, CHORD_VOCAB):
        pcs = chord_pitch_classes(tok)
        for pc in pcs:
            chords[tok, pc] = 1.0 / len(pcs)
    return notes, chords


_NOTE_PC, _CHORD_PC = _pitch_class_tables()
_CHORD_TONES = (_CHORD_PC > 0).astype(np.float32)  # (MAX_VOCAB, 12): 1 per chord tone
_ONSET_MASK = np.zeros(MAX_VOCAB, np.float32)
_ONSET_MASK[NOTE_BASE:NOTE_VOCAB] = 1.0


class ControlledSampler:
    def __init__(
        self,
        seed: int = 0,
        temperature: float = DEFAULT_TEMPERATURE,
        density: float = DEFAULT_DENSITY,
        harmony_follow: float = DEFAULT_HARMONY_FOLLOW,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        # the pitch and chord temperatures when not the shares of ``temperature`` (plain)
        self._pitch_temperature: float | None = None
        self._chord_temperature: float | None = None
        self.set_controls(temperature, density, harmony_follow)
        self.profile = np.zeros(12, np.float32)  # decaying melody pitch-class weights
        self._melody_pitch: int | None = None
        self.chord_pcs = np.zeros(12, np.float32)  # pitch classes of the band's last chord
        self._scratch = np.empty(MAX_VOCAB, np.float64)
        self._pitch = np.empty(MAX_VOCAB, np.float64)
        self._cum = np.empty(MAX_VOCAB, np.float64)
        self.out_of_key = np.zeros(12, np.float32)  # 1 for pitch classes outside a fixed key
        # P(pitch class is a chord tone) under the model's own chord distribution at the
        # latest chord draw (None before the first); _belief_p is its scratch
        self.belief: np.ndarray | None = None
        self._belief_p = np.empty(MAX_VOCAB, np.float64)
        self._sure = SURE_CENTER  # belief in the band chord's tones, at the last chord draw
        self._sure_mean = SURE_CENTER  # ... its running mean (SURE_DECAY)
        # the chord bias and the voices' biases are recomputed when their inputs change:
        # the chord's before each chord draw, the voices' after it (the drawn chord, the
        # belief and how sure it is feed them, not the chord's)
        self._chord_dirty = True
        self._voice_dirty = True
        self._last_chord = -1
        self.recall = MelodyRecall()
        self._recall_ahead: tuple[int, int] | None = RECALL_AHEAD
        self._decay = PROFILE_DECAY

    @classmethod
    def plain(
        cls,
        temperature: float,
        seed: int = 0,
        pitch_temperature: float | None = None,
        chord_temperature: float | None = None,
    ) -> ControlledSampler:
        """The sampler with the player's controls off (``make_sampler``): any positive
        temperature, optionally its own pitch / chord temperatures (0: none apart)."""
        if not 0.0 < temperature < math.inf:
            raise ValueError(f"temperature must be positive, got {temperature}")
        s = cls(seed, harmony_follow=0.0)
        s._pitch_temperature, s._chord_temperature = pitch_temperature, chord_temperature
        s._set(temperature, 0.5, 0.0)
        return s

    def set_key(self, pitch_classes: frozenset[int] | None) -> None:
        """The scale of a key the player fixed, or None to follow the playing only."""
        self.out_of_key[:] = 0.0
        if pitch_classes is not None:
            for pc in range(12):
                self.out_of_key[pc] = 0.0 if pc in pitch_classes else 1.0
        self._chord_dirty = self._voice_dirty = True

    def set_recall(self, ahead: tuple[int, int] | None) -> None:
        """Steps (chord, voice) from the last melody step heard to the step each is drawn
        for (see RECALL_AHEAD), or None: no anticipation (a model that hears the melody
        ahead knows it already). Thread: the generator's owner, before it starts."""
        if ahead is not None and not (ahead[0] >= 1 and ahead[1] >= 1):
            raise ValueError(f"recall steps ahead must be >= 1, got {ahead}")
        self._recall_ahead = ahead
        self.recall.reset()
        self._chord_dirty = self._voice_dirty = True

    def fit_to(self, accompanist: Accompanist) -> None:
        """Anticipation and the profile for how ``accompanist`` hears the melody: recall for
        a live model, a beat-long profile for one that hears ahead (``set_recall``,
        ``set_hears_ahead``). Thread: the owner, before the accompanist plays."""
        self.set_recall(recall_steps(accompanist))
        self.set_hears_ahead(max(0, -int(accompanist.lookahead)))

    def set_hears_ahead(self, steps: int) -> None:
        """How many steps of melody beyond the step it draws the model hears (an offline
        model's ``-lookahead``; 0 live): one that hears ahead gets a profile of about a beat
        (PROFILE_DECAY_AHEAD). Thread: the generator's owner, before it starts."""
        if steps < 0:
            raise ValueError(f"steps heard ahead must be >= 0, got {steps}")
        self._decay = PROFILE_DECAY_AHEAD if steps > 0 else PROFILE_DECAY

    def set_controls(self, temperature: float, density: float, harmony_follow: float) -> None:
        lo, hi = TEMPERATURE_RANGE
        if not lo <= temperature <= hi or not math.isfinite(temperature):
            raise ValueError(f"temperature must be {lo}-{hi}, got {temperature}")
        if not 0.0 <= density <= 1.0:
            raise ValueError(f"density must be 0-1, got {density}")
        if not 0.0 <= harmony_follow <= 1.0:
            raise ValueError(f"harmony_follow must be 0-1, got {harmony_follow}")
        self._set(temperature, density, harmony_follow)

    def _set(self, temperature: float, density: float, harmony_follow: float) -> None:
        self.temperature = float(temperature)
        self.density = float(density)
        self.harmony_follow = float(harmony_follow)
        pt, ct = self._pitch_temperature, self._chord_temperature
        self._pitch_t = self.temperature * PITCH_TEMPERATURE_SHARE if pt is None else float(pt)
        ct = self.temperature * CHORD_TEMPERATURE_SHARE if ct is None else float(ct)
        self._chord_t = ct if ct > 0 else self.temperature
        self._chord_dirty = self._voice_dirty = True

    def observe_melody(self, token: int) -> None:
        """Feed the melody token the model just heard (once per step)."""
        self.profile *= self._decay
        if is_note_on(token):
            self._melody_pitch = token_pitch(token)
            self.profile[self._melody_pitch % 12] += 1.0
        elif token == HOLD and self._melody_pitch is not None:
            self.profile[self._melody_pitch % 12] += 0.25
        elif token == REST:
            self._melody_pitch = None
        if self._recall_ahead is not None:
            self.recall.observe(token)
        self._chord_dirty = self._voice_dirty = True

    def _melody_weights(self) -> np.ndarray:
        """(12,) the melody profile, a pitch class heard at least half as much as the
        most-heard one counting fully."""
        peak = float(self.profile.max())
        return np.minimum(self.profile / (0.5 * peak), 1.0) if peak > 0 else np.zeros(12, np.float32)

    def _chord_biases(self) -> None:
        """Recompute the chord bias, (MAX_VOCAB,) (once per step, before the chord draw)."""
        hf = self.harmony_follow
        ahead = self._recall_ahead
        chord_fc = self.recall.forecast(ahead[0]) if ahead is not None and hf > 0 else None
        if chord_fc is not None:  # the chord for where the melody is going, not where it was
            bias = (RECALL_CHORD_GAIN * hf) * (_CHORD_PC @ chord_fc)
        else:
            bias = (HARMONY_GAIN * hf) * (_CHORD_PC @ self._melody_weights())
        self._chord_bias = bias - KEY_GAIN * (_CHORD_TONES @ self.out_of_key)
        self._chord_dirty = False

    def _voice_biases(self) -> None:
        """Recompute the voices' pitch and strike biases, (MAX_VOCAB,) each (once per step,
        after the chord draw: the chord drawn and the model's belief feed them)."""
        hf = self.harmony_follow
        melody_w = self._melody_weights()
        ahead = self._recall_ahead
        note_fc = self.recall.forecast(ahead[1]) if ahead is not None and hf > 0 else None
        w = (1.0 - CHORD_NOTE_SHARE) * melody_w + CHORD_NOTE_SHARE * self.chord_pcs
        # which pitch (harmony, key) is biased apart from whether to strike (density): a
        # bonus on pitches must not make the band busier
        self._pitch_bias = (HARMONY_GAIN * hf) * (_NOTE_PC @ w) - KEY_GAIN * (_NOTE_PC @ self.out_of_key)
        self._note_bias = (DENSITY_GAIN * (self.density - 0.5)) * _ONSET_MASK
        if note_fc is not None:  # a forecast note is struck more readily, on its pitch
            self._note_bias = self._note_bias + (RECALL_NOTE_GAIN * hf) * (_NOTE_PC @ note_fc)
        if hf > 0 and self.belief is not None:
            self._pitch_bias = self._pitch_bias + (BELIEF_NOTE_GAIN * hf) * (_NOTE_PC @ self.belief)
            if self.chord_pcs.any():  # surer than usual of the band chord's tones: strike
                lift = SURE_ONSET_GAIN * hf * (self._sure - self._sure_mean)
                self._note_bias = self._note_bias + lift * _ONSET_MASK
        if hf > 0:
            rub = np.zeros(12, np.float32)  # pitch classes a semitone from the melody's
            if self._melody_pitch is not None:
                m = self._melody_pitch % 12
                rub[(m + 1) % 12] += 1.0
                rub[(m - 1) % 12] += 1.0
            if note_fc is not None:
                fc = np.asarray(note_fc, np.float32)
                rub += CLASH_FORECAST_SHARE * (np.roll(fc, 1) + np.roll(fc, -1))
            self._pitch_bias = self._pitch_bias - (CLASH_GAIN * hf) * (_NOTE_PC @ rub)
        self._voice_dirty = False

    def __call__(self, stream: int, logits: np.ndarray) -> int:
        """stream: index into models.tokens.STREAMS; logits: (V,) float32 with V that
        stream's vocabulary size (or longer: only the vocabulary is drawn from)."""
        logits = logits[: VOCAB_SIZES[stream]]
        if stream == CHORD and self.harmony_follow > 0:
            self._believe(logits)
        V = logits.shape[0]
        x = self._scratch[:V]
        if stream == CHORD:
            if self._chord_dirty:
                self._chord_biases()
            np.add(logits, self._chord_bias[:V], out=x)
        elif stream != MELODY:
            if self._voice_dirty:
                self._voice_biases()
            np.add(logits, self._note_bias[:V], out=x)
        else:
            np.copyto(x, logits, casting="unsafe")
        tok = self._draw(
            x,
            logits,
            pitch=stream != CHORD and stream != MELODY and self._pitch_t > 0,
            temperature=self._chord_t if stream == CHORD else self.temperature,
        )
        if stream == CHORD and tok != self._last_chord:
            self._last_chord = tok
            self.chord_pcs[:] = 0.0
            for pc in chord_pitch_classes(tok):
                self.chord_pcs[pc] = 1.0
            self._voice_dirty = True
        if stream == CHORD and self.belief is not None and self.chord_pcs.any():
            self._sure = float(self.belief[self.chord_pcs > 0].mean())
            self._sure_mean = SURE_DECAY * self._sure_mean + (1.0 - SURE_DECAY) * self._sure
            self._voice_dirty = True
        return tok

    def _believe(self, logits: np.ndarray) -> None:
        """``belief`` from the chord stream's raw logits (V,): softmax at temperature 1, each
        chord's probability spread to its tones (no-chord tokens give none)."""
        p = self._belief_p[: logits.shape[0]]
        np.copyto(p, logits, casting="unsafe")
        np.nan_to_num(p, copy=False, nan=-np.inf, posinf=-np.inf)
        m = float(p.max())
        if not math.isfinite(m):
            return  # a broken row: keep the last belief
        np.subtract(p, m, out=p)
        np.exp(p, out=p)
        p *= 1.0 / float(p.sum())
        self.belief = p @ _CHORD_TONES[: p.shape[0]]
        self._voice_dirty = True  # the voices favour what the model believes

    def _draw(self, x: np.ndarray, raw: np.ndarray, pitch: bool, temperature: float) -> int:
        """Sample from softmax(x / T) in place (x is scratch). -inf entries never win.
        pitch: x is a note stream; its onsets keep their total probability but share it
        as softmax of (x + pitch bias) at the pitch temperature."""
        m = float(x.max())
        if not math.isfinite(m):
            if math.isnan(m):
                np.nan_to_num(x, copy=False, nan=-np.inf)  # a few NaNs: ignore them
                m = float(x.max())
            if not math.isfinite(m):
                # a broken logits row (all -inf / NaN): fall back to the raw argmax
                # rather than crash the band
                r = np.nan_to_num(raw, nan=-np.inf)
                return int(np.argmax(r)) if np.isfinite(r).any() else REST
        n_pitch = x.shape[0] - NOTE_BASE
        if pitch and n_pitch > 0:
            y = self._pitch[:n_pitch]
            np.add(x[NOTE_BASE:], self._pitch_bias[NOTE_BASE : NOTE_BASE + n_pitch], out=y)
        np.subtract(x, m, out=x)
        np.multiply(x, 1.0 / temperature, out=x)
        np.exp(x, out=x)
        if pitch and n_pitch > 0:
            on = float(x[NOTE_BASE:].sum())
            my = float(y.max())
            if on > 0.0 and math.isfinite(my):
                np.subtract(y, my, out=y)
                np.multiply(y, 1.0 / self._pitch_t, out=y)
                np.exp(y, out=y)
                np.multiply(y, on / float(y.sum()), out=x[NOTE_BASE:])
        c = self._cum[: x.shape[0]]
        np.cumsum(x, out=c)
        u = self.rng.random() * c[-1]
        return int(min(int(np.searchsorted(c, u, side="right")), c.shape[0] - 1))


def make_sampler(
    temperature: float = DEFAULT_TEMPERATURE,
    seed: int = 0,
    pitch_temperature: float | None = None,
    chord_temperature: float | None = None,
) -> Sampler:
    """sampler(stream, logits) -> token; temperature 0 = argmax; fixed seed = fixed output.
    Note streams draw the pitch of an onset at ``pitch_temperature`` (default
    ``temperature * PITCH_TEMPERATURE_SHARE``; 0: no separate pitch draw) keeping the
    onset probability of ``temperature``; the chord stream is drawn at
    ``chord_temperature`` (default ``temperature * CHORD_TEMPERATURE_SHARE``; 0: at
    ``temperature``). The ``ControlledSampler`` with its controls off."""
    if temperature <= 0:
        return greedy
    return ControlledSampler.plain(temperature, seed, pitch_temperature, chord_temperature)


def greedy(stream: int, logits: np.ndarray) -> int:
    """The most likely token (NaN never wins): priming, benches, temperature 0."""
    return int(np.argmax(np.nan_to_num(logits[: VOCAB_SIZES[stream]], nan=-np.inf)))
