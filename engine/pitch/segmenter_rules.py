"""The note segmenter's rules (engine.pitch.segmenter runs them hop by hop): its
configuration, the scale snapping and level-to-velocity helpers, and the per-hop
decisions that read the segmenter's state without changing what it has announced:
the noise floor and the voicing gate, drift, glides and their targets, vibrato, and
the onset rule. The segmenter module's docstring says what each decides.
Thread: one thread at a time (the pitch worker)."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

SCALES = ("major", "minor", "chromatic")  # "chromatic": no snapping
NOTE_HOPS_KEPT = 6000  # a note keeps the pitches of its newest 60 s of voiced hops


@dataclass(frozen=True)
class SegmenterConfig:
    conf_on: float = 0.5
    conf_off: float = 0.3
    level_on_db: float = -50.0  # dBFS, absolute floor for a voiced hop
    level_off_db: float = -56.0
    floor_margin_db: float = 2.0  # above the adaptive noise floor
    floor_rise: float = 0.05  # the floor rises this share of the way to an unvoiced hop's level
    floor_rise_max_db: float = 2.0  # ... at most this much a hop
    gate_steady_hops: int = 0  # the gate also opens below conf_on when this many hops in a row
    gate_steady_conf: float = 0.5  # ... have at least this confidence (0 hops: off; PESTO: 4)
    gate_steady_cents: float = 50.0  # ... and name one pitch within this spread
    off_hops: int = 3  # unvoiced hops that end a note
    stable_hops: int = 2  # voiced hops that must agree before an onset
    stable_cents: float = 70.0  # max spread of those hops
    slope_cents: float = 8.0  # max pitch change per hop in those hops (scoops wait)
    tail_hops: int = 25  # a run starting this soon after a note ended ...
    tail_extra_hops: int = 0  # ... on that note's pitch needs this many more hops (0: off, see bench notes)
    onset_edge_cents: float = 15.0  # an onset median this near a half semitone waits ...
    onset_edge_hops: int = 3  # ... up to this many hops beyond the usual onset
    settle_cents: float = 3.0  # a still-drifting pitch (a scoop's slow tail) waits ...
    settle_max_hops: int = 0  # ... at most this many extra hops (0: off; see the bench)
    attack_rise_db: float = 8.0  # ... or from the latest 2-hop level jump this big before its first voiced hop
    backdate_hops: int = 5  # a note after a gap is dated back over at most this many hops
    backdate_conf: float = 0.3  # ... just before its run that named its pitch at this confidence
    backdate_cents: float = 50.0  # ... and within this many cents (less the tracker's delay; 0 hops: off)
    reartic_fresh: bool = True  # a re-articulation names its note from hops after the rise only
    reartic_date_hops: float = 1.0  # ... and is dated this long after the dip's quietest hop
    change_semitones: float = 0.8  # a new stable pitch this far from the note: new note
    change_named_semitones: float = 0.5  # ... or this far, when both sit within change_named_cents
    change_named_cents: float = 30.0  # ... of different semitones (a detuned singer's step; 0: off)
    change_named_hold_hops: int = 10  # ... and the newest this many hops are past halfway there
    change_hops: int = 5
    change_settle_hops: int = 3  # ... whose newest hops agree within 40 cents ...
    change_slope_cents: float = 16.0  # ... and move at most this much per hop (a glide's tail waits)
    change_bin_cents: float = 34.0  # ... or this much, going back and forth (0: off; see _settled)
    onset_bin_hops: int = 3  # an onset's hops may go back and forth so (_wobbling) when this many agree (0: off)
    onset_bin_rise_db: float = 3.0  # ... past the attack: the level rising at most this much over them
    glide_onsets: bool = True  # a still-moving onset (a scoop) is named by where it heads:
    glide_ratio_max: float = 0.6  # ... 3 hops moving one way, each step at most this share
    glide_min_step_cents: float = 4.0  # of the last (and at least this), converge (Aitken)
    glide_ratio_min: float = 0.2  # ... its second step at least this share of its first
    glide_reach_cents: float = 120.0  # on a pitch at most this far beyond the newest hop ...
    glide_guard_ratio: float = 0.75  # ... that a slower approach (this ratio) rounds to too
    fast_change: bool = True  # legato, early: the newest 2 hops this far from the note
    fast_change_away_cents: float = 50.0  # glide (as above) or have settled onto another pitch
    change_monotone4: bool = True
    change_date_share: float = 0.5  # ... dated by the first hop this share of the way there,
    change_date_lag_hops: float = 2.0  # less this lag of the measurement (sung dev clips: 1 hop dated them 15 ms late)
    dip_db: float = 5.0  # re-articulation: level dips this much ...
    rise_db: float = 8.0  # ... then rises this much (a new attack), within a voiced note
    vibrato_hops: int = 20  # a held note's pitch swinging around a steady centre over
    vibrato_span_st: float = 2.6  # ... this many hops, within this span (semitones) and with its
    vibrato_drift_st: float = 0.4  # ... two halves' means this close, is vibrato, not gliding
    vibrato_hold_hops: int = 8  # a vibrato-like excursion must hold this long to change note
    vibrato_max_st: float = 1.6  # ... unless it goes this far (no vibrato is that wide)
    vibrato_young_hops: int = 15  # a note with fewer hops than this has no vibrato yet: its swing
    vibrato_young_mirror: float = 0.6  # ... to the other side must be this share of the excursion (not 0.2)
    talk_glide_cents: float = 50.0  # pitch motion over 3 hops that counts as gliding
    talk_fraction: float = 0.35  # this share of gliding voiced hops means talking ...
    talk_stable_hops: int = 16  # ... and then an onset needs this many steady hops
    talk_min_hops: int = 15  # voiced hops seen before talking can be told
    talk_stable_cents: float = 35.0  # ... within this spread
    talk_slope_cents: float = 5.0  # ... moving at most this much per hop
    talk_jump_st: float = 11.0  # a one-hop jump this wide is no glide (a harmonic)
    talk_drift_hops: int = 9  # ... or gliding: over this many hops (three equal thirds)
    talk_drift_cents: float = 60.0  # ... it moves this far, each third at least a third of it
    talk_drift_even: float = 0.6  # ... the same way, the smallest at least this share of the largest (0 cents: off)
    talk_flat_cents: float = 15.0  # a voiced hop moving less than this over 3 hops holds its pitch ...
    talk_flat_max: float = 0.25  # ... and talking is not told while more than this share of them do (1: off)
    early_cents: float = 30.0  # a voiced hop this close (flat) to a semitone announces it
    early_confirm_hops: int = 8  # ... provisionally, until the onset rule agrees (0 cents: off)
    early_sharp_cents: float = 15.0  # ... or this close sharp of it (a scoop passes the semitone below)
    early_conf: float = 0.7  # ... with at least this confidence (the first frames may name a harmonic)
    early_rise_db: float = 4.0  # ... a level at most this above the last hop's (mid-attack: wait)
    early_move_cents: float = 40.0  # ... and not this far from the last hop's pitch (a scoop) ...
    early_move_max_cents: float = 200.0  # ... up to this far (a legato glide's tail, the window lagging)
    early_any: bool = False  # announce on any voiced hop (a leap aside), leaving the rest to the onset rule
    hint_lag_hops: float = 1.5  # a note named by the onset net (see hint) is dated this long before it is named
    hint_sounding_hops: float = 15.0  # ... or from where the net first heard a note sounding, up to this long before
    hint_level_date: bool = True  # ... or by its level rise, when it had one (as the rules date a note)
    hint_min_hops: int = 2  # ... and ends a sounding note only this long after that one began
    hint_floor_db: float = 0.0  # ... nearer the noise floor than this (dB; 0: never) ...
    hint_noisy_prob: float = 1.0  # ... only at this probability (the net's guesses in noise)
    leap_st: float = 10.0  # a new note this far (semitones) from the last one, ended at most
    leap_window_hops: int = 100  # ... this long ago, is announced neither early nor by a glide,
    leap_extra_hops: int = 2  # ... and the onset rule wants this many more stable hops (0 st: off)
    octave_fold_hops: int = 8  # a hop an octave from the note is folded back onto it for this many hops
    octave_release: bool = True  # ... after which (it persists) it no longer is, until it returns
    short_hops: int = 4  # ... or, when it ends or times out unconfirmed, this many of
    short_cents: float = 50.0  # ... its hops (and most) lie this near its pitch (0 hops: off)
    min_note_ms: float = 60.0
    hop_ms: float = 10.0
    min_midi: float = 28.0  # E1
    max_midi: float = 96.0  # C7
    pitch_delay_hops: float = 0.0  # how late the tracker's frames are (its window centre)
    key: int | None = None  # tonic pitch class 0-11 for snapping, None: no snap
    scale: str = "major"

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf_off <= self.conf_on <= 1.0:
            raise ValueError("need 0 <= conf_off <= conf_on <= 1")
        if self.level_off_db > self.level_on_db:
            raise ValueError("level_off_db must not exceed level_on_db")
        if self.off_hops < 1 or self.stable_hops < 1 or self.change_hops < 2:
            raise ValueError("hop counts must be positive (change_hops >= 2)")
        if self.key is not None and not 0 <= self.key < 12:
            raise ValueError("key must be a pitch class 0-11")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}")
        if self.min_note_ms < 0:
            raise ValueError("min_note_ms must be >= 0")


# Confidence scales differ: PESTO's voicing head saturates near 1, CREPE's peak
# activation sits around 0.6-0.95 on a voice and 0.1-0.4 on noise. PESTO's note holds
# down to 0.35: in noise a sung note's confidence (PESTO's or the periodicity's) dips to
# 0.35-0.45 for a few hops, which ended it and restarted it as a false note (sung clips
# at 5 dB; 0.45 before); and 4 steady hops at 0.5 open its gate (``_steady_below_gate``)
TRACKER_DEFAULTS = {
    "pesto": SegmenterConfig(conf_on=0.65, conf_off=0.35, gate_steady_hops=4),
    "crepe": SegmenterConfig(conf_on=0.55, conf_off=0.4),
}


@dataclass
class NoteRecord:
    """A finished or open note; ``pitches`` are its voiced hop pitches (MIDI float), the
    newest NOTE_HOPS_KEPT of them."""

    pitch: int
    on_hop: float
    velocity: int
    announced_hop: int
    off_hop: float | None = None
    pitches: list[float] = field(default_factory=list)
    provisional: bool = False  # announced early, not yet confirmed by the onset rule
    hinted: bool = False  # announced on the onset net's word (NoteSegmenter.hint)
    _sorted: list[float] = field(default_factory=list, repr=False)

    def add(self, p: float) -> None:
        self.pitches.append(p)
        insort(self._sorted, p)
        if len(self.pitches) > NOTE_HOPS_KEPT:
            # a drone held for an hour must not grow without end: its newest minute will do
            del self._sorted[bisect_left(self._sorted, self.pitches.pop(0))]

    def set_pitches(self, ps) -> None:
        self.pitches[:] = ps
        self._sorted[:] = sorted(self.pitches)

    @property
    def median_pitch(self) -> float:
        """The median of ``pitches`` (kept sorted: one hop costs no full sort)."""
        s = self._sorted
        n = len(s)
        if n == 0:
            return float(self.pitch)
        return float(s[n // 2]) if n % 2 else float((s[n // 2 - 1] + s[n // 2]) / 2)


@lru_cache(maxsize=64)
def scale_set(key: int | None, scale: str) -> frozenset[int] | None:
    """The pitch classes notes snap to (None: no snapping). Major/minor are the session's
    own sets (``engine.keyfind.key_pitch_classes``: minor includes the raised seventh)."""
    if key is None or scale == "chromatic":
        return None
    from engine.keyfind import key_pitch_classes

    return key_pitch_classes(key, scale)


def snap(p: float, key: int | None, scale: str) -> int:
    """Round a MIDI float pitch, to the nearest scale tone if a key is given.

    The session's ``engine.keyfind.snap_to_scale`` does the snapping; it sees only the
    rounded pitch and sends a tie (an out-of-scale pitch between two scale tones) up.
    Here the hummed pitch is still a float, so such a tie goes to the side the voice is
    on (60.6 in C major is C, not D); an integer pitch snaps exactly as the session's."""
    q = int(round(p))
    allowed = scale_set(key, scale)
    if allowed is None or q % 12 in allowed:
        return q
    from engine.keyfind import snap_to_scale

    if (q - 1) % 12 in allowed and (q + 1) % 12 in allowed and p < q:
        return q - 1
    return snap_to_scale(q, allowed)


def level_to_velocity(db: float) -> int:
    return int(np.clip(round(20 + (db + 50.0) * (107.0 / 44.0)), 1, 127))


class SegmenterRules:
    """NoteSegmenter's per-hop decisions (mixed into engine.pitch.segmenter.NoteSegmenter,
    whose state they read)."""

    # the segmenter's state these rules read (NoteSegmenter.reset sets it; declared here
    # so each rule's use of it is type-checked)
    cfg: SegmenterConfig
    hop: int  # the current hop's index
    voiced: bool
    talking: bool  # recent voiced hops glide like speech, not singing
    notes: list[NoteRecord]
    _run: deque[tuple[int, float, float]]  # (hop, pitch, level dB) of the current voiced run
    _recent: deque[tuple[int, float, float, float]]  # (hop, pitch, confidence, level dB), newest last
    _voiced_pitches: deque[float]
    _floor_db: float  # the adaptive noise floor
    _prev_level_db: float
    _prev_pitch: float
    _prev_conf: float

    def _update_floor(self, level_db: float) -> None:
        # a rising (time constant ~0.2 s), faster-falling follower of the unvoiced
        # level: it settles on steady background noise, never on the voice itself
        if level_db < self._floor_db:
            self._floor_db = 0.7 * self._floor_db + 0.3 * level_db
        else:
            self._floor_db += min(self.cfg.floor_rise * (level_db - self._floor_db), self.cfg.floor_rise_max_db)

    def _gate(self, conf: float, level_db: float, pitch: float) -> bool:
        c = self.cfg
        in_range = c.min_midi <= pitch <= c.max_midi
        floor_ok = level_db >= self._floor_db + c.floor_margin_db
        if self.voiced:
            return in_range and (conf >= c.conf_off and level_db >= c.level_off_db and floor_ok)
        if not (in_range and level_db >= c.level_on_db and floor_ok):
            return False
        return conf >= c.conf_on or self._steady_below_gate()

    def _steady_below_gate(self) -> bool:
        """The newest gate_steady_hops hops (this one included) all have a confidence of
        at least gate_steady_conf and name one pitch within gate_steady_cents: a quiet
        note in noise (sung clips at 5 dB: its confidence sits at 0.5-0.65 for most of
        it, under conf_on, and nearly every missed note there never opened the gate);
        noise names no steady pitch."""
        c = self.cfg
        k = c.gate_steady_hops
        if k <= 0 or len(self._recent) < k:
            return False
        rec = list(self._recent)[-k:]
        if min(x[2] for x in rec) < c.gate_steady_conf:
            return False
        ps = [x[1] for x in rec]
        return (max(ps) - min(ps)) * 100 <= c.gate_steady_cents

    def _drifting(self, need: int) -> bool:
        """True while the pitch still moves steadily one way (a scoop settling onto its
        note, whose tail is slow but can still be half a semitone off), for at most
        settle_max_hops hops beyond the usual onset."""
        c = self.cfg
        run = list(self._run)
        # voiced hops in the current run (the run is cleared when the voice stops)
        if len(run) < 3 or len(run) >= need + c.settle_max_hops:
            return False
        (_, a, _), (_, b, _), (_, e, _) = run[-3:]
        d1, d2 = (b - a) * 100, (e - b) * 100
        return (d1 > c.settle_cents and d2 > c.settle_cents) or (d1 < -c.settle_cents and d2 < -c.settle_cents)

    def _glide(self, floor_hop: float = -1, monotone4: bool = False) -> tuple[bool, float]:
        """-> (ok, target): the newest 3 voiced hops (all after ``floor_hop``) approach a
        pitch monotonically with shrinking steps, as a scoop or a legato glide does
        (roughly exponentially); the target is where that approach converges (Aitken's
        extrapolation of the three points), at most glide_reach_cents beyond the newest;
        the second step at least glide_ratio_min of the first."""
        c = self.cfg
        k = 4 if monotone4 else 3
        if len(self._run) < k:
            return False, 0.0
        (h1, p1, _), (_, p2, _), (_, p3, _) = list(self._run)[-3:]
        if h1 <= floor_hop:
            return False, 0.0
        d1, d2 = p2 - p1, p3 - p2
        if d1 * d2 <= 0 or abs(d2) * 100 < c.glide_min_step_cents:
            return False, 0.0
        if monotone4 and (p1 - self._run[-4][1]) * d1 <= 0:
            return False, 0.0
        r = d2 / d1
        if r > c.glide_ratio_max:
            return False, 0.0
        if r < c.glide_ratio_min:
            # a big step then an almost-stop is the measurement window leaving the old
            # note, not a glide converging (a slow 3-semitone legato glide measured 124
            # then 20 cents: named a semitone short); after a gap, the jump from the
            # consonant's hop onto the vowel (43 -> 67.4 -> 67.6, a "la" attack still
            # settling from sharp: named 68, not 67)
            return False, 0.0
        reach = d2 * r / (1.0 - r)
        if abs(reach) * 100 > c.glide_reach_cents:
            return False, 0.0
        return True, float(p3 + reach)

    def _lands_alike(self, target: float) -> bool:
        """Would a slower approach (each step glide_guard_ratio of the last, continuing
        from the newest 2 hops) round to the same pitch as ``target``? Early in a glide
        the measured steps shrink before the glide itself does (the measurement window
        still holds the attack or the old note), and extrapolating them falls short."""
        c = self.cfg
        (_, p2, _), (_, p3, _) = self._run[-2], self._run[-1]
        r = c.glide_guard_ratio
        return snap(p3 + (p3 - p2) * r / (1.0 - r), c.key, c.scale) == snap(target, c.key, c.scale)

    def _held_centre(self) -> bool:
        """The newest voiced hops swing around one steady pitch (a held, vibrato note):
        the last vibrato_hops (about a vibrato cycle) stay within vibrato_span_st, and
        their mean agrees with the mean of the same span half of it earlier."""
        c = self.cfg
        vp = self._voiced_pitches
        k, h = c.vibrato_hops, c.vibrato_hops // 2
        if len(vp) < k + h:
            return False
        ps = list(vp)[-(k + h) :]
        now, before = ps[h:], ps[:k]
        return (max(now) - min(now)) <= c.vibrato_span_st and abs(sum(now) / k - sum(before) / k) <= c.vibrato_drift_st

    def _drifts_evenly(self) -> bool:
        """The newest voiced hops glide on at a steady rate (a syllable's slow glide,
        under talk_glide_cents over 3 hops): over talk_drift_hops, split in three equal
        thirds, each third moves the same way, at least a third of talk_drift_cents, and
        the smallest at least talk_drift_even of the largest. A sung change steps (its
        glide fills one third) and scoops slow down; vibrato's thirds differ 2 to 1."""
        c = self.cfg
        m = c.talk_drift_hops // 3
        vp = self._voiced_pitches
        if c.talk_drift_cents <= 0 or m < 1 or len(vp) <= 3 * m:
            return False
        d = [vp[-1 - i * m] - vp[-1 - (i + 1) * m] for i in range(3)]
        if not (all(x > 0 for x in d) or all(x < 0 for x in d)):
            return False
        a = [abs(x) for x in d]
        if min(a) * 300 < c.talk_drift_cents or min(a) < c.talk_drift_even * max(a):
            return False
        return max(abs(vp[-i] - vp[-i - 1]) for i in range(1, 3 * m + 1)) < c.talk_jump_st

    def _far(self, n: NoteRecord, ref: float, target: float) -> bool:
        """Is ``target`` far enough from note ``n`` (its running median ``ref``) to be a
        new note? change_semitones away; or change_named_semitones when both lie within
        change_named_cents of different semitones: a singer 20-30 cents flat on one note
        and not on the next makes a semitone step read 0.6 (the note's median then
        drifts onto the new pitch and the note is lost)."""
        c = self.cfg
        d = abs(target - ref)
        if d >= c.change_semitones:
            return True
        if c.change_named_cents <= 0 or d < c.change_named_semitones:
            return False
        q = snap(target, c.key, c.scale)
        off_q, off_note = abs(target - q) * 100, abs(ref - n.pitch) * 100
        if q == n.pitch or max(off_q, off_note) > c.change_named_cents:
            return False
        # held there (a wide vibrato's first trough reads as such a step for 5-6 hops)
        k = c.change_named_hold_hops
        run = list(self._run)[-k:]
        half = 0.5 * (target - ref)
        return len(run) == k and run[0][0] > n.on_hop and all((p - ref) * half >= half * half for _, p, _ in run)

    def _vibrato_swing(self, n: NoteRecord, ref: float, d: float) -> bool:
        """An excursion ``d`` (semitones) from the note's pitch ``ref`` that mirrors a
        recent swing to the other side (vibrato) and has not yet held vibrato_hold_hops
        hops on this side: a new note must wait."""
        c = self.cfg
        recent = n.pitches[-2 * c.vibrato_hold_hops :]
        if not recent or abs(d) >= c.vibrato_max_st:
            return False
        other = min(p - ref for p in recent) if d > 0 else -max(p - ref for p in recent)
        # a young note (its first 150 ms) has no vibrato yet: the "swing" on the other
        # side is its own entry still settling (a legato glide's tail), so only a swing
        # nearly as wide as the excursion makes it look like vibrato
        mirror = c.vibrato_young_mirror if len(n.pitches) < c.vibrato_young_hops else 0.2
        if other > -mirror * abs(d):
            return False
        held = 0
        for p in reversed(recent):
            if (p - ref) * d >= 0.5 * d * d:
                held += 1
            else:
                break
        return held < c.vibrato_hold_hops

    def _early_ok(self, p1: float, conf: float, level_db: float) -> bool:
        """May this hop (pitch ``p1``) announce a note early? The band hears an early note
        at once, so a wrong one is a wrong note even when it is taken back; on the sung
        dev clips a first voiced hop named the wrong note 1 time in 4 (a semitone low in
        a scoop, an octave or a twelfth in the attack). So: within early_cents flat or
        early_sharp_cents sharp of a semitone (a scoop passes just sharp of the semitone
        below), confidence >= early_conf, the level (a 20 ms window) risen at most
        early_rise_db since the last hop (mid-attack the pitch is unreliable), and not
        early_move_cents..early_move_max_cents from the last hop's pitch where that hop
        had a pitch (a scoop, or the tracker's first frames still moving; 150-200 cents: a
        legato glide re-articulated by a level dip, its first hop after the dip still on
        the way), and no leap (``_leap``)."""
        c = self.cfg
        if c.early_any:
            # eager: the note goes out on its first voiced hop and the onset rule corrects
            # it (a take-back the band never hears when it comes before the band commits
            # the note's step: engine.quantiser); only a leap waits for the fundamental
            return not self._leap(p1)
        d1 = (p1 - snap(p1, c.key, c.scale)) * 100
        if not -c.early_cents <= d1 <= min(c.early_cents, c.early_sharp_cents):
            return False
        if conf < c.early_conf or level_db - self._prev_level_db > c.early_rise_db:
            return False
        if self._leap(p1):
            return False  # maybe the attack's harmonic (see _leap)
        move = abs(p1 - self._prev_pitch) * 100
        return not (self._prev_conf >= 0.3 and c.early_move_cents <= move <= c.early_move_max_cents)

    def _leap(self, p: float) -> bool:
        """Would pitch ``p`` be a leap of leap_st or more from the last note, which ended at
        most leap_window_hops ago? On the sung dev clips 15 of the 25 wrong notes were named
        7-19 semitones off (13 an octave or a twelfth above: the tracker on a harmonic of
        the attack, in noise or through a laptop microphone), mostly a step or two from
        the note before; the corpus's melodies leap 10 semitones or more 5 times in 546.
        Such a note waits for leap_extra_hops more hops that agree, by which time the
        tracker has mostly found the fundamental (dev: 10 of those 15 then right)."""
        c = self.cfg
        if c.leap_st <= 0 or not self.notes:
            return False
        last = self.notes[-1]
        end = last.off_hop if last.off_hop is not None else self.hop
        return self.hop - end <= c.leap_window_hops and abs(snap(p, c.key, c.scale) - last.pitch) >= c.leap_st

    def _stable(self, k: int, spread: float, slope: float) -> tuple[bool, float]:
        if len(self._run) < k:
            return False, 0.0
        # plain Python: a handful of floats, where numpy's per-call cost would dominate
        run = self._run
        ps = [run[i][1] for i in range(len(run) - k, len(run))]
        ok = (max(ps) - min(ps)) * 100 <= spread and (
            k < 2 or max(abs(b - a) for a, b in zip(ps, ps[1:])) * 100 <= slope
        )
        ps.sort()
        med = ps[k // 2] if k % 2 else (ps[k // 2 - 1] + ps[k // 2]) / 2
        return bool(ok), float(med)

    def _settled(self, k: int) -> tuple[bool, float]:
        """-> (ok, median): the newest ``k`` voiced hops agree within 40 cents and move at
        most change_slope_cents a hop, or at most change_bin_cents a hop back and forth:
        on hops voiced by the periodicity (the tracker itself unsure), PESTO's pitch sits
        on one of its 1/3-semitone bins 39 % of the time (sung dev clips), so a steady
        voice can step 33 cents hop to hop; a glide's slow tail moves one way."""
        c = self.cfg
        ok, med = self._stable(k, 40.0, c.change_slope_cents)
        if ok:
            return ok, med
        return self._wobbling(k)

    def _wobbling(self, k: int) -> tuple[bool, float]:
        """-> (ok, median): the newest ``k`` (>= 3) voiced hops agree within 40 cents,
        step at most change_bin_cents a hop, and turn back at least once (PESTO's
        1/3-semitone bins on a steady voice; a scoop or a glide's tail moves one way)."""
        c = self.cfg
        if c.change_bin_cents <= 0 or k < 3:
            return False, 0.0
        ok, med = self._stable(k, 40.0, c.change_bin_cents)
        if ok:
            run = self._run
            steps = [run[i][1] - run[i - 1][1] for i in range(len(run) - k + 1, len(run))]
            ok = any(a * b < 0 for a, b in zip(steps, steps[1:]))
        return ok, med

    def _onset(self) -> tuple[bool, float, int, bool]:
        """The onset rule on the current voiced run -> (ok, pitch, hops it spans, glided)."""
        c = self.cfg
        # speech glides from syllable to syllable; a hum holds its pitch. When
        # the recent voice looks like talking, a note must be held longer.
        need = c.talk_stable_hops if self.talking else c.stable_hops
        spread, slope = (c.talk_stable_cents, c.talk_slope_cents) if self.talking else (c.stable_cents, c.slope_cents)
        ok, med = self._stable(need, spread, slope)
        last = self.notes[-1] if self.notes else None
        if (
            ok
            and last is not None
            and last.off_hop is not None
            and self.hop - last.off_hop < c.tail_hops
            and snap(med, c.key, c.scale) == last.pitch
        ):
            # the previous note's pitch right after it ended: maybe its room
            # reverb still ringing over the new note's attack; look longer
            need += c.tail_extra_hops
            ok, med = self._stable(need, spread, slope)
        if ok and self._drifting(need):
            ok = False
        if (
            ok
            and c.onset_edge_cents > 0
            and len(self._run) < need + c.onset_edge_hops
            and abs(abs(med - round(med)) - 0.5) * 100 < c.onset_edge_cents
        ):
            ok = False
        if ok and need < c.stable_hops + c.leap_extra_hops and self._leap(med):
            # a leap of an octave or so: more often the attack's harmonic than the voice
            need = c.stable_hops + c.leap_extra_hops
            ok, med = self._stable(need, spread, slope)
        if not ok and c.onset_bin_hops > 0 and not self.talking:
            # a steady voice the tracker reads 15-30 cents apart hop to hop, back and forth
            # (its bins), fails the slope limit however long it holds: a short note
            # re-articulated out of a legato line was never named
            k = max(need, c.onset_bin_hops)
            ok, med = self._wobbling(k)
            if ok and k < c.stable_hops + c.leap_extra_hops and self._leap(med):
                k = c.stable_hops + c.leap_extra_hops
                ok, med = self._wobbling(k)
            if ok:
                # ... past the attack (its first hops read sharp while the level rises)
                lv = [x[2] for x in list(self._run)[-k:]]
                ok = max(lv[1:]) - lv[0] <= c.onset_bin_rise_db
                need = k
        glided = False
        if not ok and c.glide_onsets and not self.talking:
            # still moving (a scoop): name it by where it is heading
            glided, med = self._glide()
            if glided and (not self._lands_alike(med) or self._leap(med)):
                glided = False
            if glided:
                ok, need = True, 3
        return ok, med, need, glided
