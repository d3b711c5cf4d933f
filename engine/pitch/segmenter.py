"""Turn per-hop (f0, confidence, level) into melody notes, causally, one hop at a time.

Decisions, in the order they are taken each hop:
1. Gate: a hop is *voiced* when the tracker's confidence and the level are both above
   their "on" thresholds; once voiced it stays voiced until both fall below "off"
   thresholds (hysteresis) for ``off_hops`` hops in a row, so a crackle or a short
   confidence dip does not end a note. The level must also clear an adaptive noise
   floor, so steady background noise never opens the gate. Below the "on" confidence,
   ``gate_steady_hops`` hops in a row that name one pitch at ``gate_steady_conf`` open it
   too (a quiet note in noise).
2. Onset: after an unvoiced stretch, the first ``stable_hops`` voiced hops whose pitch
   spread and slope are small start a note. It is dated by the level rise (or by a later
   jump of ``attack_rise_db``: the vowel after a consonant's burst), no later than the
   tracker's delay before its first voiced hop, or earlier where the hops just before
   that named its pitch below the gate (``backdate_hops``: a quiet note in noise).
   Hops the tracker reads back and forth between its 1/3-semitone bins (``_wobbling``:
   ``onset_bin_hops`` within 40 cents, turning back, past the attack) start a note too.
   A scoop need not be waited out until it flattens (``glide_onsets``): when the newest
   3 hops approach a pitch with shrinking steps (each at most ``glide_ratio_max`` of the
   last, at least ``glide_ratio_min``), the note is named where that approach converges (Aitken's extrapolation),
   provided a slower approach (ratio ``glide_guard_ratio``) would round to the same pitch: early on, the measured steps
   shrink before the scoop itself does (the 20 ms window still holds the attack).
   Before that rule agrees, one voiced hop that names a semitone squarely (see
   ``_early_ok``: near it, confident, past the attack, not moving) announces the note
   *provisionally*; the onset rule then confirms it, or replaces it
   with its own pitch from the same onset, or (no verdict in ``early_confirm_hops``, or
   the voice stops) withdraws it, unless ``short_hops`` of its hops, and most, lie within
   ``short_cents`` of its pitch: a fast note too short for the slope limit is kept. A
   replaced or withdrawn note ends where it began. A note 10+ semitones from the last
   (``_leap``: more often the tracker on the attack's octave or twelfth than a sung
   leap) is never announced early and needs 2 more stable hops.
   Inside a note, a new stable pitch ``change_semitones`` away from the note's running
   median starts a new note (legato), or ``change_named_semitones`` away when both sit
   squarely on different semitones and the new one holds (``_far``: a detuned singer's
   semitone step reads 0.6); earlier (``fast_change``), once the newest 2 hops
   are ``fast_change_away_cents`` to one side of the note and either glide towards, or
   have settled on, another pitch by the same rules (settled: 3 hops within 40 cents,
   moving at most 16 cents a hop, or 34 back and forth: PESTO's 1/3-semitone bins on
   hops voiced by the periodicity), unless the change is a leap of ``leap_st`` (the
   tracker on a harmonic, more often than not: the change rule waits it out). Vibrato
   swings back before it gets there. A level dip of ``dip_db`` followed by a rise of
   ``rise_db`` re-articulates (a repeated note). A re-articulated note is named by
   the onset rule from the hops after the rise (``reartic_fresh``): in a room, the hops
   before it still hear the last note ringing on, which named 2/3 of the wrong notes in
   the bench's reverberant clips.
   Talking is told from humming by how much the voiced pitch glides (motion over 3
   hops above ``talk_glide_cents``, or an even drift over ``talk_drift_hops``, in more
   than ``talk_fraction`` of recent voiced hops, once ``talk_min_hops`` voiced hops are
   in), unless more than ``talk_flat_max`` of them hold their pitch (a fast legato line
   glides from note to note, but holds each); while it looks like talking an onset
   needs ``talk_stable_hops`` hops within ``talk_stable_cents`` (``talk_slope_cents`` a hop),
   so speech does not become a stream of notes.
3. Pitch: the note is announced with the median of its first stable hops (or the glide's
   target) and keeps a
   running median (vibrato, scoops and drift average out); a hop an octave away from
   the note's pitch is folded back unless the jump persists (octave-error protection):
   after ``octave_fold_hops`` such hops the folded hops are unfolded and the change
   rules can name the new note (a sung octave leap).
   Optional snapping to a key/scale happens on the announced pitch.
4. Length: a note-off is never sent less than ``min_note_ms`` after its note-on.

Everything is in hops of the tracker (10 ms); times are hop indices converted by the
caller. Thread: one thread at a time (the pitch worker).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from engine.pitch.segmenter_rules import (
    SCALES,
    TRACKER_DEFAULTS,
    NoteRecord,
    SegmenterConfig,
    SegmenterRules,
    level_to_velocity,
    scale_set,
    snap,
)

__all__ = [
    "NoteRecord",
    "NoteSegmenter",
    "SCALES",
    "SegmenterConfig",
    "TRACKER_DEFAULTS",
    "level_to_velocity",
    "scale_set",
    "snap",
]


class NoteSegmenter(SegmenterRules):
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
        self.hop_voiced = False  # the gate's verdict on the newest hop alone (hysteresis aside)
        self._unvoiced_run = 0
        self._run: deque[tuple[int, float, float]] = deque(maxlen=max(c.stable_hops, c.change_hops) + 8)
        self.note: NoteRecord | None = None
        self.notes: list[NoteRecord] = []
        self._pending_off: float | None = None  # a held-back note-off's hop
        self._floor_db = -90.0
        self._peak_db = -120.0
        self._dip_min_db: float | None = None
        self._octave_run = 0
        self._last_low_hop = -1
        self._last_t = -1e9
        self._glides: deque[bool] = deque(maxlen=80)
        self._flats: deque[bool] = deque(maxlen=80)  # voiced hops that held their pitch
        self._voiced_pitches: deque[float] = deque(
            maxlen=max(4, c.talk_drift_hops + 1, c.vibrato_hops + c.vibrato_hops // 2)
        )
        self.talking = False
        self._dip_min_hop = 0
        self._reartic_hop: int | None = None
        self._prev_level_db = -120.0
        self._prev_pitch, self._prev_conf = 0.0, 0.0
        self._recent: deque[tuple[int, float, float, float]] = deque(maxlen=32)  # (hop, pitch, conf, level)
        self.voiced_hops: list[bool] = []

    # -- helpers ---------------------------------------------------------------------
    def _start(self, pitch_est: float, on_hop: float, level_db: float, out: list) -> NoteRecord:
        """Open a note (it becomes ``self.note``) and announce it; returns it."""
        c = self.cfg
        p = snap(pitch_est, c.key, c.scale)
        self.note = note = NoteRecord(p, on_hop, level_to_velocity(level_db), self.hop)
        note.set_pitches([x for _, x, _ in list(self._run)[-c.stable_hops :]])
        self.notes.append(note)
        self._peak_db = level_db
        self._dip_min_db = None
        self._octave_run = 0
        out.append(("on", p, on_hop, note.velocity))
        return note

    def _end(self, off_hop: float, out: list) -> None:
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

    # -- the per-hop step ----------------------------------------------------------------
    def step(self, f0_hz: float, conf: float, level_db: float) -> list[tuple[str, int, float, int]]:
        """One 10 ms hop. Returns the events this hop produced (possibly none)."""
        c = self.cfg
        self.hop += 1
        out: list[tuple[str, int, float, int]] = []
        if self._pending_off is not None and self.hop >= self._pending_off:
            last = self.notes[-1] if self.note is None else self.notes[-2]
            out.append(("off", last.pitch, self._pending_off, 0))
            self._pending_off = None
        if not np.isfinite(f0_hz) or f0_hz <= 0 or not np.isfinite(conf) or not np.isfinite(level_db):
            f0_hz, conf, level_db = 1.0, 0.0, -120.0
        pitch = 69.0 + 12.0 * np.log2(f0_hz / 440.0)
        self._recent.append((self.hop, pitch, conf, level_db))
        voiced_now = self.hop_voiced = self._gate(conf, level_db, pitch)
        if not voiced_now:
            self._update_floor(level_db)
        if level_db < max(c.level_off_db, self._floor_db + c.floor_margin_db):
            self._last_low_hop = self.hop

        if voiced_now:
            self._unvoiced_run = 0
            self.voiced = True
            n = self.note
            if n is not None and not n.provisional:  # an early note's own octave may be wrong
                ref = n.median_pitch
                d = pitch - ref
                octave = abs(abs(d) - 12.0) < 0.8
                if octave and self._octave_run < c.octave_fold_hops:
                    # an octave error for a few hops: fold it back onto the note
                    self._octave_run += 1
                    pitch -= 12.0 * np.sign(d)
                elif octave and c.octave_release:
                    if self._octave_run == c.octave_fold_hops:
                        # it persists: the voice itself leapt an octave. Unfold the hops
                        # folded so far, so the change rule can name the new note
                        run = self._run
                        k = max(0, len(run) - self._octave_run)  # (a re-articulation may have cleared some)
                        for i in range(k, len(run)):
                            h, p, lv = run[i]
                            run[i] = (h, p + 12.0 * np.sign(d), lv)
                        self._octave_run += 1
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
                # harmonic (a room's reverb mixes two notes), not a voice gliding.
                # A syllable's slower glide counts too: it moves on evenly over
                # talk_drift_hops, where a sung change steps and then holds
                jump = max(abs(vp[-1] - vp[-2]), abs(vp[-2] - vp[-3]), abs(vp[-3] - vp[-4])) >= c.talk_jump_st
                motion = abs(vp[-1] - vp[-4]) * 100
                self._glides.append(
                    (motion > c.talk_glide_cents and not jump or self._drifts_evenly()) and not self._held_centre()
                )
                self._flats.append(motion < c.talk_flat_cents)
                if len(self._glides) >= c.talk_min_hops:
                    share = sum(self._glides) / len(self._glides)
                    # hysteresis: talking starts above talk_fraction, ends below half of it;
                    # it does not start while the voice still holds its pitch on more than
                    # talk_flat_max of the hops (a fast legato line glides from note to note
                    # but holds each; a syllable hardly ever holds)
                    if self.talking:
                        self.talking = share > c.talk_fraction / 2
                    else:
                        held = sum(self._flats) / len(self._flats)
                        self.talking = share > c.talk_fraction and held <= c.talk_flat_max
            if self.note is None:
                if self._pending_off is None or self.hop >= self._pending_off - 1:
                    ok, med, need, glided = self._onset()
                    early = False
                    if not ok and c.early_cents > 0 and not self.talking:
                        # announce now, on one hop that names a pitch squarely, and let the
                        # rule above confirm or correct it a few hops later
                        p1 = self._run[-1][1]
                        if self._early_ok(p1, conf, level_db):
                            ok, med, need, early = True, p1, 1, True
                    if ok:
                        first = self._run[-need][0]
                        # date the onset by the level rise (the level window spans 2 hops,
                        # so the rise happened about one hop before the crossing); without
                        # a recent rise, by the tracker's frame delay; and no later than
                        # that delay allows (in noise the level can clear the floor only
                        # as the voicing does: the rise then dates the note late)
                        on_time = self._level_date(first, first - c.pitch_delay_hops)
                        back = self._named_before(first, med)
                        if back < first:
                            # the hops before the run already named this pitch, unvoiced (a
                            # quiet note in noise clears the gate late): the note began there
                            on_time = min(on_time, max(back - c.pitch_delay_hops, self._last_t))
                        if self._reartic_hop is not None:
                            # the level dip that re-articulated: its quietest 20 ms window
                            # ends a hop or so before the new attack sounds
                            on_time = self._reartic_hop + c.reartic_date_hops
                        on_time = min(on_time, first)
                        self._reartic_hop = None
                        self._flush_pending(out, on_time)
                        note = self._start(med, on_time, max(lv for _, _, lv in list(self._run)[-c.stable_hops :]), out)
                        if glided:
                            note.set_pitches([med])
                        note.provisional = early
            else:
                self._in_note(pitch, level_db, out)
        else:
            self._unvoiced_run += 1
            n = self.note
            if (
                not self.voiced
                and n is not None
                and n.provisional
                and n.hinted
                and self.hop - n.announced_hop >= c.early_confirm_hops
            ):
                self._withdraw(out)  # the net named a note the gate never heard
            if self.voiced and self._unvoiced_run >= c.off_hops:
                self.voiced = False
                self._reartic_hop = None
                self._run.clear()
                self._voiced_pitches.clear()
                if self.note is not None and self.note.provisional and not self._held_short(self.note):
                    self._withdraw(out)  # never confirmed: a blip, not a note
                self._end(self.hop - c.off_hops + 1, out)
        self._prev_level_db, self._prev_pitch, self._prev_conf = level_db, pitch, conf
        if self.keep_history:
            self.voiced_hops.append(self.voiced)
        elif len(self.notes) > 64:
            del self.notes[:-8]
        return self._monotonic(out)

    def hint(
        self, pitch: int, at_hop: float, prob: float = 1.0, sounding_hops: float = 0.0
    ) -> list[tuple[str, int, float, int]]:
        """The onset net (engine.pitch.onset_net) names ``pitch`` at ``at_hop`` (hops, may
        fall mid-hop; ``sounding_hops``: how long the net has heard a note sounding, unsure
        which): announce it now, provisionally, dated ``hint_lag_hops`` before, or from
        where the net first heard it (up to ``hint_sounding_hops`` back), or by its level
        rise as the rules date a note (``hint_level_date``), whichever is earliest; the
        onset rule confirms it, replaces it from the same onset or withdraws it, as it
        does an early note (see ``_confirm``). A sounding note of another pitch ends there
        (legato); one of the same pitch, or one not yet confirmed, is left alone."""
        c = self.cfg
        n = self.note
        p = snap(float(pitch), c.key, c.scale)
        if self.talking or (n is not None and (n.provisional or n.pitch == p or at_hop - n.on_hop < c.hint_min_hops)):
            return []
        level = self._recent[-1][3] if self._recent else -120.0
        if c.hint_floor_db > 0 and prob < c.hint_noisy_prob and level < self._floor_db + c.hint_floor_db:
            return []  # in noise the net's guesses are more often wrong: the rules decide
        out: list[tuple[str, int, float, int]] = []
        on_time = at_hop - c.hint_lag_hops
        if n is not None:
            on_time = max(on_time, n.on_hop + 1)  # legato: no level rise to date it by
            self._end(on_time, out)
        else:
            if 0 < sounding_hops <= c.hint_sounding_hops:
                # the net heard a note sounding before it was sure which (slower in noise)
                on_time = min(on_time, at_hop - sounding_hops)
            if c.hint_level_date:
                # as the rules date a note: the band's quantiser then puts it on the 16th
                # the singer meant, not the next one
                on_time = self._level_date(at_hop, on_time)
        self._flush_pending(out, on_time)
        note = self._start(float(p), on_time, level if self._recent else c.level_on_db, out)
        note.set_pitches([float(p)])
        note.provisional = note.hinted = True
        return self._monotonic(out)  # (step() trims a live session's note list)

    def _named_before(self, first: int, pitch: float) -> int:
        """The earliest hop of an unbroken stretch, at most backdate_hops long, just
        before hop ``first`` whose hops (voiced or not) name ``pitch`` within
        backdate_cents at a confidence of at least backdate_conf; ``first`` if none."""
        c = self.cfg
        h = first
        for hop, p, conf, _ in reversed(self._recent):
            if hop >= h:
                continue
            if hop != h - 1 or first - hop > c.backdate_hops:
                break
            if conf < c.backdate_conf or abs(p - pitch) * 100 > c.backdate_cents:
                break
            h = hop
        return h

    def _level_date(self, first: float, latest: float) -> float:
        """A new note heard at hop ``first``, dated by the level rise when there was one in
        the last 15 hops (or, after a consonant's burst, by the later jump that brought the
        vowel); ``latest`` when not, and never after it."""
        rise = self._last_low_hop + 1 - 1.0
        on_time = latest
        if first - rise <= 15:
            on_time = min(rise, on_time)
            attack = self._attack(first, rise)
            if attack > on_time:
                # the level rose first with a consonant's burst; the vowel, where the note
                # starts, comes with the later jump
                on_time = min(attack, latest)
        return on_time

    def _attack(self, first: float, rise: float) -> float:
        """Where the latest level jump of attack_rise_db over 2 hops, after ``rise`` and at
        or before hop ``first``, began (2 hops before its end: the level window spans 2);
        ``rise`` when there is none (or attack_rise_db is 0)."""
        c = self.cfg
        if c.attack_rise_db <= 0:
            return rise
        lv = {h: level for h, _, _, level in self._recent}
        for h in range(int(first), int(rise) + 1, -1):
            if h in lv and h - 2 in lv and lv[h] - lv[h - 2] >= c.attack_rise_db:
                return float(h - 2)
        return rise

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
        settled, med_new = self._settled(c.change_settle_hops)
        if (
            ok
            and settled
            and self._far(n, n.median_pitch, med)
            and all(h > n.on_hop for h, _, _ in list(self._run)[-c.change_hops :])
            and not self._vibrato_swing(n, n.median_pitch, med_new - n.median_pitch)
        ):
            med = med_new
            first = self._run[-c.change_hops][0]
            on_time = max(first - c.pitch_delay_hops, n.on_hop + 1)
            self._end(on_time, out)
            self._flush_pending(out, on_time)
            note = self._start(med, on_time, level_db, out)
            note.set_pitches([p for _, p, _ in list(self._run)[-c.change_hops :]])
            return
        # re-articulation: a dip in level followed by a rise, same pitch or not
        if level_db > self._peak_db:
            self._peak_db = level_db
        else:
            self._peak_db -= 0.3  # let the reference sink slowly (a long decay is not a dip)
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
                n = self._start(med, n.on_hop, level_db, out)
                if glided:
                    n.set_pitches([med])
            else:
                n.add(pitch)
            n.provisional = False
        elif self.hop - n.announced_hop >= c.early_confirm_hops:
            if self._held_short(n):
                n.provisional = False
                n.add(pitch)
            else:
                self._withdraw(out)
        else:
            n.add(pitch)

    def _held_short(self, n: NoteRecord) -> bool:
        """A short note the onset rule could not confirm (too few hops still enough for
        its slope limit) is kept when most of its hops, an octave error aside, lie
        within short_cents of its pitch: short_hops of them at least."""
        c = self.cfg
        if c.short_hops <= 0:
            return False
        near = 0
        for p in n.pitches:
            d = p - n.pitch
            near += abs(d - 12.0 * round(d / 12.0)) * 100 <= c.short_cents
        return near >= c.short_hops and 2 * near >= len(n.pitches)

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
        the note (but less than leap_st) and rounds to another pitch. Vibrato swings
        back, so it rarely does."""
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
            settled, target = self._settled(k)
            if not settled or run[-k][0] <= n.on_hop:
                return False
        if not self._far(n, ref, target) or snap(target, c.key, c.scale) == n.pitch:
            return False
        if c.leap_st > 0 and abs(target - ref) >= c.leap_st and self._octave_run <= c.octave_fold_hops:
            # a leap of an octave or so in 2 hops: more often the tracker on a harmonic
            # (or a subharmonic) in a room or through a laptop microphone than a sung
            # legato leap, which the slower change rule still names (see _leap); an
            # octave leap that has held past its folding is the voice's
            return False
        if self._vibrato_swing(n, ref, p3 - ref):
            return False
        if not self._lands_alike(target):
            return False
        sign = 1.0 if p3 > ref else -1.0
        first = run[-1][0]
        # date it by the first hop past halfway to the new pitch (a vibrato swing towards
        # it would date it too early), less the measurement's lag (change_date_lag_hops)
        half = abs(target - ref) * c.change_date_share
        for h, p, _ in reversed(run):
            if h <= n.on_hop or (p - ref) * sign < half:
                break
            first = h
        on_time = max(first - c.change_date_lag_hops, n.on_hop + 1)
        self._end(on_time, out)
        self._flush_pending(out, on_time)
        self._start(target, on_time, level_db, out).set_pitches([target])
        return True

    def finish(self) -> list[tuple[str, int, float, int]]:
        """End of input: close the open note (and any held-back note-off)."""
        out: list[tuple[str, int, float, int]] = []
        if self.note is not None:
            self._end(self.hop + 1, out)
        if self._pending_off is not None:
            last = self.notes[-1]
            out.append(("off", last.pitch, self._pending_off, 0))
            self._pending_off = None
        return self._monotonic(out)
