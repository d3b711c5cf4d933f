"""MIDI in and out through mido's rtmidi backend (ALSA sequencer, or JACK MIDI); the
ports themselves (listing, opening, hot-plug) are engine.midi_ports'.

- ``MidiInput``: opens a controller by name; its rtmidi callback thread turns note on/off,
  velocity, sustain pedal (CC64) and the chosen channel into ``PlayerNote`` calls and drops
  everything else (sysex, clock, garbage bytes: mido's parser already discards bytes
  that are not MIDI). A handler exception never reaches rtmidi.
- ``MidiOutput``: a virtual output port (or a named one) carrying each band part on its
  own channel, with optional MIDI clock (24 ppqn) and start/stop.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from engine.events import CC_ALL_NOTES_OFF
from engine.midi_ports import close_port, open_port

CC_SUSTAIN = 64
CC_ALL_SOUND_OFF, CC_RESET_CONTROLLERS = 120, 121
# Note-ons passed at once, and per second after that: far beyond two hands (a ten-finger
# chord, a fast glissando), so only a runaway device or a MIDI file dumped at once loses
# notes, and the audio callback never gets a burst of hundreds to start in one block.
# 16 at once is what the player's synths can start in one period (engine.mixer: 4 x 4).
NOTE_BURST, NOTE_RATE = 16, 200.0


# -- MIDI in ----------------------------------------------------------------------
NoteSink = Callable[[int, bool, int, float], None]  # (pitch, on, velocity, arrived)
ControlSink = Callable[[int, int, float], None]  # (controller, value, arrived)
RealtimeSink = Callable[[str, float, int], None]  # (clock|start|stop|continue|songpos, arrived, value)
Intercept = Callable[[object, float], bool]  # (mido message, arrived) -> consumed
REALTIME = ("clock", "start", "stop", "continue", "songpos")


class NoteFilter:
    """Turns raw mido messages into the player's notes: channel filtering, note-on with
    velocity 0 as note-off, sustain pedal held notes, a panic (all sound off / all notes
    off: every note ends and the pedal comes up; reset all controllers: the pedal comes
    up), a flood of note-ons thinned out (NOTE_BURST, NOTE_RATE; counted in ``flooded``,
    their note-offs dropped too), everything else ignored.

    ``on_note(pitch, on, velocity, arrived)`` gets the *musical* note events (a release
    while the pedal is down is delivered when the pedal comes up, unless the key was
    struck again); ``on_control(cc, value, arrived)`` gets the sustain pedal and the
    panic controllers for the synth. ``arrived`` is ``time.monotonic()`` when the message
    reached this filter, read before anything else, so that the player's note is timed
    from there. ``on_realtime(kind, arrived, value)`` gets MIDI clock, start, stop,
    continue and song position (value: its 16ths) for engine.sync. ``intercept(msg,
    arrived)`` sees every note and controller first (MIDI learn, bound controls): True
    consumes it.

    ``release_all`` is the input going away (closed, switched, unplugged): every note it
    holds ends as the controller's own note-offs would, and the filter takes no more.
    Thread: the one MIDI callback thread; ``release_all``: any (the port closed first: a
    message still in flight then waits for it, under the filter's lock, and is dropped).
    """

    def __init__(
        self,
        on_note: NoteSink,
        on_control: ControlSink | None = None,
        channel: int | None = None,
        *,
        on_realtime: RealtimeSink | None = None,
        intercept: Intercept | None = None,
    ) -> None:
        if channel is not None and not 0 <= channel < 16:
            raise ValueError(f"MIDI channel must be 1-16 (0-15 internally), got {channel}")
        self.on_note = on_note
        self.on_control = on_control
        self.on_realtime = on_realtime
        self.intercept = intercept
        self.channel = channel
        self.sustain = False
        self._held_by_pedal: set[int] = set()
        self._down: set[int] = set()
        self._tokens = float(NOTE_BURST)  # note-ons that may pass now
        self._tokens_at: float | None = None
        self._dropped: set[int] = set()  # pitches whose latest note-on was dropped
        self.ignored = 0
        self.errors = 0
        self.flooded = 0
        self.released = False  # release_all ran: the input is gone
        self._lock = threading.Lock()  # the MIDI thread's messages against release_all

    def __call__(self, msg) -> None:
        arrived = time.monotonic()
        with self._lock:
            if self.released:
                self.ignored += 1
                return
            try:
                self._handle(msg, arrived)
            except Exception:  # never let a bad message or a sink bug kill the MIDI thread
                self.errors += 1

    def release_all(self, arrived: float | None = None) -> None:
        """The input is gone (closed, switched, unplugged) with keys down or the pedal
        holding notes: the pedal comes up (``on_control``: the synth must not go on holding
        the channel) and each of those notes ends (``on_note``) as the controller's own
        note-off would, at ``arrived`` (default: now). Later messages are dropped. Safe to
        call twice."""
        arrived = time.monotonic() if arrived is None else arrived
        with self._lock:
            if self.released:
                return
            self.released = True
            try:
                if self.sustain and self.on_control is not None:
                    self.on_control(CC_SUSTAIN, 0, arrived)
                self._end_all(arrived)
            except Exception:  # as a message's: a sink bug does not escape
                self.errors += 1

    def _handle(self, msg, arrived: float) -> None:
        kind = getattr(msg, "type", None)
        if kind in REALTIME and self.on_realtime is not None:
            self.on_realtime(kind, arrived, int(getattr(msg, "pos", 0)))
            return
        if kind not in ("note_on", "note_off", "control_change"):
            self.ignored += 1
            return
        # a foot switch or knob box may sit on another channel than the player's notes
        if self.intercept is not None and self.intercept(msg, arrived):
            return
        if self.channel is not None and msg.channel != self.channel:
            self.ignored += 1
            return
        if kind == "control_change":
            cc = msg.control
            if cc in (CC_ALL_SOUND_OFF, CC_ALL_NOTES_OFF):
                # A panic must end notes the pedal holds too: the synth lifts the pedal on
                # it (engine.mixer), and the band hears every note end.
                if self.on_control is not None:
                    self.on_control(cc, 0, arrived)
                self._end_all(arrived)
                return
            if cc == CC_RESET_CONTROLLERS:
                if self.on_control is not None:
                    self.on_control(cc, 0, arrived)
                self._pedal_up(arrived)
                return
            if cc != CC_SUSTAIN:
                self.ignored += 1
                return
            down = msg.value >= 64
            if self.on_control is not None:
                self.on_control(CC_SUSTAIN, msg.value, arrived)
            if not down:
                self._pedal_up(arrived)
            self.sustain = down
            return
        pitch = msg.note
        if kind == "note_on" and msg.velocity > 0:
            last, self._tokens_at = self._tokens_at, arrived
            if last is not None:
                self._tokens = min(float(NOTE_BURST), self._tokens + (arrived - last) * NOTE_RATE)
            if self._tokens < 1.0:
                self.flooded += 1
                self._dropped.add(pitch)
                return
            self._tokens -= 1.0
            self._dropped.discard(pitch)
            self._down.add(pitch)
            self._held_by_pedal.discard(pitch)
            self.on_note(pitch, True, msg.velocity, arrived)
        else:
            if pitch in self._dropped:
                self._dropped.discard(pitch)
                if pitch not in self._down:  # the note never sounded
                    return
            self._down.discard(pitch)
            if self.sustain:
                self._held_by_pedal.add(pitch)
            else:
                self.on_note(pitch, False, 0, arrived)

    def _end_all(self, arrived: float) -> None:
        """Every note sounding ends (keys down and those the pedal holds); the pedal is up."""
        notes = sorted(self._down | self._held_by_pedal)
        self._down.clear()
        self._held_by_pedal.clear()
        self.sustain = False
        for p in notes:
            self.on_note(p, False, 0, arrived)

    def _pedal_up(self, arrived: float) -> None:
        """The pedal came up: release the notes it held whose keys are up."""
        if self.sustain:
            for p in sorted(self._held_by_pedal):
                if p not in self._down:
                    self.on_note(p, False, 0, arrived)
        self._held_by_pedal.clear()
        self.sustain = False


class MidiInput:
    """One open MIDI input port. ``handler`` receives each parsed mido message on
    rtmidi's thread (use a NoteFilter)."""

    def __init__(self, name: str, handler: Callable, api: str | None = None) -> None:
        self.name = name
        self.port, self.api = open_port(name, api, output=False, virtual=False, callback=handler)

    def close(self) -> None:
        close_port(self.port)


class VirtualMidiInput(MidiInput):
    """A virtual input port other programs can connect to (JACK or ALSA)."""

    def __init__(self, name: str, handler: Callable, api: str | None = None) -> None:
        self.name = name
        self.port, self.api = open_port(name, api, output=False, virtual=True, callback=handler)


# -- MIDI out --------------------------------------------------------------------------
class MidiOutput:
    """A MIDI output: a virtual port named ``name`` (other programs connect to it) or an
    existing port. ``send_event`` takes engine.events kinds.
    Thread: one sender (the session's dispatcher thread)."""

    def __init__(self, name: str = "LiveBand band", virtual: bool = True, api: str | None = None) -> None:
        self.name = name
        self.virtual = virtual
        self.sent = 0
        self.errors = 0
        self.port, self.api = open_port(name, api, output=True, virtual=virtual)

    def send_event(self, kind: int, channel: int, data1: int, data2: int) -> None:
        from engine.events import event_message

        try:
            msg = event_message(kind, channel, data1, data2, off_velocity=64)  # mido's usual release
            if msg is None:
                return
            self.port.send(msg)
            self.sent += 1
        except Exception:
            self.errors += 1

    def send_raw(self, type_: str) -> None:
        """System real-time: 'clock', 'start', 'stop', 'continue'."""
        import mido

        try:
            self.port.send(mido.Message(type_))
        except Exception:
            self.errors += 1

    def close(self) -> None:
        close_port(self.port)
