"""MIDI in and out through mido's rtmidi backend (ALSA sequencer, or JACK MIDI).

- ``list_ports()``: input and output port names from every backend that works here, and
  a note saying why there are none (no ALSA sequencer, no JACK server). rtmidi's and
  libjack's complaints on stderr are silenced while probing.
- ``MidiInput``: opens a controller by name; its rtmidi callback thread turns note on/off,
  velocity, sustain pedal (CC64) and the chosen channel into ``PlayerNote`` calls and drops
  everything else (sysex, clock, garbage bytes: mido's parser already discards bytes
  that are not MIDI). A handler exception never reaches rtmidi.
- ``PortWatcher``: polls the port list (hot-plug): new ports can be chosen without a
  restart; the open port vanishing produces a notice and the session goes on.
- ``ComputerKeyboard``: the fallback instrument, a pure key -> pitch mapping (two octaves
  tracker-style: Z-row lower, Q-row upper; octave shift) that the UI feeds key presses.
- ``MidiOutput``: a virtual output port (or a named one) carrying each band part on its
  own channel, with optional MIDI clock (24 ppqn) and start/stop.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

from engine.events import CC_ALL_NOTES_OFF

# libjack would otherwise try to start a server of its own when none runs.
os.environ.setdefault("JACK_NO_START_SERVER", "1")

ALSA, JACK = "LINUX_ALSA", "UNIX_JACK"
CC_SUSTAIN = 64
CC_ALL_SOUND_OFF, CC_RESET_CONTROLLERS = 120, 121
# Note-ons passed at once, and per second after that: far beyond two hands (a ten-finger
# chord, a fast glissando), so only a runaway device or a MIDI file dumped at once loses
# notes, and the audio callback never gets a burst of hundreds to start in one block.
# 16 at once is what the player's synths can start in one period (engine.mixer: 4 x 4).
NOTE_BURST, NOTE_RATE = 16, 200.0
_stderr_lock = threading.Lock()


@contextlib.contextmanager
def quiet_stderr():
    """Silence C-level stderr (ALSA lib / libjack messages) for the duration.
    Process-wide and short: only around port probing and opening."""
    with _stderr_lock:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _backend(api: str):
    import mido
    return mido.Backend(f"mido.backends.rtmidi/{api}", load=True)


def _api_ports(api: str) -> tuple[list[str], list[str]]:
    """(inputs, outputs) of one rtmidi API; raises when the API cannot start here."""
    import rtmidi

    rt_api = rtmidi.API_LINUX_ALSA if api == ALSA else rtmidi.API_UNIX_JACK
    if rt_api not in rtmidi.get_compiled_api():
        raise RuntimeError(f"rtmidi was built without {api}")
    with quiet_stderr():
        mi = rtmidi.MidiIn(rtapi=rt_api, name="LiveBand probe")
        mo = rtmidi.MidiOut(rtapi=rt_api, name="LiveBand probe")
        try:
            return list(mi.get_ports()), list(mo.get_ports())
        finally:
            mi.delete()
            mo.delete()


def _jack_running(dirs: tuple[str, ...] | None = None) -> bool:
    """A JACK server we could talk to: $JACK_DEFAULT_SERVER set, or a server socket
    (``jack_<server>_<uid>_0``) that accepts a connection.

    Why not just try a client: python-rtmidi's JACK client keeps the GIL while libjack
    looks for a server, 3.4-4 ms when there is none, and the audio callback waits that
    long for the GIL. It used to take any file starting with "jack" as a server, and the
    shared-memory registry a JACK server leaves behind made the hot-plug poll try (and
    fail) every second: 43 % of the callbacks that waited over 2 ms for the GIL in a 600 s
    soak found the housekeeping thread there.
    """
    if os.environ.get("JACK_DEFAULT_SERVER"):
        return True
    import socket
    import stat

    suffix = f"_{os.getuid()}_0"
    for d in dirs or ("/dev/shm", f"/run/user/{os.getuid()}", "/tmp"):
        try:
            names = [n for n in os.listdir(d) if n.startswith("jack_") and n.endswith(suffix)]
        except OSError:
            continue
        for n in names:
            path = os.path.join(d, n)
            try:
                if not stat.S_ISSOCK(os.stat(path).st_mode):
                    continue
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(0.05)
                    s.connect(path)      # a socket left by a server that died refuses this
                return True
            except OSError:
                continue
    return False


def _api_problem(api: str, exc: Exception) -> str:
    """Why a MIDI system cannot start here, for the notice."""
    msg = str(exc)
    if api == ALSA and ("seq" in msg or "ALSA" in msg):
        return "no ALSA sequencer (/dev/snd/seq missing: load snd-seq or use JACK)"
    if api == JACK and "not running" in msg:
        return "no JACK server running"
    return f"{api}: {msg}"


def scan() -> tuple[dict[str, str], dict[str, str], str]:
    """({input name: api}, {output name: api}, note). The note explains an empty list."""
    ins: dict[str, str] = {}
    outs: dict[str, str] = {}
    problems = []
    working = []
    for api in (ALSA, JACK):
        if api == JACK and not _jack_running():
            problems.append("no JACK server running")
            continue
        try:
            i, o = _api_ports(api)
        except Exception as exc:
            problems.append(_api_problem(api, exc))
            continue
        _add_ports(ins, outs, working, api, i, o)
    note = _ports_note(ins, outs, working, lambda: "no MIDI ports: " + "; ".join(problems))
    return ins, outs, note


def _add_ports(ins: dict, outs: dict, working: list, api: str, i: list, o: list) -> None:
    """Merge one MIDI API's port names (the first API to name a port keeps it)."""
    working.append("JACK MIDI" if api == JACK else "ALSA MIDI")
    for n in i:
        ins.setdefault(n, api)
    for n in o:
        outs.setdefault(n, api)


def _ports_note(ins: dict, outs: dict, working: list, no_api_note) -> str:
    """The human-readable MIDI notice; ``no_api_note()`` is asked only when no API works."""
    if ins or outs:
        return ""
    if working:
        return f"no MIDI devices connected ({' and '.join(working)} available; plug in a controller)"
    return no_api_note()


def list_ports() -> tuple[list[str], list[str], str]:
    """(input names, output names, note) over every MIDI backend that works here."""
    ins, outs, note = scan()
    return list(ins), list(outs), note


def default_api() -> str | None:
    """The API for virtual ports: JACK when a server runs, else ALSA if it works."""
    if _jack_running():
        try:
            _api_ports(JACK)
            return JACK
        except Exception:
            pass
    try:
        _api_ports(ALSA)
        return ALSA
    except Exception:
        return None


# -- MIDI in ----------------------------------------------------------------------
NoteSink = Callable[[int, bool, int, float], None]   # (pitch, on, velocity, arrived)
ControlSink = Callable[[int, int, float], None]       # (controller, value, arrived)
RealtimeSink = Callable[[str, float, int], None]      # (clock|start|stop|continue|songpos, arrived, value)
Intercept = Callable[[object, float], bool]           # (mido message, arrived) -> consumed
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
    Thread: the one MIDI callback thread.
    """

    def __init__(self, on_note: NoteSink, on_control: ControlSink | None = None,
                 channel: int | None = None, *, on_realtime: RealtimeSink | None = None,
                 intercept: Intercept | None = None) -> None:
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
        self._tokens = float(NOTE_BURST)     # note-ons that may pass now
        self._tokens_at: float | None = None
        self._dropped: set[int] = set()       # pitches whose latest note-on was dropped
        self.ignored = 0
        self.errors = 0
        self.flooded = 0

    def __call__(self, msg) -> None:
        arrived = time.monotonic()
        try:
            self._handle(msg, arrived)
        except Exception:   # never let a bad message or a sink bug kill the MIDI thread
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
                for p in sorted(self._down | self._held_by_pedal):
                    self.on_note(p, False, 0, arrived)
                self._down.clear()
                self._held_by_pedal.clear()
                self.sustain = False
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
                if pitch not in self._down:       # the note never sounded
                    return
            self._down.discard(pitch)
            if self.sustain:
                self._held_by_pedal.add(pitch)
            else:
                self.on_note(pitch, False, 0, arrived)

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
        ins, _, note = scan()
        if api is None:
            if name not in ins:
                raise OSError(f"MIDI input {name!r} not found" + (f" ({note})" if note else
                              f"; available: {', '.join(ins) or 'none'}"))
            api = ins[name]
        self.name = name
        self.api = api
        with quiet_stderr():
            self.port = _backend(api).open_input(name, callback=handler)

    def close(self) -> None:
        with quiet_stderr():
            try:
                self.port.close()
            except Exception:
                pass


class VirtualMidiInput(MidiInput):
    """A virtual input port other programs can connect to (JACK or ALSA)."""

    def __init__(self, name: str, handler: Callable, api: str | None = None) -> None:
        api = api or default_api()
        if api is None:
            raise OSError("no MIDI system for a virtual port (no ALSA sequencer, no JACK server)")
        self.name = name
        self.api = api
        with quiet_stderr():
            self.port = _backend(api).open_input(name, client_name="LiveBand", callback=handler)


class PortWatcher:
    """Hot-plug: ``poll()`` re-scans the ports and reports what changed.

    It keeps one probe client per working MIDI system instead of opening a new one per
    poll (on JACK every new client disturbs the whole graph). A system that fails is
    retried every ``retry_s``. Thread: one owner (the session's housekeeping thread)."""

    def __init__(self, retry_s: float = 10.0) -> None:
        self.inputs: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.note = ""
        self.retry_s = retry_s
        self._probes: dict[str, tuple] = {}
        self._failed_at: dict[str, float] = {}
        self._problem: dict[str, str] = {}    # why each system failed, for the notice

    def _probe(self, api: str):
        import rtmidi

        if api in self._probes:
            return self._probes[api]
        if time.monotonic() - self._failed_at.get(api, -1e9) < self.retry_s:
            return None
        if api == JACK and not _jack_running():
            self._failed_at[api] = time.monotonic()
            self._problem[api] = "no JACK server running"
            return None
        rt_api = rtmidi.API_LINUX_ALSA if api == ALSA else rtmidi.API_UNIX_JACK
        try:
            with quiet_stderr():
                probe = (rtmidi.MidiIn(rtapi=rt_api, name="LiveBand watch"),
                         rtmidi.MidiOut(rtapi=rt_api, name="LiveBand watch"))
        except Exception as exc:
            self._failed_at[api] = time.monotonic()
            self._problem[api] = _api_problem(api, exc)
            return None
        self._probes[api] = probe
        self._problem.pop(api, None)
        return probe

    def poll(self) -> tuple[set[str], set[str]]:
        """(appeared, vanished) input names since the last poll."""
        ins: dict[str, str] = {}
        outs: dict[str, str] = {}
        working = []
        for api in (ALSA, JACK):
            probe = self._probe(api)
            if probe is None:
                continue
            try:
                with quiet_stderr():
                    i, o = probe[0].get_ports(), probe[1].get_ports()
            except Exception:           # the server went away: drop the probe, retry later
                self.close(api)
                self._problem[api] = "no JACK server running" if api == JACK else "the ALSA sequencer went away"
                continue
            _add_ports(ins, outs, working, api, i, o)
        # the notice from the probes' own failures: a fresh scan() here opened a new
        # client per system on every poll (each holding the GIL for ms, see _jack_running)
        note = _ports_note(ins, outs, working, lambda: "no MIDI ports: " + "; ".join(
            self._problem.get(api, f"{api} unavailable") for api in (ALSA, JACK)))
        appeared = set(ins) - set(self.inputs)
        vanished = set(self.inputs) - set(ins)
        self.inputs, self.outputs, self.note = ins, outs, note
        return appeared, vanished

    def close(self, api: str | None = None) -> None:
        for key in ([api] if api else list(self._probes)):
            probe = self._probes.pop(key, None)
            if probe is not None:
                with quiet_stderr():
                    for p in probe:
                        try:
                            p.delete()
                        except Exception:
                            pass
                self._failed_at[key] = time.monotonic()


# -- computer keyboard --------------------------------------------------------------
LOWER_ROW = "zsxdcvgbhnjm,l.;/"     # C .. E (one octave + a third), piano layout
UPPER_ROW = "q2w3er5t6y7ui9o0p[=]"   # C .. G one octave up


@dataclass(frozen=True)
class KeyNote:
    pitch: int
    on: bool


class ComputerKeyboard:
    """Two octaves on the computer keyboard, tracker style: the Z row plays from
    ``base`` (white keys on Z X C V..., black keys on S D G H J), the Q row from
    base + 12 (white keys on Q W E R..., black keys on 2 3 5 6 7). ``octave_up`` /
    ``octave_down`` (the UI binds e.g. PageUp/PageDown) shift both rows.

    Pure logic: ``press(key)`` / ``release(key)`` return the KeyNote to play or None.
    A key held across an octave shift releases the pitch it started. Thread: UI.
    """

    def __init__(self, base: int = 48) -> None:
        self.base = base
        self._held: dict[str, int] = {}

    def pitch_of(self, key: str) -> int | None:
        k = key.lower()
        if len(k) != 1:
            return None
        if k in LOWER_ROW:
            p = self.base + LOWER_ROW.index(k)
        elif k in UPPER_ROW:
            p = self.base + 12 + UPPER_ROW.index(k)
        else:
            return None
        return p if 0 <= p < 128 else None

    def press(self, key: str) -> KeyNote | None:
        k = key.lower()
        if k in self._held:          # auto-repeat
            return None
        p = self.pitch_of(k)
        if p is None:
            return None
        self._held[k] = p
        return KeyNote(p, True)

    def release(self, key: str) -> KeyNote | None:
        p = self._held.pop(key.lower(), None)
        return None if p is None else KeyNote(p, False)

    def octave_up(self) -> int:
        if self.base + 12 <= 96:
            self.base += 12
        return self.base

    def octave_down(self) -> int:
        if self.base - 12 >= 12:
            self.base -= 12
        return self.base

    def release_all(self) -> list[KeyNote]:
        notes = [KeyNote(p, False) for p in self._held.values()]
        self._held.clear()
        return notes


# -- MIDI out --------------------------------------------------------------------------
class MidiOutput:
    """A MIDI output: a virtual port named ``name`` (other programs connect to it) or an
    existing port. ``send_event`` takes engine.events kinds.
    Thread: one sender (the session's dispatcher thread)."""

    def __init__(self, name: str = "LiveBand band", virtual: bool = True, api: str | None = None) -> None:
        if virtual:
            api = api or default_api()
            if api is None:
                raise OSError("no MIDI system for a virtual port (no ALSA sequencer, no JACK server)")
        else:
            _, outs, note = scan()
            if name not in outs:
                raise OSError(f"MIDI output {name!r} not found" + (f" ({note})" if note else
                              f"; available: {', '.join(outs) or 'none'}"))
            api = api or outs[name]
        self.name = name
        self.api = api
        self.virtual = virtual
        self.sent = 0
        self.errors = 0
        with quiet_stderr():
            if virtual:
                self.port = _backend(api).open_output(name, client_name="LiveBand")
            else:
                self.port = _backend(api).open_output(name)

    def send_event(self, kind: int, channel: int, data1: int, data2: int) -> None:
        from engine.events import event_message

        try:
            msg = event_message(kind, channel, data1, data2, off_velocity=64)   # mido's usual release
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
        with quiet_stderr():
            try:
                self.port.close()
            except Exception:
                pass
