"""Steering the live band's harmony: arranger mode (the left hand's chords below a split
point), a chord chart the band loops (or one section of it), a locked form (the chords
the band has just played, looped), a practice tempo ramp, and where in the form the band
is (bar, section, time round).

What drives the chord stream, first match wins: a locked form; the arranger once the
left hand has played a chord; the chart (or its looped section); else the model chooses.
The generator applies each change itself (``engine.generator``): the arranger from the
next step, a chart or a lock from the next bar line.

Thread: the setters from the UI thread (under the session lock); ``note`` from whichever
thread delivers the player's notes (UI for keys, rtmidi's for MIDI); ``attach``/``detach``
from play/stop; ``state`` from any thread (it reads plain values once).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from engine.arranger import DEFAULT_SPLIT, Arranger, check_split
from engine.chart import Chart, ChartError, ChartSource, load_chart, parse_chart, save_chart
from engine.form import TempoRamp, check_lock_bars
from models.tokens import note_name


@dataclass(frozen=True)
class FormState:
    """What the UI shows of the band's form. Thread: any."""

    bar: int  # the bar playing, 1.. (0 before the first bar / stopped)
    form_bar: int  # the bar of the looped chart or form, 1.. (0: none looping)
    form_bars: int  # its length in bars (0: none)
    loop: int  # times round the form so far, 1..
    section: str  # its section there ("" none)
    source: str  # "locked", "arranger", "chart", "section", "model"
    arranger: bool
    split: int
    split_name: str  # "F#3"
    chord: str  # the arranger's chord read last ("C/E"), "" none
    chart_name: str  # the loaded chart's file name or "" (a typed one: "chart")
    locked_bars: int  # the lock's length asked for (0: not locked)
    ramp: str  # "+4 BPM every 2" or ""


class Steering:
    def __init__(self, lock: threading.RLock, split: int = DEFAULT_SPLIT) -> None:
        self._lock = lock
        self.arranger = Arranger(split)
        self._arranger_on = False
        self._chart: Chart | None = None
        self._chart_text = ""
        self._chart_name = ""
        self._section: str | None = None
        self._locked = 0
        self._ramp: TempoRamp | None = None
        self._gen = None
        self._clock = None

    # -- play / stop (Thread: the session's play/stop, under its lock) -----------------
    def attach(self, gen, clock) -> None:
        """A new band is about to start: give it the chord source and the ramp."""
        self._gen, self._clock = gen, clock
        self.arranger.bind(clock)
        self._locked = 0  # a lock is of the band that played it
        if gen is not None:
            gen.set_tempo_ramp(self._ramp)
            self._apply()

    def detach(self) -> None:
        self._gen = None
        self._locked = 0

    def _apply(self) -> None:
        gen = self._gen
        if gen is None or self._locked:
            return
        if self._arranger_on:
            # the chart plays until the left hand plays a chord (from the next bar line)
            self.arranger.fallback = self._chart_source(gen)
            gen.set_chord_source(self.arranger)
        elif self._chart is not None:
            gen.set_chart(self._chart if self._section is None else self._chart.section(self._section))
        else:
            gen.set_chord_source(None)

    def _chart_source(self, gen) -> ChartSource | None:
        if self._chart is None or self._clock is None:
            return None
        chart = self._chart if self._section is None else self._chart.section(self._section)
        k, bar = max(0, gen.next_step), self._clock.bar_steps
        return ChartSource(chart, self._clock.meter, start=k + (-k) % bar)

    # -- the player's notes (Thread: the note's producer) -------------------------------
    def note(self, time: int, pitch: int, on: bool) -> bool:
        """True when the note is a chord key (arranger on, below the split): the band's
        chord source takes it and it is not melody."""
        return self._arranger_on and self.arranger.note(time, pitch, on)

    # -- arranger (Thread: UI) ------------------------------------------------------------
    def set_arranger(self, on: bool, split: int | None = None) -> None:
        """Arranger mode on/off; ``split``: the lowest melody note (chords below it)."""
        with self._lock:
            if split is not None:
                self.arranger.set_split(check_split(split))
            if bool(on) != self._arranger_on:
                self._arranger_on = bool(on)
                if not on:
                    self.arranger.clear()  # the model (or the chart) chooses again
                self._apply()

    @property
    def arranger_on(self) -> bool:
        return self._arranger_on

    # -- chart (Thread: UI) ---------------------------------------------------------------
    def load_chart(self, path: str | Path) -> Chart:
        """Read a chart file and loop it from the next bar line; ChartError (one line naming
        the file and line) leaves the chart that was playing."""
        p = Path(path)
        chart = load_chart(p)
        text = p.read_text(encoding="utf-8")
        self._set(chart, text, p.name)
        return chart

    def set_chart_text(self, text: str, name: str = "chart") -> Chart | None:
        """A chart typed or kept in a preset; "" clears it. ChartError naming ``name``."""
        if not text.strip():
            self.clear_chart()
            return None
        chart = parse_chart(text, name)
        self._set(chart, text, name)
        return chart

    def _set(self, chart: Chart, text: str, name: str) -> None:
        with self._lock:
            self._chart, self._chart_text, self._chart_name, self._section = chart, text, name, None
            self._apply()

    def clear_chart(self) -> None:
        with self._lock:
            self._chart, self._chart_text, self._chart_name, self._section = None, "", "", None
            self._apply()

    @property
    def chart(self) -> Chart | None:
        """The chords the band follows when nobody plays them: the loaded chart, or the
        section of it that loops; None without one."""
        with self._lock:  # the chart and its section as one (the UI thread sets them)
            chart, section = self._chart, self._section
        return chart if chart is None or section is None else chart.section(section)

    def chart_text(self) -> str:
        """The chart as text: the loaded or typed chart as written (comments kept), else ""."""
        return self._chart_text

    def save_chart(self, path: str | Path, locked: bool = False) -> Path:
        """Write the loaded chart (``locked``: the locked form, as a chart) to ``path``
        (temp file + rename). ValueError when there is none."""
        if locked:
            src = self._gen.chord_source if self._gen is not None else None
            if not self._locked or not isinstance(src, ChartSource):
                raise ValueError("no locked form to save: lock the band's form first")
            return save_chart(src.chart, path)
        if self._chart is None:
            raise ValueError("no chart to save: load or type one first")
        p = Path(path)
        if self._chart_text:
            from models.atomic import write_atomic

            return write_atomic(p, self._chart_text if self._chart_text.endswith("\n") else self._chart_text + "\n")
        return save_chart(self._chart, p)

    def sections(self) -> list[str]:
        return [] if self._chart is None else [s for s, _ in self._chart.sections]

    def loop_section(self, name: str | None) -> None:
        """Loop one section of the chart from the next bar line (None: the whole chart)."""
        with self._lock:
            if name is not None:
                if self._chart is None:
                    raise ValueError("no chart loaded: load one to loop a section of it")
                self._chart.section(name)  # ValueError naming the sections there are
            self._section = name
            self._apply()

    # -- locked form (Thread: UI) ---------------------------------------------------------
    def lock(self, bars: int) -> None:
        """Loop the band's last ``bars`` bars (2, 4, 8) from the next bar line."""
        check_lock_bars(bars)
        with self._lock:
            if self._gen is None:
                raise ValueError("the band is not playing: play, then lock what it plays")
            self._locked = int(bars)
            self._gen.lock_form(bars)

    def unlock(self) -> None:
        with self._lock:
            if not self._locked:
                return
            self._locked = 0
            gen = self._gen
            if gen is not None:
                gen.set_chart(None)
            self._apply()

    # -- practice ramp (Thread: UI) ----------------------------------------------------------
    def set_tempo_ramp(self, bpm: float | None, every: int = 1, limit: float | None = None) -> None:
        """+``bpm`` each ``every`` times round a looped chart or form (None/0: off)."""
        ramp = None if not bpm else TempoRamp(float(bpm), int(every), limit)
        with self._lock:
            self._ramp = ramp
            if self._gen is not None:
                self._gen.set_tempo_ramp(ramp)

    # -- what the UI shows (Thread: any) ------------------------------------------------------
    def state(self, step: float, key: tuple[int, str] | None = None) -> FormState:
        gen, clock = self._gen, self._clock
        k = int(step) if step >= 0 else -1
        bar = clock.bar_of(k) + 1 if (gen is not None and clock is not None and k >= 0) else 0
        src = gen.chord_source if gen is not None else None
        pos = gen.form_at(k) if (gen is not None and k >= 0) else None
        if src is self.arranger and self.arranger.token is None and self.arranger.fallback is not None:
            src = self.arranger.fallback  # the chart, until the left hand plays
            pos = src.position(k) if k >= 0 else None
        if isinstance(src, ChartSource) and k < src.start:
            pos = None
        if self._locked and isinstance(src, ChartSource) and src.chart.source == "locked form":
            what = "locked"
        elif src is self.arranger and self.arranger.token is not None:
            what = "arranger"
        elif isinstance(src, ChartSource):
            what = "section" if self._section else "chart"
        else:
            what = "model"
        n = len(src.chart.bars) if isinstance(src, ChartSource) else 0
        r = self._ramp
        return FormState(
            bar=bar,
            form_bar=pos[0] + 1 if pos else 0,
            form_bars=n,
            loop=pos[1] + 1 if pos else 0,
            section=pos[2] if pos else "",
            source=what,
            arranger=self._arranger_on,
            split=self.arranger.split,
            split_name=note_name(self.arranger.split),
            chord=self.arranger.name(key) if self._arranger_on else "",
            chart_name=self._chart_name,
            locked_bars=self._locked,
            ramp="" if r is None else f"{r.bpm:+g} BPM every {r.every}",
        )


__all__ = ["ChartError", "DEFAULT_SPLIT", "FormState", "Steering", "note_name"]
