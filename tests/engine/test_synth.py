"""engine.synth is the one binding of FluidSynth's C functions: the plain render
(GIL released), the GIL-holding calls the Python audio callback makes, and the addresses
the C callback calls all reach the same library, and play the same notes the same."""

import ctypes
import pathlib
import re

import numpy as np

from engine import synth as S
from engine.synth import Synth

SR = 48000


def _play(render, note_on, note_off) -> np.ndarray:
    out = np.zeros((4096, 2), np.float32)
    render(out, 0, 1000)
    note_on(0, 60, 100)
    note_on(0, 64, 90)
    render(out, 1000, 3000)
    note_off(0, 60)
    render(out, 3000, 4096)
    return out


def test_the_gil_holding_calls_render_exactly_what_the_plain_ones_do(soundfont):
    with Synth(soundfont, SR, reverb=False) as a, Synth(soundfont, SR, reverb=False) as b:
        plain = _play(a.render_into, a.note_on, a.note_off)
        g = b.gil_holding()
        held = _play(g.render_into, g.note_on, g.note_off)
        assert np.abs(plain).max() > 0.01
        assert np.array_equal(plain, held)
        assert a.frames_rendered == b.frames_rendered == 4096
        assert g.active_voices() == a.active_voices() > 0
        # PYFUNCTYPE keeps the GIL in C; CFUNCTYPE (the plain render) releases it
        assert g._write._flags_ & ctypes._FUNCFLAG_PYTHONAPI
        assert not a._write_float._flags_ & ctypes._FUNCFLAG_PYTHONAPI


def test_the_c_callbacks_addresses_are_the_bound_functions():
    addrs = S.native_functions()
    assert addrs is not None and len(addrs) == len(S._C_FUNCTIONS) == 6
    for name, addr in zip(S._C_FUNCTIONS, addrs):
        assert ctypes.cast(S._bind(name, hold_gil=True), ctypes.c_void_p).value == addr, name


def test_only_engine_synth_binds_fluidsynth():
    """No other engine module reaches into pyfluidsynth or declares FluidSynth functions."""
    engine = pathlib.Path(S.__file__).parent
    for path in engine.rglob("*.py"):
        if path.name == "synth.py" and path.parent == engine:
            continue
        text = path.read_text()
        for needle in (r"import fluidsynth", r"fluid_synth_", r"ctypes\.(PY|C)FUNCTYPE", r"\._fl\b"):
            assert not re.search(needle, text), f"{path.relative_to(engine.parent)} has {needle!r}"
