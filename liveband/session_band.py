"""The band: its model (loaded in the background when the session opens), one streaming
generator per play/stop, the transport, and the controls the player turns (tempo, meter,
style, key, knobs, feel, mixer strips, metronome).

``Band`` owns the engine settings (``cfg``) and the mixer strips (``parts``); a play
builds a clock (or takes a synced one from liveband.session_sync), a PartRenderer feeding
the mixer's band queue and the piano roll, and a StreamingGenerator; a stop drops what was
committed ahead and closes the take. Thread: UI under the session lock (and the control
thread acting for it); the loader thread loads the model."""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING, Callable

from engine import parts as P
from engine.clock import METERS, Clock, beat_steps, check_tempo
from engine.errors import first_line
from engine.events import PROGRAM, EventQueue
from engine.keyfind import key_pitch_classes, parse_key
from engine.mixer import Mixer
from engine.styles import style_names
from liveband.config import TEMPO_RANGE, EngineConfig
from liveband.session_notices import Notices
from liveband.session_outputs import Outputs
from liveband.session_roll import Roll
from liveband.session_sync import START_LEAD_S, TempoSync
from liveband.session_takes import Takes
from liveband.session_types import PART_NAMES, PartState, SessionError

if TYPE_CHECKING:
    from engine.clock import TempoSegment
    from engine.generator import StreamingGenerator
    from engine.renderer import PartRenderer
    from liveband.session_steering import Steering

TAP_RESET_S = 2.0  # a pause this long between taps starts a new tap tempo


def tap_tempo(taps: list[float]) -> float | None:
    """The tempo of taps (monotonic seconds, in order): 60 / the median interval, kept to
    40-240 BPM; None before two taps."""
    if len(taps) < 2:
        return None
    iv = sorted(b - a for a, b in zip(taps, taps[1:]))
    return min(TEMPO_RANGE[1], max(TEMPO_RANGE[0], 60.0 / iv[len(iv) // 2]))


def silenced(parts: dict[str, PartState]) -> dict[str, bool]:
    """Which strips the mixer keeps silent: muted, not soloed while another is, or the
    player's part with its through switch off."""
    soloed = {n for n, s in parts.items() if s.solo}
    return {n: s.mute or (bool(soloed) and n not in soloed) or not s.through for n, s in parts.items()}


class Band:
    def __init__(
        self,
        cfg: EngineConfig,
        lock: threading.RLock,
        mixer: Mixer,
        sample_rate: int,
        notices: Notices,
        roll: Roll,
        sync: TempoSync,
        takes: Takes,
        outputs: Outputs,
        accompanist=None,
        take_meta: Callable[[], dict] = dict,
    ) -> None:
        """``take_meta()``: what else a new take records about the session (input, ...)."""
        self.cfg = cfg
        self._lock = lock
        self._mixer = mixer
        self._rate = sample_rate
        self._notices = notices
        self._roll = roll
        self._sync = sync
        self._takes = takes
        self._outputs = outputs
        self._take_meta = take_meta
        self.parts = {name: PartState(False, False, 1.0, P.part(name).program) for name in PART_NAMES}
        for p in P.ALL_PARTS:
            if p.channel != P.DRUMS.channel:
                mixer.set_program(p.channel, p.program)
        self.metronome = False
        self.master = 0.8
        mixer.set_master_gain(self.master)
        self._accompanist = accompanist
        self._load_lock = threading.Lock()
        self.backend = "none"
        self.gen: StreamingGenerator | None = None
        self.clock: Clock | None = None
        self._band_q: EventQueue | None = None
        self._renderer: PartRenderer | None = None
        self.playing = False
        self.listeners: list = []
        self.steering: Steering | None = None  # the chord source per play
        self._metro_segments: tuple[TempoSegment, ...] | None = None
        self._taps: collections.deque[float] = collections.deque(maxlen=8)
        self._band_key = ""  # the key the last band played in (shown after a stop)
        # Load the model now (importing torch and reading weights take seconds), so
        # play() starts the band at once.
        self.loader = threading.Thread(target=self._load, name="liveband-load", daemon=True)

    # -- the model -----------------------------------------------------------------------
    def _load(self):
        """The model on the configured backend; when it cannot load (no trained
        checkpoint yet, a corrupt one), the rule-based band plays and a notice says why."""
        with self._load_lock:
            return self._load_locked()

    def _load_locked(self):
        if self._accompanist is not None:
            return self._accompanist
        from engine.backends import open_accompanist

        problem = self._notices.problem
        try:
            acc, used = open_accompanist(self.cfg.backend, self.cfg.checkpoint, notify=lambda m: problem("backend", m))
            if int(acc.lookahead) < 1:  # engine.generator refuses it live; say so here
                raise ValueError(
                    f"{self.cfg.checkpoint} hears the melody ahead of time, so it is for offline render only"
                )
            problem("model", None)
        except Exception as exc:
            reason = first_line(exc)
            try:
                from models.rules import RuleAccompanist

                acc, used = RuleAccompanist(), "rules"
                problem("model", f"accompaniment model unavailable ({reason}); the rule-based band plays instead")
            except Exception:
                problem("model", f"no accompaniment model ({reason}); you can still play, the band stays silent")
                return None
        self._accompanist = acc
        self.backend = used
        return acc

    # -- transport -----------------------------------------------------------------------
    def play(self) -> None:
        from engine.generator import StreamingGenerator
        from engine.quantiser import Quantiser
        from engine.renderer import PartRenderer
        from models.sampling import ControlledSampler

        self.loader.join()  # the model loads in the background from the start
        with self._lock:
            if self.playing:
                return
            cfg = self.cfg
            acc = self._load()
            start = self._mixer.clock + int(START_LEAD_S * self._rate)
            clock, beat_lock = self._sync.synced_clock(cfg, self._rate)
            if clock is None:
                clock = Clock(self._rate, cfg.tempo, cfg.meter, cfg.count_in_bars, start_sample=start)
            self._sync.beat_lock = beat_lock
            self.clock = clock
            self._roll.reset(clock)
            band_q = EventQueue(1 << 14)
            renderer = PartRenderer(
                [band_q, self._roll, *self.listeners],
                cfg.style,
                cfg.meter,
                seed=cfg.seed,
                density=cfg.density,
                feel=cfg.feel,
                # the player's own choices; the style's programs otherwise
                programs={n: s.program for n, s in self.parts.items() if s.program != P.part(n).program},
            )
            for name, st in self.parts.items():
                if st.mute:
                    renderer.muted.add(name)
                if st.solo:
                    renderer.soloed.add(name)
            gen = None
            if acc is not None:
                mixer = self._mixer
                gen = StreamingGenerator(
                    acc,
                    clock,
                    renderer,
                    style=cfg.style,
                    sampler=ControlledSampler(cfg.seed, cfg.temperature, cfg.density, cfg.harmony_follow),
                    quantiser=Quantiser(clock),
                    chunk_steps=cfg.chunk_steps,
                    lead_ms=cfg.lead_ms,
                    clock_source=lambda: mixer.clock,
                    backend=self.backend,
                    step_observer=None if beat_lock is None else beat_lock.on_step,
                    # no key fixed: drums only until the player gives one
                    listen=cfg.key is None,
                    plan=True,
                )  # the piano roll's tentative beat
            self._band_q = band_q
            self._renderer = renderer
            self._mixer.add_queue(band_q)
            if self._takes.enabled:
                self.start_take()
            self._metro_segments = None
            self.update_metronome()
            if gen is not None:
                if cfg.key is not None:
                    gen.set_key(key_pitch_classes(*parse_key(cfg.key)), cfg.key)
                if self.steering is not None:
                    self.steering.attach(gen, clock)
                gen.start()
            else:
                # no model: still count in, so the player hears the tempo
                for k in range(clock.first_step, 0):
                    renderer.count_in(k, clock.step_time(k))
            self.gen = gen
            self._band_key = ""
            self.playing = True
            self._outputs.band_started()

    def stop(self) -> None:
        with self._lock:
            if not self.playing:
                return
            gen, self.gen = self.gen, None
            if self.steering is not None:
                self.steering.detach()
            if gen is not None:
                gen.stop()
                self._band_key = gen.band_key
                if gen.error is not None:
                    self._notices.problem("model", f"the band stopped: {gen.error}")
            band_q, self._band_q = self._band_q, None
            if band_q is not None:
                self._mixer.remove_queue(band_q)  # drop what was committed ahead
            self._mixer.all_notes_off()
            self._mixer.set_metronome(False)
            self.playing = False
            self._sync.beat_lock = None
            self._outputs.band_stopped()
            self._takes.stop(self.key)  # after the all-off has sounded into it

    def start_take(self) -> None:
        cfg = self.cfg
        programs = {n: s.program for n, s in self.parts.items()}
        renderer = self._renderer
        playing = {**programs, **(dict(renderer.programs) if renderer is not None else {})}
        clock = self.clock
        meta = {
            "tempo": cfg.tempo,
            "meter": cfg.meter,
            "style": cfg.style,
            **self._take_meta(),
            "key": self.key or "",
            "backend": self.backend,
        }
        self._takes.start(meta, cfg.tempo, clock.step_time(clock.first_step) if clock else None, programs, playing)

    def set_recording(self, on: bool) -> None:
        with self._lock:
            self._takes.enabled = bool(on)
            if on and self.playing and self._takes.recorder is None:
                self.start_take()
            elif not on:
                self._takes.stop(self.key)

    # -- controls ------------------------------------------------------------------------
    def set_tempo(self, bpm: float) -> None:
        bpm = check_tempo(bpm)
        with self._lock:
            self.cfg = self.cfg.with_(tempo=bpm)
            if self.gen is not None and self._sync.beat_lock is None:
                self.gen.set_tempo(bpm)
            self._sync.set_tempo(bpm)

    def tap(self) -> float:
        now = time.monotonic()
        if self._taps and now - self._taps[-1] > TAP_RESET_S:
            self._taps.clear()
        self._taps.append(now)
        bpm = tap_tempo(list(self._taps))
        if bpm is not None:
            self.set_tempo(bpm)
        return self.cfg.tempo

    def set_meter(self, meter: str) -> None:
        if meter not in METERS:
            raise ValueError(f"meter must be one of {', '.join(METERS)}, got {meter!r}")
        with self._lock:
            self.cfg = self.cfg.with_(meter=meter)
            if self.playing:
                self._notices.happened(f"meter {meter} applies from the next play")

    def set_style(self, style: str) -> None:
        if style not in style_names():
            raise ValueError(f"style must be one of {', '.join(style_names())}, got {style!r}")
        with self._lock:
            self.cfg = self.cfg.with_(style=style)
            if self.gen is not None:
                self.gen.set_style(style)

    def set_key(self, key: str | None) -> frozenset[int] | None:
        """Fix the key (None: follow the playing); the fixed key's scale. SessionError for
        text that is not a key."""
        try:
            cfg = self.cfg.with_(key=key)
        except ValueError as exc:
            raise SessionError(str(exc)) from None
        with self._lock:
            self.cfg = cfg
            scale = None if cfg.key is None else key_pitch_classes(*parse_key(cfg.key))
            if self.gen is not None:
                self.gen.set_key(scale, cfg.key or "")
            return scale

    @property
    def key(self) -> str:
        """The key shown: the fixed one, else the one the band plays in ('' while it
        listens, before the player has given a key). Thread: any."""
        gen = self.gen
        return self.cfg.key or (gen.band_key if gen is not None else self._band_key)

    def set_config(self, **kw) -> None:
        """Settings that apply from the next play (count-in, feel); ValueError naming the value."""
        with self._lock:
            self.cfg = self.cfg.with_(**kw)

    def set_feel(self, **kw) -> None:
        """The feel (swing, fills, time_feel, humanise): kept for the next play and, while
        the band plays, heard from its next step. ValueError naming the value."""
        with self._lock:
            self.cfg = self.cfg.with_(**kw)  # validates
            if self._renderer is not None:
                self._renderer.set_feel(self.cfg.feel)

    def set_controls(self, **kw) -> None:
        with self._lock:
            self.cfg = self.cfg.with_(**kw)  # validates
            if self.gen is not None:
                c = self.cfg
                self.gen.set_controls(c.temperature, c.density, c.harmony_follow)

    def set_part(self, part: str, *, mute=None, solo=None, volume=None, program=None, through=None) -> None:
        if part not in PART_NAMES:
            raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PART_NAMES)}")
        if through is not None and part != "melody":
            raise ValueError("only your own part (melody) has a through switch")
        with self._lock:
            st = self.parts[part]
            if volume is not None and not (0.0 <= float(volume) <= 1.0):
                raise ValueError(f"volume must be 0-1, got {volume}")
            if program is not None and not 0 <= int(program) < 128:
                raise ValueError(f"GM program must be 0-127, got {program}")
            st = PartState(
                st.mute if mute is None else bool(mute),
                st.solo if solo is None else bool(solo),
                st.volume if volume is None else float(volume),
                st.program if program is None else int(program),
                st.through if through is None else bool(through),
            )
            self.parts = {**self.parts, part: st}
            ch = P.part(part).channel
            if volume is not None:
                self._mixer.set_channel_volume(ch, st.volume)
            if program is not None and ch != P.DRUMS.channel:
                self._mixer.set_program(ch, st.program)
                if self._renderer is not None:
                    self._renderer.programs[part] = st.program
                self._outputs.send_program(ch, st.program)
                rec = self._takes.recorder
                if rec is not None:
                    rec.add_event(self._mixer.clock, PROGRAM, ch, st.program, 0)
            if mute is not None or solo is not None or through is not None:
                for name, silent in silenced(self.parts).items():
                    self._mixer.set_channel_mute(P.part(name).channel, silent)
                if self.gen is not None:
                    if mute is not None:
                        self.gen.set_mute(part, st.mute)
                    if solo is not None:
                        self.gen.set_solo(part, st.solo)

    def set_master_volume(self, v: float) -> None:
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"master volume must be 0-1, got {v}")
        self.master = float(v)
        self._mixer.set_master_gain(self.master)

    def set_metronome(self, on: bool) -> None:
        with self._lock:
            self.metronome = bool(on)
            self._metro_segments = None
            self.update_metronome()

    def update_metronome(self) -> None:
        """Follow the clock's tempo map (a tempo change is announced ahead; the mixer
        keeps the old grid until the change's origin). Under the session lock."""
        clock = self.clock
        if not (self.metronome and self.playing and clock is not None):
            if not (self.metronome and self.playing):
                self._mixer.set_metronome(False)
            return
        segs = clock.segments
        if segs is self._metro_segments:
            return
        self._metro_segments = segs
        seg = segs[-1]
        bs = beat_steps(clock.meter)
        per_bar = max(1, clock.bar_steps // bs)
        bar_line = clock.first_step - clock.first_step % clock.bar_steps  # a synced band starts mid-bar
        first_beat = ((seg.step - bar_line) // bs) % per_bar
        self._mixer.set_metronome(
            True,
            origin=seg.sample,
            samples_per_beat=seg.samples_per_step * bs,
            beats_per_bar=per_bar,
            first_beat=first_beat,
        )

    def check(self) -> None:
        """The metronome's grid and a generator that failed. Thread: housekeeper."""
        with self._lock:
            self.update_metronome()
            gen = self.gen
            if gen is not None and gen.error is not None:
                self._notices.problem("model", f"the band stopped: {gen.error}")

    @property
    def programs(self) -> dict[str, int]:
        return {n: s.program for n, s in self.parts.items()}

    def channel_programs(self) -> dict[int, int]:
        """The band's programs by MIDI channel, drums aside: what a MIDI output opens with."""
        return {p.channel: self.parts[p.name].program for p in P.BAND_PARTS if p.channel != P.DRUMS.channel}
