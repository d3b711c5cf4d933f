"""The Python body of ``Mixer.process`` (engine.mixer): the fallback for synths the C
mixer cannot drive (engine/native/callback.c's ``lb_process`` does the same in C).

Per block it applies pending controls, pops every due event from the queues in time
order and renders the synth in segments split at the events' offsets (sample-accurate),
spreads the player's notes over its phase-shifted synths, then adds their output, applies
master gain and the peak limiter, hands the mix to the tap and adds the metronome click.

``MixerBody`` holds only methods: the state is the Mixer's (the arrays it shares with C),
declared here for the type checker.
Thread: audio (live, Python callback) or render (offline); one thread at a time. It
allocates no numpy buffers, does no I/O, no logging, and takes no lock.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from engine.events import ALL_OFF, CC_ALL_NOTES_OFF, CONTROL, IMMEDIATE, NOTE_OFF, NOTE_ON, PROGRAM, EventQueue
from engine.metronome import Metronome

NUM_CHANNELS = 16
CC_VOLUME, CC_SUSTAIN = 7, 64
# All sound off, reset all controllers, all notes off: a panic. FluidSynth keeps notes the
# pedal holds through CC123 and leaves reset voices sustained, so each lifts the pedal first.
PANIC_CCS = (120, 121, CC_ALL_NOTES_OFF)
SYNTH_PERIOD = 64  # FluidSynth applies events only at these frame boundaries
PLAYER_PHASES = 4  # synths for the player's channel, a quarter period apart
PLAYER_VOICES = 64  # the player's voices at most, over all its synths (floods)
STARTS_PER_PERIOD = 4  # player notes one synth starts per 64-frame period at most
POST_CHUNK = 224  # frames: 448 samples stay under numpy's 500-element GIL release
WORK_RING = 1 << 14  # durations kept for p50/p99 (about 87 s of 256-frame blocks)
AUDIBLE = 1e-3  # -60 dBFS: a gap beside quieter output is not heard (callback.c too)


class MixerBody:
    """Mixer's block rendering in Python (mixed into engine.mixer.Mixer)."""

    # The Mixer's state this body reads and writes (engine.mixer sets it up).
    # Counters and limiter values shared with C (engine.native's int/dbl fields):
    clock: int
    blocks: int
    xruns: int
    audible_xruns: int
    nonfinite_blocks: int
    late_events: int
    events_applied: int
    dropped_notes: int
    _ctl_version: int
    _ctl_applied: int
    _reset_requested: int
    _player_ch: int
    peak: float
    gain_reduction_db: float
    _gain: float
    _master: float
    _ceiling: float
    _release: float
    # the synths: any Synth-like object (or engine.synth's GIL-holding binding of one)
    _synth: Any
    _extra: tuple[Any, ...]  # the player's phase-shifted synths
    max_block: int
    _queues: tuple[EventQueue, ...]
    _events: np.ndarray  # scratch popped events, and views of its fields:
    _ev_time: np.ndarray
    _ev_kind: np.ndarray
    _ev_chan: np.ndarray
    _ev_d1: np.ndarray
    _ev_d2: np.ndarray
    _log: EventQueue | None
    _tap: Any  # an object with write(block, clock), or None
    _metronome: Metronome
    _vol: np.ndarray  # per-channel controls and what was applied of them
    _part_cc7: np.ndarray
    _mute: np.ndarray
    _prog: np.ndarray
    _applied_vol: np.ndarray
    _applied_prog: np.ndarray
    _ramp: np.ndarray  # limiter scratch
    _gbuf: np.ndarray
    _abs: np.ndarray
    _xbuf: np.ndarray  # the player's phase set (Mixer.enable_player_phases)
    _xpos: list[int]
    _phase: np.ndarray
    _held: np.ndarray
    _xper: np.ndarray
    _xstarts: np.ndarray
    work_ns: np.ndarray
    work_frames: np.ndarray

    def _apply_controls(self) -> None:
        synths = (self._synth,) + self._extra
        if self._reset_requested:
            self._reset_requested = 0
            for synth in synths:
                for ch in range(NUM_CHANNELS):
                    synth.control_change(ch, CC_SUSTAIN, 0)
                    synth.control_change(ch, CC_ALL_NOTES_OFF, 0)
            self._held[:] = 0
        version = self._ctl_version
        if version == self._ctl_applied:
            return
        self._ctl_applied = version
        for ch in range(NUM_CHANNELS):
            v = 0 if self._mute[ch] else (int(self._part_cc7[ch]) * int(self._vol[ch])) // 127
            if v != self._applied_vol[ch]:
                self._applied_vol[ch] = v
                for synth in synths:
                    synth.control_change(ch, CC_VOLUME, v)
            p = int(self._prog[ch])
            if p >= 0 and p != self._applied_prog[ch]:
                self._applied_prog[ch] = p
                for synth in synths:
                    synth.set_program(ch, p)

    def _apply_event(self, synth, kind: int, ch: int, d1: int, d2: int) -> None:
        if kind == NOTE_ON:
            if d2 == 0:
                synth.note_off(ch, d1)
            else:
                synth.note_on(ch, d1, d2)
        elif kind == NOTE_OFF:
            synth.note_off(ch, d1)
        elif kind == CONTROL:
            if d1 == CC_VOLUME:
                # A part's own level is scaled by the user's fader and mute.
                self._part_cc7[ch] = d2
                v = 0 if self._mute[ch] else (d2 * int(self._vol[ch])) // 127
                self._applied_vol[ch] = v
                synth.control_change(ch, CC_VOLUME, v)
            else:
                if d1 in PANIC_CCS:
                    synth.control_change(ch, CC_SUSTAIN, 0)
                synth.control_change(ch, d1, d2)
        elif kind == PROGRAM:
            synth.set_program(ch, d1 & 127)
        elif kind == ALL_OFF:
            synth.control_change(ch, CC_SUSTAIN, 0)
            synth.control_change(ch, CC_ALL_NOTES_OFF, 0)

    def _process_py(self, out: np.ndarray, xrun: bool = False) -> None:
        t_start = time.perf_counter_ns()
        if xrun:
            self.xruns += 1
        before = self.peak  # the end of the last block, just before the gap
        frames = out.shape[0]
        clock = self.clock
        t_end = clock + frames
        if self._reset_requested or self._ctl_version != self._ctl_applied:
            self._apply_controls()
        synth = self._synth
        extra = self._extra
        pch = self._player_ch if extra else -1
        xpos = self._xpos  # frames of each extra synth rendered so far in this block
        for k in range(len(extra)):
            xpos[k] = 0

        # Pop and apply events in time order across queues: each queue is already
        # time-ordered, so a k-way merge over their heads keeps cross-queue order.
        pos = 0  # frames rendered so far in this block
        ev = self._events
        cap = ev.shape[0]
        et, ek, ec, e1, e2 = self._ev_time, self._ev_kind, self._ev_chan, self._ev_d1, self._ev_d2
        log = self._log
        queues = self._queues
        if queues:
            # Pop each queue into its own slice of the scratch array, then merge.
            nq = len(queues)
            share = cap // nq
            starts = [0] * nq
            ends = [0] * nq
            for qi in range(nq):
                s = qi * share
                starts[qi] = s
                ends[qi] = s + queues[qi].pop_until(t_end, ev[s : s + share])
            while True:
                best = -1
                best_off = frames
                for qi in range(nq):
                    i = starts[qi]
                    if i < ends[qi]:
                        t = int(et[i])
                        off = 0 if t == IMMEDIATE else t - clock
                        if off < 0:
                            off = 0
                        if best < 0 or off < best_off:
                            best, best_off = qi, off
                if best < 0:
                    break
                i = starts[best]
                starts[best] = i + 1
                t = int(et[i])
                if t != IMMEDIATE and t < clock:
                    self.late_events += 1
                kind, ch, d1, d2 = int(ek[i]), int(ec[i]), int(e1[i]), int(e2[i])
                dropped = self.dropped_notes
                if ch == pch:
                    pos = self._player_event(out, best_off, clock + best_off, pos, kind, ch, d1, d2)
                else:
                    if best_off > pos:
                        synth.render_into(out, pos, best_off)
                        pos = best_off
                    self._apply_event(synth, kind, ch, d1, d2)
                self.events_applied += 1
                if log is not None and self.dropped_notes == dropped:  # a take holds what was heard
                    log.push(clock + best_off, kind, ch, d1, d2)
        if pos < frames:
            synth.render_into(out, pos, frames)
        xbuf = self._xbuf
        for k in range(len(extra)):
            if xpos[k] < frames:
                extra[k].render_into(xbuf[k], xpos[k], frames)

        # Post-processing in pieces of at most POST_CHUNK frames: numpy releases the GIL
        # inside any ufunc over more than 500 elements, and winning it back can mean
        # waiting for a descheduled thread (docs/live.md, "Keeping Python out of the way").
        tap = self._tap
        metronome = self._metronome
        metro = metronome.grid  # one tuple, read once per block
        for s in range(0, frames, POST_CHUNK):
            e = min(frames, s + POST_CHUNK)
            piece = out[s:e]
            for k in range(len(extra)):
                np.add(piece, xbuf[k, s:e], out=piece)
            self._master_and_limit(piece, e - s)
            if xrun and s == 0 and (before >= AUDIBLE or self.peak >= AUDIBLE or metro[0]):
                self.audible_xruns += 1
            if tap is not None:
                tap.write(piece, clock + s)
            if metro[0]:
                metronome.add(piece, clock + s, e - s, metro)
                np.clip(piece, -1.0, 1.0, out=piece)

        self.clock = t_end
        k = self.blocks & (WORK_RING - 1)
        self.work_ns[k] = time.perf_counter_ns() - t_start
        self.work_frames[k] = frames
        self.blocks += 1

    def _player_event(self, out: np.ndarray, off: int, t: int, pos: int, kind: int, ch: int, d1: int, d2: int) -> int:
        """Apply one event on the player's channel at block offset ``off`` (sample ``t``)
        to the phase set; returns the main synth's new render position (the extra
        synths' positions are in ``self._xpos``). Thread: audio."""
        held = self._held
        d1 &= 127
        if kind == NOTE_ON and d2 > 0:
            # The synth whose next period boundary comes first starts the note soonest;
            # a full one only when all are (FluidSynth then steals one of its voices).
            # (Only the player's own synths: index 0 of the phases is the band's.)
            # A synth starts at most STARTS_PER_PERIOD notes per period: FluidSynth cannot
            # steal a voice started in the same period (it then logs a warning from this
            # thread), and a flood's work per block stays bounded; beyond, notes drop.
            use, wait = 0, SYNTH_PERIOD  # among synths with two voices free
            full, full_wait = 0, SYNTH_PERIOD
            phase = self._phase
            extra = self._extra
            xper, xstarts = self._xper, self._xstarts
            limit = PLAYER_VOICES // len(extra) - 1
            for k in range(1, len(extra) + 1):
                w = (-(t + int(phase[k]))) % SYNTH_PERIOD
                if xper[k - 1] == (t + phase[k] + w) // SYNTH_PERIOD and xstarts[k - 1] >= STARTS_PER_PERIOD:
                    continue
                if extra[k - 1].active_voices() >= limit:
                    if w < full_wait:
                        full, full_wait = k + 1, w
                elif w < wait:
                    use, wait = k + 1, w
            if not use:
                use, wait = full, full_wait
            if not use:
                self.dropped_notes += 1
                return pos
            per = (t + int(phase[use - 1]) + wait) // SYNTH_PERIOD
            if xper[use - 2] == per:
                xstarts[use - 2] += 1
            else:
                xper[use - 2], xstarts[use - 2] = per, 1
            old = int(held[d1])
            if old and old != use:  # the pitch still sounds on another synth: end it
                pos = self._on_synth(old, out, off, pos, NOTE_OFF, ch, d1, 0)
            held[d1] = use
            return self._on_synth(use, out, off, pos, kind, ch, d1, d2)
        if kind == NOTE_ON or kind == NOTE_OFF:
            which = int(held[d1]) or 1
            held[d1] = 0
            return self._on_synth(which, out, off, pos, kind, ch, d1, d2)
        # controllers, programs, all-off: every synth of the set
        if kind == ALL_OFF or (kind == CONTROL and d1 in PANIC_CCS and d1 != 121):
            held[:] = 0
        for which in range(1, len(self._extra) + 2):
            pos = self._on_synth(which, out, off, pos, kind, ch, d1, d2)
        return pos

    def _on_synth(self, which: int, out: np.ndarray, off: int, pos: int, kind: int, ch: int, d1: int, d2: int) -> int:
        """Render synth ``which`` (1: main, k + 2: extra k) up to ``off``, then apply the
        event to it. Returns the main synth's render position. Thread: audio."""
        if which == 1:
            if off > pos:
                self._synth.render_into(out, pos, off)
                pos = off
            self._apply_event(self._synth, kind, ch, d1, d2)
            return pos
        k = which - 2
        synth = self._extra[k]
        xpos = self._xpos
        if off > xpos[k]:
            synth.render_into(self._xbuf[k], xpos[k], off)
            xpos[k] = off
        self._apply_event(synth, kind, ch, d1, d2)
        return pos

    def _master_and_limit(self, out: np.ndarray, frames: int) -> None:
        """Master gain, then a peak limiter: instant attack ramped over the block,
        exponential release, and a final clamp at the ceiling. Non-finite audio
        (a broken SoundFont sample) is replaced by silence rather than passed on."""
        if self._master != 1.0:
            np.multiply(out, self._master, out=out)
        a = self._abs[:frames]
        np.abs(out, out=a)
        peak = float(a.max()) if frames else 0.0
        if not math.isfinite(peak):
            out.fill(0.0)
            peak = 0.0
            self.nonfinite_blocks += 1
        ceiling = self._ceiling
        target = 1.0 if peak <= ceiling else ceiling / peak
        g0 = self._gain
        if target < g0:
            g1 = target  # attack: reach it by block end
        else:
            g1 = target + (g0 - target) * self._release**frames  # release
        if g0 != 1.0 or g1 != 1.0:
            g = self._gbuf[:frames]
            self._ramp_into(g, frames, g0, g1)
            np.multiply(out, g[:, None], out=out)
        # The ramp can lag a transient inside the block; the clamp makes the bound hard.
        if peak * max(g0, g1) > ceiling:
            np.clip(out, -ceiling, ceiling, out=out)
        self._gain = g1
        self.gain_reduction_db = -20.0 * math.log10(max(min(g1, 1.0), 1e-6))
        self.peak = min(peak * max(g0, g1), ceiling) if peak > 0 else 0.0

    def _ramp_into(self, g: np.ndarray, frames: int, g0: float, g1: float) -> None:
        # ramp[:frames] holds (j+1)/max_block; rescale to (j+1)/frames then map to g0..g1.
        np.multiply(self._ramp[:frames], (g1 - g0) * self.max_block / frames, out=g)
        np.add(g, g0, out=g)
