"""FluidSynth General MIDI synthesizer (pyfluidsynth) rendering into caller-owned buffers.

``render_into`` writes float32 stereo straight into a preallocated numpy array through
``fluid_synth_write_float``, so the audio callback allocates nothing per block.

This module is LiveBand's one binding of FluidSynth's C functions (``_C_FUNCTIONS``):
``Synth.render_into`` calls them as CFUNCTYPE (the GIL released for the call), the Python
audio callback through ``Synth.gil_holding()`` as PYFUNCTYPE (the GIL kept), and the C
callback (engine/native) through their addresses (``native_functions``).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.native import SynthRef

try:
    # pyfluidsynth prints where it found the library to stdout when $CI is set; stdout is
    # the CLI's JSON channel, so the import keeps that line to itself.
    with contextlib.redirect_stdout(io.StringIO()):
        import fluidsynth as _fs
except (ImportError, OSError) as exc:  # pragma: no cover - depends on the machine
    _fs = None
    _IMPORT_ERROR: ImportError | OSError | None = exc
else:
    _IMPORT_ERROR = None

# GM percussion lives on MIDI channel 10 (index 9).
DRUM_CHANNEL = 9


# The FluidSynth C functions LiveBand calls itself, as (return type, argument types): the
# one ctypes binding of them. pyfluidsynth's Python API sets a synth up (settings,
# SoundFont, programs); the per-block calls go through these.
_C_FUNCTIONS = {
    "fluid_synth_write_float": (
        ctypes.c_int,
        (
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ),
    ),
    "fluid_synth_noteon": (ctypes.c_int, (ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int)),
    "fluid_synth_noteoff": (ctypes.c_int, (ctypes.c_void_p, ctypes.c_int, ctypes.c_int)),
    "fluid_synth_cc": (ctypes.c_int, (ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int)),
    "fluid_synth_program_select": (
        ctypes.c_int,
        (ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int),
    ),
    "fluid_synth_get_active_voice_count": (ctypes.c_int, (ctypes.c_void_p,)),
}


def _library() -> Any:
    """The libfluidsynth pyfluidsynth loaded (its module's ``_fl``: the handles its synths
    hand out belong to that very library, so this binds nothing else)."""
    return _fs._fl


def _bind(name: str, hold_gil: bool) -> Any:
    """``name`` from libfluidsynth as a ctypes function. ``hold_gil``: a PYFUNCTYPE
    prototype, which keeps the GIL while in C (see GilHoldingSynth); else CFUNCTYPE,
    which releases it for the call."""
    restype, argtypes = _C_FUNCTIONS[name]
    proto = ctypes.PYFUNCTYPE if hold_gil else ctypes.CFUNCTYPE
    return proto(restype, *argtypes)((name, _library()))


def native_functions() -> tuple[int, ...] | None:
    """Addresses of fluid_synth_write_float, _noteon, _noteoff, _cc, _program_select and
    _get_active_voice_count, in that order (for the C audio callback, engine/native), or
    None without FluidSynth."""
    if _fs is None:
        return None
    try:
        lib = _library()
        return tuple(
            ctypes.cast(getattr(lib, n), ctypes.c_void_p).value  # type: ignore[misc]  # found: not NULL
            for n in _C_FUNCTIONS
        )
    except AttributeError:
        return None


def c_functions_for(synth: object) -> tuple[int, ...] | None:
    """``native_functions()`` when the C mixer can drive ``synth``: a Synth of this
    module's own. A subclass with its own render_into, note or control methods plays
    through Python (C would bypass them): None, as without FluidSynth."""
    names = ("render_into", "note_on", "note_off", "control_change", "set_program", "active_voices", "twin")
    if not isinstance(synth, Synth) or any(getattr(type(synth), n) is not getattr(Synth, n) for n in names):
        return None
    return native_functions()


class SoundFontError(RuntimeError):
    """A SoundFont could not be loaded."""


class Synth:
    """A General MIDI synth on one SoundFont.

    Thread: ``render_into`` and the note methods are called by one thread at a time
    (the audio thread live, the render thread offline). Construction happens elsewhere.
    """

    def __init__(
        self,
        soundfont: str | Path,
        sample_rate: int = 48000,
        gain: float = 0.5,
        reverb: bool = True,
        polyphony: int = 128,
    ) -> None:
        if _fs is None:
            raise RuntimeError(
                f"FluidSynth is not available ({_IMPORT_ERROR}); install it with 'sudo apt-get install fluidsynth'"
            )
        self.sample_rate = int(sample_rate)
        self.soundfont = Path(soundfont)
        self._options: dict[str, Any] = {"gain": float(gain), "reverb": bool(reverb), "polyphony": int(polyphony)}
        # Frames rendered so far (``frames_rendered``; an array so that the C callback
        # counts its own renders in it). FluidSynth applies events only at its own
        # 64-frame period boundaries, counted from its first rendered frame, so whoever
        # needs to know where those boundaries fall (Mixer) reads this.
        self._frames = np.zeros(1, dtype=np.int64)
        self._twins: list[Synth] = []
        if not self.soundfont.is_file():
            raise SoundFontError(f"SoundFont not found: {self.soundfont}")
        self._synth = _fs.Synth(gain=float(gain), samplerate=float(self.sample_rate))
        self._synth.setting("synth.polyphony", int(polyphony))
        self._synth.setting("synth.reverb.active", 1 if reverb else 0)
        self._synth.setting("synth.chorus.active", 0)
        self._sfid = self._synth.sfload(str(self.soundfont))
        if self._sfid == -1:
            self._synth.delete()
            raise SoundFontError(f"cannot load SoundFont {self.soundfont}: not a valid .sf2 file")
        self._write_float = _bind("fluid_synth_write_float", hold_gil=False)
        self._handle = self._synth.synth
        for ch in range(16):
            self.set_program(ch, 0)
        self._synth.program_select(DRUM_CHANNEL, self._sfid, 128, 0)

    @property
    def frames_rendered(self) -> int:
        return int(self._frames[0])

    @frames_rendered.setter
    def frames_rendered(self, v: int) -> None:
        self._frames[0] = v

    def native_ref(self) -> SynthRef:
        """This synth for the C callback (engine.native.SynthRef). Thread: owner."""
        from engine.native import SynthRef

        if self._synth is None:
            raise RuntimeError("the synth is closed")
        return SynthRef(self._handle, self._frames.ctypes.data, self._sfid)

    def gil_holding(self) -> GilHoldingSynth:
        """This synth's per-block calls bound to keep the GIL (the Python audio
        callback's way to call it). Thread: owner."""
        if self._synth is None:
            raise RuntimeError("the synth is closed")
        return GilHoldingSynth(self)

    def twin(self, polyphony: int | None = None) -> "Synth":
        """A second synth with the same SoundFont and settings (the mixer's phase-shifted
        player synth), with its own voice limit if ``polyphony`` is given (FluidSynth then
        steals released, then sustained, then the oldest voices).
        Thread: not audio (it loads the SoundFont)."""
        opts = dict(self._options)
        if polyphony is not None:
            opts["polyphony"] = int(polyphony)
        twin = Synth(self.soundfont, self.sample_rate, **opts)
        self._twins.append(twin)  # closed with this one
        return twin

    # -- control -------------------------------------------------------------
    def set_program(self, channel: int, program: int) -> None:
        """Choose GM program 0-127 on a channel (the drum channel uses the drum bank)."""
        if not 0 <= program < 128:
            raise ValueError(f"GM program must be 0-127, got {program}")
        bank = 128 if channel == DRUM_CHANNEL else 0
        self._synth.program_select(channel, self._sfid, bank, program)

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        self._synth.noteon(channel, pitch, velocity)

    def note_off(self, channel: int, pitch: int) -> None:
        self._synth.noteoff(channel, pitch)

    def control_change(self, channel: int, control: int, value: int) -> None:
        self._synth.cc(channel, control, value)

    def all_notes_off(self) -> None:
        for ch in range(16):
            self._synth.cc(ch, 64, 0)  # FluidSynth keeps what the pedal holds through CC123
            self._synth.cc(ch, 123, 0)

    def active_voices(self) -> int:
        """Voices sounding now (a note is one or more voices; releasing ones count)."""
        return int(self._synth.get_active_voice_count())

    # -- audio ---------------------------------------------------------------
    def render_into(self, out: np.ndarray, start: int = 0, stop: int | None = None) -> None:
        """Render frames [start, stop) of ``out`` (shape (frames, 2), float32, C-contiguous).

        Writes in place, allocates nothing. Thread: audio (live) or render (offline).
        """
        stop = out.shape[0] if stop is None else stop
        n = stop - start
        if n <= 0:
            return
        base = out.ctypes.data + start * 8  # 2 channels x 4 bytes per frame
        self._write_float(self._handle, n, base, 0, 2, base, 1, 2)
        self.frames_rendered += n

    def render(self, frames: int) -> np.ndarray:
        """Convenience for offline use: a new (frames, 2) float32 array."""
        out = np.zeros((frames, 2), dtype=np.float32)
        self.render_into(out)
        return out

    def close(self) -> None:
        for twin in self._twins:
            twin.close()
        self._twins.clear()
        if self._synth is not None:
            self._synth.delete()
            self._synth = None

    def __enter__(self) -> "Synth":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GilHoldingSynth:
    """The calls the Python audio callback makes to a Synth (render, notes, controllers,
    voice count), bound as ``ctypes.PYFUNCTYPE`` prototypes: unlike CFUNCTYPE bindings
    (pyfluidsynth's, and ``Synth.render_into``'s) they keep the GIL while in C.

    Why: a CFUNCTYPE call releases the GIL and must win it back afterwards. On a busy
    machine the thread that took it meanwhile (the model, the pitch tracker) may be
    preempted while holding it, and the real-time callback then waits for that thread
    to be scheduled again: several such hand-offs per block are what make the p99 of
    the callback's work time. Holding the GIL for the few hundred microseconds of
    rendering costs the other threads nothing they would notice.
    """

    def __init__(self, synth: Synth) -> None:
        self.synth = synth
        self._h = synth._handle
        self._write = _bind("fluid_synth_write_float", hold_gil=True)
        self._noteon = _bind("fluid_synth_noteon", hold_gil=True)
        self._noteoff = _bind("fluid_synth_noteoff", hold_gil=True)
        self._cc = _bind("fluid_synth_cc", hold_gil=True)
        self._voices = _bind("fluid_synth_get_active_voice_count", hold_gil=True)

    def render_into(self, out: np.ndarray, start: int, stop: int) -> None:
        n = stop - start
        if n > 0:
            base = out.ctypes.data + start * 8
            self._write(self._h, n, base, 0, 2, base, 1, 2)
            self.synth.frames_rendered += n

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        self._noteon(self._h, channel, pitch & 127, velocity & 127)

    def note_off(self, channel: int, pitch: int) -> None:
        self._noteoff(self._h, channel, pitch & 127)

    def control_change(self, channel: int, control: int, value: int) -> None:
        self._cc(self._h, channel, control & 127, value & 127)

    def set_program(self, channel: int, program: int) -> None:
        self.synth.set_program(channel, program)

    def active_voices(self) -> int:
        voices: int = self._voices(self._h)
        return voices
