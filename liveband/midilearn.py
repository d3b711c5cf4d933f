"""Controls from MIDI: MIDI learn, and the thread that runs what MIDI asks for.

- ``ControlThread``: MIDI arrives on rtmidi's thread (on JACK, inside the server's
  process callback), where play/stop (building a generator, closing a take) must never
  run: a handler there only submits the action, and this thread runs them in order.
- ``MidiLearn``: arm a target (a knob, a button, a transport action), move a control:
  the next CC or note is bound to it; bindings are kept per controller in a JSON file in
  the user's LiveBand folder. ``session_targets`` names what a session offers.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.errors import first_line
from liveband.config import TEMPERATURE_RANGE, TEMPO_RANGE
from models.atomic import write_atomic


class ControlThread:
    """Runs submitted callables one at a time on a daemon thread started on first use;
    an action's exception is kept in ``errors`` (the last few) and never stops the thread.
    Thread: ``submit`` any; ``close`` owner."""

    def __init__(self, name: str = "liveband-control", on_error: Callable[[str], None] | None = None) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._name = name
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.on_error = on_error
        self.errors: list[str] = []

    def submit(self, action: Callable[[], None]) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()
        self._q.put(action)

    def _run(self) -> None:
        while True:
            action = self._q.get()
            if action is None:
                return
            try:
                action()
            except Exception as exc:
                msg = f"MIDI control failed: {exc}"
                self.errors = [*self.errors[-7:], msg]
                if self.on_error is not None:
                    self.on_error(msg)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once everything submitted so far has run (tests)."""
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        t = self._thread
        if t is not None:
            self._q.put(None)
            t.join(timeout)


# -- MIDI learn -----------------------------------------------------------------------
BINDINGS_FILE = "midi_bindings.json"
KNOB, BUTTON = "knob", "button"


@dataclass(frozen=True)
class Target:
    """Something a controller can drive: a knob gets 0..1 (mapped onto ``lo``..``hi``),
    a button is pressed (``apply(1.0)``)."""

    kind: str
    apply: Callable[[float], None]
    lo: float = 0.0
    hi: float = 1.0


@dataclass(frozen=True)
class Binding:
    controller: str  # the MIDI input's name: each controller has its own bindings
    type: str  # "cc" or "note"
    channel: int  # 0-15
    number: int  # controller or note number
    target: str

    @property
    def key(self) -> tuple[str, int, int]:
        return self.type, self.channel, self.number

    def describe(self) -> str:
        what = f"CC {self.number}" if self.type == "cc" else f"note {self.number}"
        return f"{what} (channel {self.channel + 1}) -> {self.target}"


LOCK_BARS = 4  # a foot switch's form lock, until the player locks another length


def session_targets(session) -> dict[str, Target]:
    """Every control of a session that MIDI learn can bind, by name. The chord controls
    (form lock, next section, arranger) and the feel appear when the session has them."""

    def toggle_play(_v: float) -> None:
        session.stop() if session.snapshot().playing else session.play()

    def toggle_record(_v: float) -> None:
        session.set_recording(not session.recording_enabled)

    t: dict[str, Target] = {
        "play_stop": Target(BUTTON, toggle_play),
        "record": Target(BUTTON, toggle_record),
        "tap_tempo": Target(BUTTON, lambda _v: session.tap_tempo()),
        "density": Target(KNOB, session.set_density),
        "creativity": Target(KNOB, session.set_temperature, *TEMPERATURE_RANGE),
        "harmony_follow": Target(KNOB, session.set_harmony_follow),
        "master_volume": Target(KNOB, session.set_master_volume),
        "tempo": Target(KNOB, session.set_tempo, *TEMPO_RANGE),
    }
    if all(callable(getattr(session, n, None)) for n in ("lock_form", "unlock_form", "form_state")):
        last = [LOCK_BARS]

        def toggle_lock(_v: float) -> None:
            locked = session.form_state().locked_bars
            if locked:
                last[0] = locked  # the length the player chose, for the next lock
                session.unlock_form()
            else:
                session.lock_form(last[0])

        t["lock_form"] = Target(BUTTON, toggle_lock)
    if all(callable(getattr(session, n, None)) for n in ("chart_sections", "loop_section", "form_state")):

        def next_section(_v: float) -> None:
            # loop the chart's section after the one playing (the first when none is)
            names = session.chart_sections()
            if names:
                here = session.form_state().section
                session.loop_section(names[(names.index(here) + 1) % len(names)] if here in names else names[0])

        t["next_section"] = Target(BUTTON, next_section)
    if callable(getattr(session, "set_arranger", None)) and callable(getattr(session, "form_state", None)):
        t["arranger"] = Target(BUTTON, lambda _v: session.set_arranger(not session.form_state().arranger))
    if callable(getattr(session, "set_feel", None)):

        def feel(what: str):
            def apply(v: float) -> None:
                cfg = session.engine_config  # the rest of the feel as it is
                now = {"swing": cfg.swing, "fills": cfg.fills, "time_feel": cfg.time_feel, "humanise": cfg.humanise}
                session.set_feel(**{**now, what: v})

            return apply

        t["swing"] = Target(KNOB, feel("swing"))
        t["humanise"] = Target(KNOB, feel("humanise"))
    if callable(getattr(session, "set_metronome", None)) and hasattr(session, "metronome"):
        t["metronome"] = Target(BUTTON, lambda _v: session.set_metronome(not session.metronome))

    # every mixer strip, the player's own ("melody", shown as You) too
    def volume(p: str) -> Callable[[float], None]:
        return lambda v: session.set_part(p, volume=v)

    def flip(p: str, w: str) -> Callable[[float], None]:
        return lambda _v: session.set_part(p, **{w: not getattr(session.snapshot().parts[p], w)})

    for part in session.snapshot().parts:
        t[f"volume:{part}"] = Target(KNOB, volume(part))
        for what in ("mute", "solo"):
            t[f"{what}:{part}"] = Target(BUTTON, flip(part, what))
    return t


class MidiLearn:
    """Bindings from controller CCs and notes to targets, and the learning of them.

    ``arm(target)``: the next CC or note-on that arrives (any channel) is bound to it.
    ``handle(msg, arrived)`` is the MIDI filter's ``intercept``: it consumes what it
    binds or what is bound (a note bound to play/stop is not played; CC64 bound to a
    foot switch is not the sustain pedal). A knob's value is applied on the control
    thread, only the latest of a burst; a button acts on press (CC value 0 -> 64+, or a
    note-on). Bindings are stored per controller in ``path`` (JSON, written to a temp
    file and renamed); a file that cannot be read is reported in one line, ignored, and
    kept beside as ``.corrupt`` when the bindings are next saved.
    Thread: ``handle`` the MIDI thread; the rest the UI; targets run on ``control``.
    """

    def __init__(
        self,
        path: Path,
        control: ControlThread,
        targets: Callable[[], dict[str, Target]],
        notice: Callable[[str], None] = lambda m: None,
    ) -> None:
        self.path = Path(path)
        self.control = control
        self._targets = targets
        self.notice = notice
        self.controller = ""
        self.armed: str | None = None
        self._bindings: list[Binding] = []
        self._active: dict[tuple[str, int, int], str] = {}  # the controller's, replaced whole
        self._cc_last: dict[tuple[int, int], int] = {}
        self._pending: dict[str, float] = {}
        self._pending_lock = threading.Lock()
        self._corrupt = False
        self._load()

    # -- storage ------------------------------------------------------------------------
    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            found = []
            for controller, items in data["controllers"].items():
                for it in items:
                    b = Binding(
                        str(controller), str(it["type"]), int(it["channel"]), int(it["number"]), str(it["target"])
                    )
                    if b.type not in ("cc", "note") or not 0 <= b.channel < 16 or not 0 <= b.number < 128:
                        raise ValueError(f"bad binding {it!r}")
                    found.append(b)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            self._corrupt = True
            self.notice(f"MIDI bindings file {self.path} is unreadable ({first_line(exc)}); it is ignored")
            return
        self._bindings = found

    def _save(self) -> None:
        """Thread: control."""
        data: dict = {"version": 1, "controllers": {}}
        for b in self._bindings:
            data["controllers"].setdefault(b.controller, []).append(
                {"type": b.type, "channel": b.channel, "number": b.number, "target": b.target}
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._corrupt and self.path.exists():
                os.replace(self.path, self.path.with_name(self.path.name + ".corrupt"))
            self._corrupt = False
            write_atomic(self.path, json.dumps(data, indent=1))
        except OSError as exc:
            self.notice(f"cannot save MIDI bindings to {self.path}: {first_line(exc)}")

    # -- API (Thread: UI) ------------------------------------------------------------------
    def set_controller(self, name: str) -> None:
        self.controller = name
        self._activate()

    def _activate(self) -> None:
        self._active = {b.key: b.target for b in self._bindings if b.controller == self.controller}

    def arm(self, target: str | None) -> None:
        if target is not None and target not in self._targets():
            raise ValueError(f"unknown MIDI learn target {target!r}; choose one of {', '.join(self._targets())}")
        self.armed = target

    def bindings(self) -> list[Binding]:
        return [b for b in self._bindings if b.controller == self.controller]

    def clear(self, target: str | None = None) -> int:
        """Forget the current controller's bindings of ``target`` (None: all); how many."""
        keep = [
            b for b in self._bindings if b.controller != self.controller or (target is not None and b.target != target)
        ]
        n = len(self._bindings) - len(keep)
        self._bindings = keep
        self._activate()
        self.control.submit(self._save)
        return n

    # -- the MIDI side (Thread: MIDI) --------------------------------------------------------
    def handle(self, msg, arrived: float) -> bool:
        kind = msg.type
        if kind == "control_change":
            key, value = ("cc", msg.channel, msg.control), msg.value
        elif kind in ("note_on", "note_off"):
            key = ("note", msg.channel, msg.note)
            value = msg.velocity if kind == "note_on" else 0
        else:
            return False
        armed = self.armed
        if armed is not None and value > 0:
            self.armed = None
            b = Binding(self.controller, *key, armed)
            self._bindings = [
                x
                for x in self._bindings
                if not (x.controller == b.controller and x.key == b.key)
                and not (x.controller == b.controller and x.target == b.target)
            ] + [b]
            self._activate()
            if key[0] == "cc":
                self._cc_last[key[1:]] = value  # the learning move itself is not a press
            self.control.submit(self._save)
            # the session's notices take its lock: never on the MIDI thread
            self.control.submit(lambda: self.notice(f"MIDI learn: {b.describe()}"))
            return True
        target = self._active.get(key)
        if target is None:
            return False
        t = self._targets().get(target)
        if t is None:
            return True
        if t.kind == KNOB:
            self._knob(target, t, value / 127.0)
        elif key[0] == "cc":
            last = self._cc_last.get(key[1:], 0)
            self._cc_last[key[1:]] = value
            if value >= 64 > last:
                self.control.submit(lambda: t.apply(1.0))
        elif value > 0:
            self.control.submit(lambda: t.apply(1.0))
        return True

    def _knob(self, name: str, t: Target, v: float) -> None:
        with self._pending_lock:
            first = name not in self._pending
            self._pending[name] = t.lo + v * (t.hi - t.lo)
        if first:
            self.control.submit(lambda: self._apply_knob(name, t))

    def _apply_knob(self, name: str, t: Target) -> None:
        with self._pending_lock:
            v = self._pending.pop(name)
        t.apply(v)
