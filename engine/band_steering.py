"""Steering the band while it plays: the generator's setters and how its worker applies them
(engine.generator's ``StreamingGenerator`` mixes in ``BandSteering``).

A setter (tempo, controls, key, style, mute/solo, tempo following, a chord source, a
chart, a locked form, a tempo ramp) validates in the caller's thread and only stores a
pending value; the worker applies every pending value before the next step it commits:
tempo from that step (a followed tempo at a beat), a chart or a locked form from a bar
line, a style from a bar line (a new piece for the model; the band carries on in time).

Thread contract: the setters and ``chord_source``/``form_at`` are "Thread: any" (a plain
attribute store or read); ``_apply_requests`` is "Thread: worker".
"""

from __future__ import annotations

import collections
from typing import Callable

from engine.band_key import BandKey
from engine.chart import Chart, ChartSampler, ChartSource, ChordSource
from engine.clock import Clock, TempoFollower, check_tempo
from engine.form import TempoRamp, check_lock_bars, form_from_frames
from engine.renderer import PartRenderer
from engine.styles import get_style
from models.sampling import ControlledSampler


class BandSteering:
    """The setters of a ``StreamingGenerator`` and their application by its worker."""

    # The generator's, which the steering reads and changes (engine.generator)
    clock: Clock
    renderer: PartRenderer
    sampler: ControlledSampler
    keys: BandKey
    next_step: int
    style: str
    recent: collections.deque[tuple[int, ...]]  # (step, chord, bass, tenor, alto, melody)
    _chart: ChartSampler
    _reset_model: Callable[[str], None]

    def _init_steering(self, follow_tempo: bool) -> None:
        """Nothing pending; tempo following ``follow_tempo`` from the clock's tempo."""
        self._req_tempo: float | None = None
        self._req_controls: tuple[float, float, float] | None = None
        self._req_style: str | None = None
        self._req_key: tuple[frozenset[int] | None, str] | None = None  # (scale or None, name) when asked
        self._req_parts: dict[str, tuple[bool | None, bool | None]] = {}
        # ("now", a source or None) | ("bar", a chart) | ("lock", bars)
        self._req_source: tuple[str, ChordSource | Chart | int | None] | None = None
        self._ramp: TempoRamp | None = None
        self._follow = bool(follow_tempo)
        self._onsets: collections.deque[int] = collections.deque(maxlen=64)  # the player's, for following
        self._follower = TempoFollower(self.clock.sample_rate, self.clock.tempo_at_step(0))

    # -- setters (Thread: any) ------------------------------------------------------
    def set_tempo(self, bpm: float) -> None:
        """Request a tempo; it starts at the first beat not yet committed."""
        self._req_tempo = check_tempo(bpm)

    def set_controls(self, temperature: float, density: float, harmony_follow: float) -> None:
        ControlledSampler(0, temperature, density, harmony_follow)  # validate here, in the caller's thread
        self._req_controls = (float(temperature), float(density), float(harmony_follow))

    def set_key(self, pitch_classes: frozenset[int] | None, name: str = "") -> None:
        """A fixed key's scale (and name) the band keeps to from the next step it
        commits, or None: the band's key follows the melody again."""
        self._req_key = (None if pitch_classes is None else frozenset(int(p) % 12 for p in pitch_classes), name)

    def set_style(self, style: str) -> None:
        get_style(style)  # ValueError naming the choices
        self._req_style = style

    def set_mute(self, part: str, muted: bool) -> None:
        solo = self._req_parts.get(part, (None, None))[1]
        self._req_parts = {**self._req_parts, part: (bool(muted), solo)}

    def set_solo(self, part: str, soloed: bool) -> None:
        mute = self._req_parts.get(part, (None, None))[0]
        self._req_parts = {**self._req_parts, part: (mute, bool(soloed))}

    def set_follow_tempo(self, on: bool) -> None:
        self._follow = bool(on)

    def set_chord_source(self, source: ChordSource | None) -> None:
        """A chord source the chord stream follows from the next step it commits (the
        arranger's left hand: ``engine.arranger.Arranger``), or None: the model chooses."""
        self._req_source = ("now", source)

    def set_chart(self, chart: Chart | None) -> None:
        """Loop ``chart`` from the next bar line (its first bar there), or None: the model
        chooses its own chords again from the next step."""
        self._req_source = ("bar", chart) if chart is not None else ("now", None)

    def lock_form(self, bars: int) -> None:
        """At the next bar line, loop the chords the band played in the ``bars`` bars
        before it (2, 4 or 8) until another source is set."""
        check_lock_bars(bars)
        self._req_source = ("lock", int(bars))

    def set_tempo_ramp(self, ramp: TempoRamp | None) -> None:
        """Practice: +bpm each time a looped form has come round ``every`` times."""
        self._ramp = ramp

    @property
    def chord_source(self) -> ChordSource | None:
        """The chord source in use (the worker's; a ``ChartSource`` for a chart or a
        locked form, an ``Arranger``, or None). Thread: any (read once)."""
        return self._chart.source

    def form_at(self, step: int) -> tuple[int, int, str] | None:
        """(bar of the form, loop, section) of a looped chart or form at ``step``, or None."""
        src = self._chart.source
        return src.position(step) if isinstance(src, ChartSource) else None

    # -- worker side ---------------------------------------------------------------
    def _apply_requests(self) -> None:
        """Apply what is pending before committing ``next_step``. Thread: worker."""
        if self._req_key is not None:
            k, self._req_key = self._req_key, None
            self.keys.fix(k[0], k[1], self.next_step)
        if self._req_controls is not None:
            c, self._req_controls = self._req_controls, None
            self.sampler.set_controls(*c)
            self.renderer.density = c[1]
        if self._req_parts:
            reqs, self._req_parts = self._req_parts, {}
            for name, (mute, solo) in reqs.items():
                if mute is not None:
                    (self.renderer.muted.add if mute else self.renderer.muted.discard)(name)
                if solo is not None:
                    (self.renderer.soloed.add if solo else self.renderer.soloed.discard)(name)
        if self._req_tempo is not None:
            bpm, self._req_tempo = self._req_tempo, None
            self.clock.set_tempo(bpm, self.next_step)
            self._follower.bpm = bpm
        if self._follow and self.next_step % self.clock.beat_steps == 0:
            while self._onsets:
                self._follower.add_onset(self._onsets.popleft())
            est = self._follower.estimate()
            cur = self.clock.tempo_at_step(self.next_step)
            if est is not None and abs(est - cur) > 0.02 * cur:
                self.clock.set_tempo(est, self.next_step)
        if self._req_source is not None:
            self._apply_source(self._req_source)
        if self._ramp is not None:
            ramped = self._ramp.tempo_at(self.next_step, self._chart.source, self.clock.tempo_at_step(self.next_step))
            if ramped is not None:
                self.clock.set_tempo(ramped, self.next_step)
                self._follower.bpm = ramped
        if self._req_style is not None and self.next_step % self.clock.bar_steps == 0:
            style, self._req_style = self._req_style, None
            if style != self.style:
                # a new style is a new piece for the model; the band carries on in time
                self.style = style
                self._reset_model(style)
                groove_seed = self.renderer.groove.rng.integers(1 << 30)
                self.renderer.set_style(style, int(groove_seed), time=self.clock.step_time(self.next_step))

    def _apply_source(self, req: tuple[str, ChordSource | Chart | int | None]) -> None:
        kind, what = req
        k = self.next_step
        if kind != "now" and (k < 0 or k % self.clock.bar_steps != 0):
            return  # a chart or a lock starts on a bar line
        self._req_source = None
        if isinstance(what, int):  # "lock": that many bars
            chart = form_from_frames(self.recent, k, what, self.clock.meter)
            if chart is None:  # not that many bars played yet
                return
            self._chart.source = ChartSource(chart, self.clock.meter, start=k)
        elif isinstance(what, Chart):  # "bar"
            self._chart.source = ChartSource(what, self.clock.meter, start=k)
        else:  # "now"
            self._chart.source = what
