"""The streaming generator: keeps the band committed a safety margin ahead of the clock.

Each *step* (a 16th) it commits the melody token the model may hear (step ``k - d``,
``d = accompanist.lookahead``), asks ``accompanist.advance`` for the band's frame at
``k``, and hands the frame to the ``PartRenderer``, which pushes timed events into the
mixer's ``EventQueue``. It works in *chunks* of ``chunk_steps`` steps whenever the clock
comes within ``margin_steps`` of the last committed step, so the band is always committed
between ``margin`` and ``margin + chunk`` steps ahead of what is heard. Live play uses a
margin in time instead (``lead_ms``): a step is committed once its start is that close,
so a note played during step s still reaches the model for step s + 1 (whole steps of
margin kept the band 2-3 steps behind the player).

One engine, two clocks: the same ``pump(now)`` runs in the worker thread against the
audio clock (``start``/``stop``) and synchronously in an offline render against a
simulated clock (the render loop calls ``pump`` before each mixer block).

Offline models: a model with ``lookahead <= 0`` hears ``-lookahead`` steps of the
melody's future, which only a render or play-along of a file knows (its quantiser holds
the whole melody before the first step). The generator takes one only when built with
``offline=True`` and refuses it otherwise, so live play keeps online causality.

Listening first (``listen=True``, live play with no key fixed): the band plays only the
drums until the player has given enough melody for a key, then keeps to the key the
melody implies (``engine.band_key.BandKey``); the model runs on unheard meanwhile (it
must see every step, and a band that started silent would keep silent).

The plan (``plan=True``, live play): a tentative beat past the last committed step,
shown and never sounded (``engine.band_plan``).

Falling behind: a step whose start time has already passed when its frame is ready is
*late*: it is still fed to the model (the model must see every step to stay in time),
but the renderer plays no new onsets or releases for it (the band holds), ``late_steps``
counts it, and the audio callback never waits for the generator.

Threading contract:
- Thread: worker (or the render loop offline): ``pump``, everything private.
- Thread: any: the setters (``set_tempo``, ``set_controls``, ``set_style``, ``set_mute``,
  ``set_solo``, ``set_follow_tempo``, the chord source's) only store a pending value; the
  worker applies it before the next step it commits (``engine.band_steering``).
- Thread: any: ``melody_event`` (one producer thread at a time, see ``Quantiser``),
  ``metrics`` (a snapshot copy), ``start``/``stop`` (owner thread).

Per-step cost and memory are constant: the model's cache is fixed, and the generator
keeps only fixed-size rings (step times, leads, recent frames).
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.band_key import BandKey
from engine.band_plan import Plan, PlanTimer
from engine.band_steering import BandSteering
from engine.chart import Chart, ChartSampler
from engine.clock import Clock, model_meter
from engine.quantiser import Quantiser
from engine.renderer import PartRenderer
from engine.styles import get_style
from models.contract import Accompanist, prime_melody
from models.sampling import ControlledSampler, greedy
from models.tokens import CHORD, CHORD_NONE, HOLD, REST, is_note_on, token_pitch

STATS_RING = 8192  # steps kept for the percentile metrics (~17 min at 120 BPM)
MELODY_RING = 256  # committed melody tokens kept (> any model's lookahead either way)
TACET = np.array([CHORD_NONE, REST, REST, REST], np.int64)  # the tonal parts' frame while listening


@dataclass(frozen=True)
class GeneratorMetrics:
    """A snapshot for the UI and benches. Times in milliseconds."""

    steps: int  # model steps generated (count-in excluded)
    committed_step: int  # last step whose events are queued
    late_steps: int  # steps produced after their time (the band held)
    late_onsets: int  # melody onsets the model heard later than their step
    late_releases: int
    step_ms_p50: float  # model + render time per step, over the last STATS_RING steps
    step_ms_p99: float
    step_ms_max: float
    lead_ms_min: float  # how far ahead of the clock each step was committed (whole session)
    lead_ms_p1: float  # (last STATS_RING steps)
    lead_ms_last: float
    tempo: float
    backend: str
    plan_ms_p99: float = 0.0  # the plan's rollout (every PLAN_EVERY steps), over the last STATS_RING plans


class StreamingGenerator(BandSteering):
    def __init__(
        self,
        accompanist: Accompanist,
        clock: Clock,
        renderer: PartRenderer,
        *,
        style: str = "pop",
        sampler: ControlledSampler | None = None,
        quantiser: Quantiser | None = None,
        chunk_steps: int = 1,
        margin_steps: int = 2,
        lead_ms: float | None = None,
        clock_source: Callable[[], int] | None = None,
        follow_tempo: bool = False,
        backend: str = "",
        step_observer: Callable[[int, float], None] | None = None,
        offline: bool = False,
        chart: Chart | None = None,
        listen: bool = False,
        plan: bool = False,
    ) -> None:
        if not 1 <= chunk_steps <= 16:
            raise ValueError("chunk must be 1-16 steps")
        if not 1 <= margin_steps <= 64:
            raise ValueError("safety margin must be 1-64 steps")
        if lead_ms is not None and not 5.0 <= lead_ms <= 2000.0:
            raise ValueError(f"commit lead must be 5-2000 ms, got {lead_ms}")
        get_style(style)  # validates: a band style (engine.styles), which names the model's
        self.model = accompanist
        self.clock = clock
        self.renderer = renderer
        renderer.clock = clock  # swing and humanise need a step's length
        self.sampler = sampler or ControlledSampler()
        self.quantiser = quantiser or Quantiser(clock)
        self.chunk_steps = chunk_steps
        self.margin_steps = margin_steps
        # live: commit each step once its start is this close (samples); None: margin_steps
        self._lead = None if lead_ms is None else int(round(lead_ms * clock.sample_rate / 1000.0))
        self.clock_source = clock_source
        self.style = style
        self.backend = backend
        self.step_observer = step_observer
        self.lookahead = int(accompanist.lookahead)
        if self.lookahead < 1 and not offline:
            raise ValueError(
                f"this model hears the melody up to step t - ({self.lookahead}), i.e. the future: "
                "it is for offline render only; live play needs a model with lookahead >= 1"
            )
        if self.lookahead <= -MELODY_RING // 2:
            raise ValueError(f"lookahead {self.lookahead} is beyond the generator's melody ring")
        self.offline = bool(offline)
        # anticipation from recalled melody for a live model; a beat-long profile for one that hears ahead
        self.sampler.fit_to(accompanist)
        # a chord source (a chart, a locked form, the arranger's left hand): the chord
        # stream follows it, the model chooses the rest; without one the model chooses all
        self._chart = ChartSampler(self.sampler, chart, clock.meter, accompanist)
        # committed melody tokens by step (ring); the model reads the one of step k - lookahead
        self._mel = np.full(MELODY_RING, REST, np.int64)
        self._mel_next = clock.first_step  # the next melody step to commit
        self._model_fresh = False  # reset, and (offline) not yet primed with melody
        self.next_step = clock.first_step
        self.steps = 0
        self.late_steps = 0
        self.error: BaseException | None = None
        self._step_ms = np.zeros(STATS_RING, np.float64)
        self._lead_ms = np.zeros(STATS_RING, np.float64)
        self._nstats = 0
        self._last_lead = 0.0
        self._lead_min = float("inf")  # over the whole session, not just the ring
        # recent frames for the UI's piano roll: (step, chord, bass, tenor, alto, melody)
        self.recent: collections.deque[tuple[int, ...]] = collections.deque(maxlen=256)
        self._init_steering(follow_tempo)  # pending requests from other threads (engine.band_steering)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # the clock moved (offline) or stop: look again
        self._progress = threading.Event()  # set by the worker after each pump
        self.until_step: int | None = None  # the worker never commits this step or later
        self._primed = False
        # listening first (see the module doc); Thread: written by the worker, read by any
        self.keys = BandKey(self.sampler, listen, clock.first_step)
        # the plan (see the module doc); Thread: written by the worker, read by any
        self._plan_on = bool(plan) and callable(getattr(accompanist, "plan", None))
        self.plan: Plan | None = None
        self._voices: list[int | None] = [None, None, None]  # the model's sounding bass/tenor/alto
        self._plan_timer = PlanTimer(STATS_RING)

    # -- setup -------------------------------------------------------------------
    def prime(self) -> None:
        """Reset the model for a new piece and queue the parts' programs at the clock's
        start. Call once before ``pump``/``start``. Thread: owner, before the worker runs."""
        # warm-up: the first step of a model pays one-off costs (tracing, allocation,
        # ~0.1-0.5 s here) that would otherwise land on the first real step and make it
        # late; it runs on a throwaway greedy sampler, and the reset after it starts the
        # piece clean, so the band is the same with or without it
        self.model.reset(get_style(self.style).model, model_meter(self.clock.meter))
        prime_melody(self.model, [REST] * max(0, -self.lookahead))
        self.model.advance(REST, 0, greedy)
        self._reset_model(self.style)
        self.renderer.start(self.clock.step_time(self.clock.first_step))
        self._primed = True

    def melody_event(self, time: int, pitch: int, on: bool, take_back: bool = False) -> None:
        """A note from the player (sample time on the audio clock). ``take_back``: a
        note-off withdrawing a note the pitch tracker announced early (see Quantiser).
        Thread: one producer."""
        self.quantiser.note(time, pitch, on, take_back)
        if on:
            self._onsets.append(int(time))

    # -- worker side ---------------------------------------------------------------
    def _reset_model(self, style: str) -> None:
        # the model knows a few conditioning styles; a band style names the one it uses
        self.model.reset(get_style(style).model, model_meter(self.clock.meter))
        self._model_fresh = True
        self._chart.t0 = max(0, self.next_step)  # the step of the model's time 0

    def _melody(self, step: int) -> int:
        """The committed melody token of ``step`` (REST before the piece: contract)."""
        if step < 0 or step < self.clock.first_step:
            return REST
        return int(self._mel[step % MELODY_RING])

    # -- listening first and the band's key (engine.band_key; Thread: any may read) ----
    @property
    def listening(self) -> bool:
        return self.keys.listening

    @property
    def band_key(self) -> str:
        return self.keys.key

    @property
    def entered_step(self) -> int | None:
        return self.keys.entered_step

    def _commit_step(self, k: int) -> None:
        t0 = time.perf_counter()
        clock = self.clock
        t = clock.step_time(k)
        mel_step = k - self.lookahead
        while self._mel_next <= mel_step:  # in order, each once (one step live)
            tok = self.quantiser.token_for(self._mel_next)
            self._mel[self._mel_next % MELODY_RING] = tok
            if self._mel_next >= 0:
                self.keys.hear(tok)
            self._mel_next += 1
        mel = self._melody(mel_step)
        if k < 0:
            self.renderer.count_in(k, t)
            frame = None
        else:
            if self._model_fresh:
                # an offline model starts a piece knowing the melody of its first -lookahead steps
                prime_melody(self.model, [self._melody(k + i) for i in range(max(0, -self.lookahead))])
                self._model_fresh = False
            self.sampler.observe_melody(mel)
            forcer = self._chart
            forcer.begin_step(k)
            self.keys.step(k, forcer.now, clock.beat_steps, clock.bar_steps)
            frame = self.model.advance(mel, clock.step_in_bar(k), forcer)
            if self.listening:
                frame = TACET  # the model plays on unheard: drums only
            self.renderer.chord_forced = forcer.now is not None
            if forcer.now is not None and frame[0] != forcer.now:
                # a live source's chord (the arranger's) changed after this step's chord
                # cell was drawn (a step ahead, under a delay pattern): the band plays it
                # from this step; the notes of this step were already held to its tones
                frame = np.array(frame)
                frame[0] = forcer.now
        now = self.clock_source() if self.clock_source is not None else t
        late = t < now
        if frame is not None:
            self.renderer.render_step(k, t, frame, clock.step_in_bar(k), late=late)
            if self._plan_on:
                for i, tok in enumerate(frame[1:]):
                    if is_note_on(tok):
                        self._voices[i] = int(token_pitch(int(tok)))
                    elif tok != HOLD:
                        self._voices[i] = None
            self.recent.append((k, *(int(x) for x in frame), self._melody(k if self.lookahead < 1 else mel_step)))
            self.steps += 1
        self.late_steps += int(late)
        dt = (time.perf_counter() - t0) * 1000.0
        lead = (t - now) * 1000.0 / clock.sample_rate
        i = self._nstats % STATS_RING
        self._step_ms[i] = dt
        self._lead_ms[i] = lead
        self._nstats += 1
        self._last_lead = lead
        if lead < self._lead_min:
            self._lead_min = lead
        self.next_step = k + 1
        if self.step_observer is not None:
            self.step_observer(k, dt)

    def due(self, now: int) -> bool:
        """Whether the next chunk must be generated at audio time ``now``."""
        if self._lead is not None:
            return self.clock.step_time(self.next_step) - now <= self._lead
        return self.next_step <= self.clock.step_at(now) + self.margin_steps

    def pump(self, now: int | None = None, until_step: int | None = None) -> int:
        """Generate every chunk that is due at ``now`` (default: the clock source), never
        committing ``until_step`` or later (an offline render's end). Returns the number
        of steps committed. Thread: worker / render loop."""
        if not self._primed:
            self.prime()
        if now is None:
            now = self.clock_source() if self.clock_source is not None else self.clock.step_time(self.next_step)
        n = 0
        while self.due(now) and (until_step is None or self.next_step < until_step):
            for _ in range(self.chunk_steps):
                if until_step is not None and self.next_step >= until_step:
                    break
                # per step, so a style change lands on the bar line whatever the chunk size
                self._apply_requests()
                self._commit_step(self.next_step)
                n += 1
            if self.clock_source is not None:
                now = max(now, self.clock_source())
        if n and self._plan_on:
            src = self.clock_source
            slack_ms = self.seconds_until_due(src()) * 1000.0 if src is not None else float("inf")
            if self._plan_timer.due(n, slack_ms):
                self._make_plan()
        return n

    def _plan_chord(self, stream: int, logits: np.ndarray) -> int:
        """The plan's sampler under a chord source: its chord (a chart's at the cell's
        step, a live source's held one), else greedy."""
        src = self._chart.source
        if stream == CHORD and src is not None:
            if src.live:
                tok = self._chart.now
            else:
                cell = getattr(self.model, "current_cell", None)
                tok = src.token_at(self._chart.t0 + cell[0] if cell is not None else self.next_step)
            if tok is not None and 0 <= tok < logits.shape[0]:
                return int(tok)
        return greedy(stream, logits)

    def _make_plan(self) -> None:
        """Roll the model out a beat past the last committed step (see the module doc)."""
        self._plan_timer.begin()
        k = self.next_step
        if self.listening or k <= 0:
            self.plan = None
            return
        n = self.clock.beat_steps
        # the melody tokens those steps would hear: known up to the last committed one,
        # then the last note held (or the rest kept)
        last = self._melody(self._mel_next - 1)
        held = REST if last == REST else HOLD
        melody = [
            self._melody(s) if s < self._mel_next else held for s in range(k - self.lookahead, k + n - self.lookahead)
        ]
        sampler = greedy if self._chart.source is None else self._plan_chord
        frames = self.model.plan(melody, self.clock.step_in_bar(k), sampler)  # type: ignore[attr-defined]
        parts = frozenset(p for p in ("bass", "keys", "pad") if self.renderer.audible(p))
        v = self._voices
        self.plan = Plan(k, frames, (v[0], v[1], v[2]), parts)
        self._plan_timer.end()

    def seconds_until_due(self, now: int) -> float:
        """How long the worker may sleep before the next chunk is due."""
        if self._lead is not None:
            t_due = self.clock.step_time(self.next_step) - self._lead
        else:
            t_due = self.clock.step_time(self.next_step - self.margin_steps)
        return max(0.0, (t_due - now) / self.clock.sample_rate)

    def _run(self, clock_source: Callable[[], int]) -> None:
        try:
            while not self._stop.is_set():
                self._wake.clear()
                self.pump(clock_source(), self.until_step)
                self._progress.set()
                # Sleep until the next chunk is due, but wake often: the audio clock may
                # start late or stall, and requests should apply promptly. An offline
                # render's clock runs faster than real time; it wakes us with ``wake``.
                wait = min(0.02, self.seconds_until_due(clock_source()))
                if wait > 0.0005:
                    self._wake.wait(wait)
        except BaseException as exc:  # surfaced through metrics/error; audio keeps running
            self.error = exc
            self._progress.set()

    def wake(self) -> None:
        """Tell the worker the clock has moved. Thread: any (the offline render loop)."""
        self._wake.set()

    def wait_committed(self, step: int, timeout: float = 30.0) -> None:
        """Block until the worker has committed ``step`` (or ``until_step``). Thread: the
        offline render loop, which must never render past what the band has committed.
        RuntimeError if the worker failed or stalls for ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        target = step if self.until_step is None else min(step, self.until_step - 1)
        while True:
            self._progress.clear()
            if self.error is not None:
                raise RuntimeError(f"the generator failed: {self.error}") from self.error
            if self.next_step > target:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the generator stalled before step {step}")
            self._wake.set()
            self._progress.wait(0.05)

    def start(self) -> None:
        """Start the worker thread against ``clock_source`` (the audio clock)."""
        if self.clock_source is None:
            raise ValueError("a live generator needs a clock_source (the audio clock)")
        if self._thread is not None:
            raise RuntimeError("generator already started")
        if not self._primed:
            self.prime()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(self.clock_source,), name="liveband-generator", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the worker; queued events stay queued. Thread: owner."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- metrics (Thread: any) --------------------------------------------------------
    def metrics(self) -> GeneratorMetrics:
        n = min(self._nstats, STATS_RING)
        if n:
            s = self._step_ms[:n].copy()
            lead = self._lead_ms[:n].copy()
            p50, p99, mx = (float(x) for x in np.percentile(s, [50, 99, 100]))
            lmin, lp1 = self._lead_min, float(np.percentile(lead, 1))
        else:
            p50 = p99 = mx = lmin = lp1 = 0.0
        q = self.quantiser
        plan_p99 = self._plan_timer.p99_ms()
        return GeneratorMetrics(
            self.steps,
            self.next_step - 1,
            self.late_steps,
            q.late_onsets,
            q.late_releases,
            p50,
            p99,
            mx,
            lmin,
            lp1,
            self._last_lead,
            self.clock.tempo_at_step(self.next_step),
            self.backend,
            plan_p99,
        )
