"""Turn per-hop (f0, confidence, level) into melody notes, causally, one hop at a time.

Decisions, in the order they are taken each hop:
1. Gate: a hop is *voiced* when the tracker's confidence and the level are both above
   their "on" thresholds; once voiced it stays voiced until both fall below "off"
   thresholds (hysteresis) for ``off_hops`` hops in a row, so a crackle or a short
   confidence dip does not end a note. The level must also clear an adaptive noise
   floor, so steady background noise never opens the gate.
2. Onset: after an unvoiced stretch, the first ``stable_hops`` voiced hops whose pitch
   spread and slope are small start a note. A scoop need not be waited out until it
   flattens (``glide_onsets``): when the newest 3 hops approach a pitch with shrinking
   steps (each at most ``glide_ratio_max`` of the last), the note is named where that
   approach converges (Aitken's extrapolation), provided a slower approach (ratio
   ``glide_guard_ratio``) would round to the same pitch: early on, the measured steps
   shrink before the scoop itself does (the 20 ms window still holds the attack).
   Before that rule agrees, one voiced hop within ``early_cents`` of a semitone
   announces the note *provisionally*; the onset rule then confirms it, or replaces it
   with its own pitch from the same onset, or (no verdict in ``early_confirm_hops``, or
   the voice stops) withdraws it. A replaced or withdrawn note ends where it began.
   Inside a note, a new stable pitch ``change_semitones`` away from the note's running
   median starts a new note (legato); earlier (``fast_change``), once the newest 2 hops
   are ``fast_change_away_cents`` to one side of the note and either glide towards, or
   have settled on, another pitch by the same rules. Vibrato swings back before it
   gets there. A level dip of ``dip_db`` followed by a rise
   of ``rise_db`` re-articulates (a repeated note). A re-articulated note is named by
   the onset rule from the hops after the rise (``reartic_fresh``): in a room, the hops
   before it still hear the last note ringing on, which named 2/3 of the wrong notes in
   the bench's reverberant clips.
   Talking is told from humming by how much the voiced pitch glides (motion over 3
   hops above ``talk_glide_cents`` in more than ``talk_fraction`` of recent voiced
   hops, once ``talk_min_hops`` voiced hops are in); while it looks like talking an onset
   needs ``talk_stable_hops`` hops within ``talk_stable_cents`` (``talk_slope_cents`` a hop),
   so speech does not become a stream of notes.
3. Pitch: the note is announced with the median of its first stable hops (or the glide's
   target) and keeps a
   running median (vibrato, scoops and drift average out); a hop an octave away from
   the note's pitch is folded back unless the jump persists (octave-error protection).
   Optional snapping to a key/scale happens on the announced pitch.
4. Length: a note-off is never sent less than ``min_note_ms`` after its note-on.

Everything is in hops of the tracker (10 ms); times are hop indices converted by the
caller. Thread: one thread at a time (the pitch worker).
"""
from __future__ import annotations

from bisect import insort
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

SCALES = ("major", "minor", "chromatic")    # "chromatic": no snapping


@dataclass(frozen=True)
class SegmenterConfig:
    conf_on: float = 0.5
    conf_off: float = 0.3
    level_on_db: float = -50.0      # dBFS, absolute floor for a voiced hop
    level_off_db: float = -56.0
    floor_margin_db: float = 2.0    # above the adaptive noise floor
    floor_rise: float = 0.05        # the floor rises this share of the way to an unvoiced hop's level
    floor_rise_max_db: float = 2.0  # ... at most this much a hop
    off_hops: int = 3               # unvoiced hops that end a note
    stable_hops: int = 2            # voiced hops that must agree before an onset
    stable_cents: float = 70.0      # max spread of those hops
    slope_cents: float = 8.0        # max pitch change per hop in those hops (scoops wait)
    tail_hops: int = 25             # a run starting this soon after a note ended ...
    tail_extra_hops: int = 0        # ... on that note's pitch needs this many more hops (0: off, see bench notes)
    settle_cents: float = 3.0       # a still-drifting pitch (a scoop's slow tail) waits ...
    settle_max_hops: int = 0        # ... at most this many extra hops (0: off; see the bench)
    reartic_fresh: bool = True      # a re-articulation names its note from hops after the rise only
    change_semitones: float = 0.8   # a new stable pitch this far from the note: new note
    change_hops: int = 5
    change_settle_hops: int = 3     # ... whose newest hops agree within 40 cents ...
    change_slope_cents: float = 16.0  # ... and move at most this much per hop (a glide's tail waits)
    glide_onsets: bool = True       # a still-moving onset (a scoop) is named by where it heads:
    glide_ratio_max: float = 0.6    # ... 3 hops moving one way, each step at most this share
    glide_min_step_cents: float = 4.0   # of the last (and at least this), converge (Aitken)
    glide_reach_cents: float = 120.0    # on a pitch at most this far beyond the newest hop ...
    glide_guard_ratio: float = 0.75     # ... that a slower approach (this ratio) rounds to too
    fast_change: bool = True        # legato, early: the newest 2 hops this far from the note
    fast_change_away_cents: float = 50.0  # glide (as above) or have settled onto another pitch
    change_monotone4: bool = True
    change_date_share: float = 0.5  # ... dated by the first hop this share of the way there,
    change_date_lag_hops: float = 1.0   # less this lag of the measurement
    dip_db: float = 8.0             # re-articulation: level dips this much ...
    rise_db: float = 5.0            # ... then rises this much, within a voiced note
    vibrato_hops: int = 20          # a held note's pitch swinging around a steady centre over
    vibrato_span_st: float = 2.6    # ... this many hops, within this span (semitones) and with its
    vibrato_drift_st: float = 0.4   # ... two halves' means this close, is vibrato, not gliding
    vibrato_hold_hops: int = 10     # a vibrato-like excursion must hold this long to change note
    vibrato_max_st: float = 1.6     # ... unless it goes this far (no vibrato is that wide)
    talk_glide_cents: float = 50.0  # pitch motion over 3 hops that counts as gliding
    talk_fraction: float = 0.35     # this share of gliding voiced hops means talking ...
    talk_stable_hops: int = 16      # ... and then an onset needs this many steady hops
    talk_min_hops: int = 15         # voiced hops seen before talking can be told
    talk_stable_cents: float = 35.0  # ... within this spread
    talk_slope_cents: float = 5.0    # ... moving at most this much per hop
    talk_jump_st: float = 11.0       # a one-hop jump this wide is no glide (a harmonic)
    early_cents: float = 30.0       # a first voiced hop this close to a semitone announces it
    early_confirm_hops: int = 8     # ... provisionally, until the onset rule agrees (0 cents: off)
    min_note_ms: float = 60.0
    hop_ms: float = 10.0
    min_midi: float = 28.0          # E1
    max_midi: float = 96.0          # C7
    pitch_delay_hops: float = 0.0   # how late the tracker's frames are (its window centre)
    key: int | None = None          # tonic pitch class 0-11 for snapping, None: no snap
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
# activation sits around 0.6-0.95 on a voice and 0.1-0.4 on noise.
TRACKER_DEFAULTS = {
    "pesto": SegmenterConfig(conf_on=0.65, conf_off=0.45),
    "crepe": SegmenterConfig(conf_on=0.55, conf_off=0.4),
}


@dataclass
class NoteRecord:
    """A finished or open note; ``pitches`` are all its voiced hop pitches (MIDI float)."""
    pitch: int
    on_hop: float
    velocity: int
    announced_hop: int
    off_hop: float | None = None
    pitches: list[float] = field(default_factory=list)
    provisional: bool = False       # announced early, not yet confirmed by the onset rule
    _sorted: list[float] = field(default_factory=list, repr=False)

    def add(self, p: float) -> None:
        self.pitches.append(p)
        insort(self._sorted, p)

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


class NoteSegmenter:
    """Feed one hop at a time with ``step``; it returns the note events that hop caused.

    Events are (kind, pitch, hop, velocity) with kind "on" or "off"; ``hop`` is the hop
    index the note starts/ends at (an onset is dated to the first hop of its stable run,
    which is earlier than the hop that announces it).
    """

    def __init__(self, config: SegmenterConfig | None = None, keep_history: bool = True) -> None:
        """keep_history: keep every note and the per-hop voicing (files, benches); a live
        session keeps only the last few notes, so memory stays flat however long it runs."""
        self.cfg = config or SegmenterConfig()
        self.keep_history = keep_history
        self.reset()

    def reset(self) -> None:
        c = self.cfg
        self.hop = -1
        self.voiced = False
        self._unvoiced_run = 0
        self._run: deque[tuple[int, float, float]] = deque(maxlen=max(c.stable_hops, c.change_hops) + 8)
        self.note: NoteRecord | None = None
        self.notes: list[NoteRecord] = []
        self._pending_off: int | None = None
        self._floor_db = -90.0
        self._peak_db = -120.0
        self._dip_min_db: float | None = None
        self._octave_run = 0
        self._last_low_hop = -1
        self._last_t = -1e9
        self._glides: deque[bool] = deque(maxlen=80)
        self._voiced_pitches: deque[float] = deque(maxlen=max(4, c.vibrato_hops + c.vibrato_hops // 2))
        self.talking = False
        self._dip_min_hop = 0
        self._reartic_hop: int | None = None
        self.voiced_hops: list[bool] = []

    # -- helpers ---------------------------------------------------------------------
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
        return in_range and conf >= c.conf_on and level_db >= c.level_on_db and floor_ok

    def _start(self, pitch_est: float, on_hop: int, level_db: float, out: list) -> None:
        c = self.cfg
        p = snap(pitch_est, c.key, c.scale)
        self.note = NoteRecord(p, on_hop, level_to_velocity(level_db), self.hop)
        self.note.set_pitches([x for _, x, _ in list(self._run)[-c.stable_hops:]])
        self.notes.append(self.note)
        self._peak_db = level_db
        self._dip_min_db = None
        self._octave_run = 0
        out.append(("on", p, on_hop, self.note.velocity))

    def _end(self, off_hop: int, out: list) -> None:
        n = self.note
        if n is None:
            return
        min_hops = int(np.ceil(self.cfg.min_note_ms / self.cfg.hop_ms))
        n.off_hop = max(off_hop, n.on_hop + min_hops)
        if n.off_hop > self.hop:
            # too short: hold the note-off back until the minimum length has passed
            self._pending_off = n.off_hop
        else:
            out.append(("off", n.pitch, n.off_hop, 0))
        self.note = None

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
        extrapolation of the three points), at most glide_reach_cents beyond the newest."""
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
        ps = list(vp)[-(k + h):]
        now, before = ps[h:], ps[:k]
        return (max(now) - min(now)) <= c.vibrato_span_st and \
            abs(sum(now) / k - sum(before) / k) <= c.vibrato_drift_st

    def _vibrato_swing(self, n: NoteRecord, ref: float, d: float) -> bool:
        """An excursion ``d`` (semitones) from the note's pitch ``ref`` that mirrors a
        recent swing to the other side (vibrato) and has not yet held vibrato_hold_hops
        hops on this side: a new note must wait."""
        c = self.cfg
        recent = n.pitches[-2 * c.vibrato_hold_hops:]
        if not recent or abs(d) >= c.vibrato_max_st:
            return False
        other = min(p - ref for p in recent) if d > 0 else -max(p - ref for p in recent)
        if other > -0.2 * abs(d):
            return False
        held = 0
        for p in reversed(recent):
            if (p - ref) * d >= 0.5 * d * d:
                held += 1
            else:
                break
        return held < c.vibrato_hold_hops

    def _stable(self, k: int, spread: float, slope: float) -> tuple[bool, float]:
        if len(self._run) < k:
            return False, 0.0
        # plain Python: a handful of floats, where numpy's per-call cost would dominate
        run = self._run
        ps = [run[i][1] for i in range(len(run) - k, len(run))]
        ok = (max(ps) - min(ps)) * 100 <= spread and \
            (k < 2 or max(abs(b - a) for a, b in zip(ps, ps[1:])) * 100 <= slope)
        ps.sort()
        med = ps[k // 2] if k % 2 else (ps[k // 2 - 1] + ps[k // 2]) / 2
        return bool(ok), float(med)

    def _onset(self) -> tuple[bool, float, int, bool]:
        """The onset rule on the current voiced run -> (ok, pitch, hops it spans, glided)."""
        c = self.cfg
        # speech glides from syllable to syllable; a hum holds its pitch. When
        # the recent voice looks like talking, a note must be held longer.
        need = c.talk_stable_hops if self.talking else c.stable_hops
        spread, slope = (c.talk_stable_cents, c.talk_slope_cents) if self.talking else \
            (c.stable_cents, c.slope_cents)
        ok, med = self._stable(need, spread, slope)
        last = self.notes[-1] if self.notes else None
        if ok and last is not None and last.off_hop is not None and \
                self.hop - last.off_hop < c.tail_hops and snap(med, c.key, c.scale) == last.pitch:
            # the previous note's pitch right after it ended: maybe its room
            # reverb still ringing over the new note's attack; look longer
            need += c.tail_extra_hops
            ok, med = self._stable(need, spread, slope)
        if ok and self._drifting(need):
            ok = False
        glided = False
        if not ok and c.glide_onsets and not self.talking:
            # still moving (a scoop): name it by where it is heading
            glided, med = self._glide()
            if glided and not self._lands_alike(med):
                glided = False
            if glided:
                ok, need = True, 3
        return ok, med, need, glided

    # -- the per-hop step ----------------------------------------------------------------
    def step(self, f0_hz: float, conf: float, level_db: float) -> list[tuple[str, int, float, int]]:
        """One 10 ms hop. Returns the events this hop produced (possibly none)."""
        c = self.cfg
        self.hop += 1
        out: list[tuple[str, int, int, int]] = []
        if self._pending_off is not None and self.hop >= self._pending_off:
            last = self.notes[-1] if self.note is None else self.notes[-2]
            out.append(("off", last.pitch, self._pending_off, 0))
            self._pending_off = None
        if not np.isfinite(f0_hz) or f0_hz <= 0 or not np.isfinite(conf) or not np.isfinite(level_db):
            f0_hz, conf, level_db = 1.0, 0.0, -120.0
        pitch = 69.0 + 12.0 * np.log2(f0_hz / 440.0)
        voiced_now = self._gate(conf, level_db, pitch)
        if not voiced_now:
            self._update_floor(level_db)
        if level_db < max(c.level_off_db, self._floor_db + c.floor_margin_db):
            self._last_low_hop = self.hop

        if voiced_now:
            self._unvoiced_run = 0
            self.voiced = True
            n = self.note
            if n is not None and not n.provisional:     # an early note's own octave may be wrong
                ref = n.median_pitch
                d = pitch - ref
                if abs(abs(d) - 12.0) < 0.8 and self._octave_run < 8:
                    # an octave error for a few hops: fold it back onto the note
                    self._octave_run += 1
                    pitch -= 12.0 * np.sign(d)
                else:
                    self._octave_run = 0
            self._run.append((self.hop, pitch, level_db))
            self._voiced_pitches.append(pitch)
            vp = self._voiced_pitches
            if len(vp) >= 4:
                # pitch motion over 3 hops: speech glides through it, while noise jitter
                # (hop to hop) stays under talk_glide_cents; a singer's wide vibrato moves
                # as fast but around a steady centre, so it does not count
                # a jump of talk_jump_st or more in one hop is the tracker leaping to a
                # harmonic (a room's reverb mixes two notes), not a voice gliding
                jump = max(abs(vp[-1] - vp[-2]), abs(vp[-2] - vp[-3]), abs(vp[-3] - vp[-4])) >= c.talk_jump_st
                self._glides.append(abs(vp[-1] - vp[-4]) * 100 > c.talk_glide_cents and not jump and
                                    not self._held_centre())
                if len(self._glides) >= c.talk_min_hops:
                    share = sum(self._glides) / len(self._glides)
                    # hysteresis: talking starts above talk_fraction, ends below half of it
                    self.talking = share > (c.talk_fraction / 2 if self.talking else c.talk_fraction)
            if self.note is None:
                if self._pending_off is None or self.hop >= self._pending_off - 1:
                    ok, med, need, glided = self._onset()
                    early = False
                    if not ok and c.early_cents > 0 and not self.talking:
                        # announce now, on one hop that names a pitch squarely, and let the
                        # rule above confirm or correct it a few hops later
                        p1 = self._run[-1][1]
                        if abs(p1 - snap(p1, c.key, c.scale)) * 100 <= c.early_cents:
                            ok, med, need, early = True, p1, 1, True
                    if ok:
                        first = self._run[-need][0]
                        # date the onset by the level rise (the level window spans 2 hops,
                        # so the rise happened about one hop before the crossing); without
                        # a recent rise, by the tracker's frame delay
                        rise = self._last_low_hop + 1 - 1.0
                        on_time = rise if first - rise <= 15 else first - c.pitch_delay_hops
                        if self._reartic_hop is not None:
                            on_time = self._reartic_hop    # the level dip that re-articulated
                        on_time = min(on_time, first)
                        self._reartic_hop = None
                        self._flush_pending(out, on_time)
                        self._start(med, on_time, max(lv for _, _, lv in list(self._run)[-c.stable_hops:]), out)
                        if glided:
                            self.note.set_pitches([med])
                        self.note.provisional = early
            else:
                self._in_note(pitch, level_db, out)
        else:
            self._unvoiced_run += 1
            if self.voiced and self._unvoiced_run >= c.off_hops:
                self.voiced = False
                self._reartic_hop = None
                self._run.clear()
                self._voiced_pitches.clear()
                if self.note is not None and self.note.provisional:
                    self._withdraw(out)     # never confirmed: a blip, not a note
                self._end(self.hop - c.off_hops + 1, out)
        if self.keep_history:
            self.voiced_hops.append(self.voiced)
        elif len(self.notes) > 64:
            del self.notes[:-8]
        return self._monotonic(out)

    def _monotonic(self, out: list) -> list:
        """Clamp event times so they never go back (back-dated onsets could otherwise
        precede an earlier note-off); the audio queue needs non-decreasing times."""
        res = []
        for kind, p, t, v in out:
            t = max(t, self._last_t)
            self._last_t = t
            res.append((kind, p, t, v))
        if res and self.notes:
            # keep the note records consistent with what was announced
            for n in self.notes[-2:]:
                if n.off_hop is not None and n.off_hop < n.on_hop:
                    n.off_hop = n.on_hop
        return res

    def _flush_pending(self, out: list, at: float) -> None:
        """A new note starts at ``at`` while the last one's note-off is held back for its
        minimum length: end it where the new one begins, so event times never go back."""
        if self._pending_off is not None:
            last = self.notes[-1]
            t = max(last.on_hop, min(self._pending_off, at))
            out.append(("off", last.pitch, t, 0))
            last.off_hop = t
            self._pending_off = None

    def _in_note(self, pitch: float, level_db: float, out: list) -> None:
        c = self.cfg
        n = self.note
        assert n is not None
        if n.provisional:
            self._confirm(n, pitch, level_db, out)
            return
        if c.fast_change and not self.talking and self._fast_change(n, level_db, out):
            return
        # pitch change: the last change_hops hops agree on a pitch away from the note
        ok, med = self._stable(c.change_hops, 100.0, 60.0)
        # ... and the newest hops have settled (a legato glide's tail must not name the
        # new note): it is named by their median
        settled, med_new = self._stable(c.change_settle_hops, 40.0, c.change_slope_cents)
        if ok and settled and abs(med - n.median_pitch) >= c.change_semitones and \
                all(h > n.on_hop for h, _, _ in list(self._run)[-c.change_hops:]) and \
                not self._vibrato_swing(n, n.median_pitch, med_new - n.median_pitch):
            med = med_new
            first = self._run[-c.change_hops][0]
            on_time = max(first - c.pitch_delay_hops, n.on_hop + 1)
            self._end(on_time, out)
            self._flush_pending(out, on_time)
            self._start(med, on_time, level_db, out)
            self.note.set_pitches([p for _, p, _ in list(self._run)[-c.change_hops:]])
            return
        # re-articulation: a dip in level followed by a rise, same pitch or not
        if level_db > self._peak_db:
            self._peak_db = level_db
        else:
            self._peak_db -= 0.3          # let the reference sink slowly (a long decay is not a dip)
        if self._dip_min_db is None:
            if level_db <= self._peak_db - c.dip_db:
                self._dip_min_db = level_db
                self._dip_min_hop = self.hop
        else:
            if level_db < self._dip_min_db:
                self._dip_min_db, self._dip_min_hop = level_db, self.hop
            if level_db >= self._dip_min_db + c.rise_db and self.hop - n.on_hop > 6:
                on_time = float(self._dip_min_hop)
                if c.reartic_fresh:
                    # the pitch until now may be the last note ringing on in the room:
                    # end it, and let the onset rule name the new one from fresh hops
                    self._end(on_time, out)
                    self._reartic_hop = self._dip_min_hop
                    self._run.clear()
                    return
                ok2, med2 = self._stable(2, 100.0, 100.0)
                self._end(on_time, out)
                self._flush_pending(out, on_time)
                self._start(med2 if ok2 else pitch, on_time, level_db, out)
                return
        n.add(pitch)

    def _confirm(self, n: NoteRecord, pitch: float, level_db: float, out: list) -> None:
        """An early note waits for the onset rule: the same pitch confirms it, another
        pitch replaces it (from the same onset), and no verdict within early_confirm_hops
        withdraws it. A replaced or withdrawn note ends where it began (zero length)."""
        c = self.cfg
        ok, med, _, glided = self._onset()
        if ok:
            if snap(med, c.key, c.scale) != n.pitch:
                self._withdraw(out)
                self._start(med, n.on_hop, level_db, out)
                if glided:
                    self.note.set_pitches([med])
            else:
                n.add(pitch)
            self.note.provisional = False
        elif self.hop - n.announced_hop >= c.early_confirm_hops:
            self._withdraw(out)
        else:
            n.add(pitch)

    def _withdraw(self, out: list) -> None:
        n = self.note
        assert n is not None
        out.append(("off", n.pitch, n.on_hop, 0))
        n.off_hop = n.on_hop
        self.notes.remove(n)
        self.note = None

    def _fast_change(self, n: NoteRecord, level_db: float, out: list) -> bool:
        """Legato, early: the newest 2 hops are fast_change_away_cents from the note on
        one side, and either glide towards a target (see ``_glide``) or have settled
        (a step of at most change_slope_cents); the target lies change_semitones from
        the note and rounds to another pitch. Vibrato swings back, so it rarely does."""
        c = self.cfg
        if len(self._run) < 3:
            return False
        ref = n.median_pitch
        run = list(self._run)
        (_, p2, _), (_, p3, _) = run[-2:]
        away = c.fast_change_away_cents / 100
        if not ((p2 - ref >= away and p3 - ref >= away) or (ref - p2 >= away and ref - p3 >= away)):
            return False
        ok, target = self._glide(floor_hop=n.on_hop, monotone4=c.change_monotone4)
        if not ok:
            # or settled: the newest change_settle_hops agree (as in the later rule)
            k = c.change_settle_hops
            settled, target = self._stable(k, 40.0, c.change_slope_cents)
            if not settled or run[-k][0] <= n.on_hop:
                return False
        if abs(target - ref) < c.change_semitones or snap(target, c.key, c.scale) == n.pitch:
            return False
        if self._vibrato_swing(n, ref, p3 - ref):
            return False
        if not self._lands_alike(target):
            return False
        sign = 1.0 if p3 > ref else -1.0
        first = run[-1][0]
        # date it by the first hop past halfway to the new pitch (a vibrato swing towards
        # it would date it too early), less the measurement's lag
        half = abs(target - ref) * c.change_date_share
        for h, p, _ in reversed(run):
            if h <= n.on_hop or (p - ref) * sign < half:
                break
            first = h
        on_time = max(first - c.change_date_lag_hops, n.on_hop + 1)
        self._end(on_time, out)
        self._flush_pending(out, on_time)
        self._start(target, on_time, level_db, out)
        self.note.set_pitches([target])
        return True

    def finish(self) -> list[tuple[str, int, int, int]]:
        """End of input: close the open note (and any held-back note-off)."""
        out: list[tuple[str, int, int, int]] = []
        if self.note is not None:
            self._end(self.hop + 1, out)
        if self._pending_off is not None:
            last = self.notes[-1]
            out.append(("off", last.pitch, self._pending_off, 0))
            self._pending_off = None
        return self._monotonic(out)
