"""The Mixer's link to the C mixer (engine/native/callback.c's ``lb_process``, which renders
a block as engine.mixer_body does in Python): the C state over the Mixer's arrays and
synths, and what is published to it (the event queues, the event log, the tap).

C reads each published pointer once at a block's start, so what a pointer replaced is kept
alive until no block can still be using it: two blocks later, or at once with no stream
running.

Thread contract: ``open_native`` and the ``set_*`` methods are "Thread: owner" (a new
pointer is one aligned store, which the callback sees whole); ``process`` runs on the
mixer's one rendering thread (offline; live, PortAudio calls the C callback itself).
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import native as _nat
from engine.events import EventQueue
from engine.mixer_body import WORK_RING
from engine.synth import c_functions_for

if TYPE_CHECKING:
    from engine.mixer import Mixer


class NativeLink:
    """The C mixer driving one Mixer (``open_native`` makes it)."""

    def __init__(self, lib: Any, state: _nat.MixerState) -> None:
        self.lib = lib  # engine.native's ctypes library
        self.state = state
        self.address = ctypes.addressof(state)  # what engine.audio_out hands the C callback
        # what is published now (by kind), and what was replaced while a block may still
        # be reading it: (mixer.blocks then, object)
        self._published: dict[str, object] = {}
        self._retired: list[tuple[int, object]] = []

    def process(self, out: np.ndarray, xrun: bool) -> None:
        """Render one block (C-contiguous float32 (frames, 2), checked by the caller)."""
        self.lib.lb_process(self.address, out.ctypes.data, out.shape[0], 1 if xrun else 0)

    def set_queues(self, queues: tuple[EventQueue, ...], blocks: int, live: bool) -> None:
        if len(queues) > _nat.MAX_QUEUES:
            raise ValueError(f"at most {_nat.MAX_QUEUES} event queues per mixer, got {len(queues)}")
        table = _nat.QueueTable()
        table.n = len(queues)
        for i, q in enumerate(queues):
            table.q[i] = q.native_ref()
        self._publish("queues", (table, queues), blocks, live)
        self.state.qtable = ctypes.addressof(table)

    def set_log(self, q: EventQueue | None, blocks: int, live: bool) -> None:
        ref = q.native_ref() if q is not None else None
        self._publish("log", (ref, q), blocks, live)
        self.state.log = ctypes.addressof(ref) if ref is not None else None

    def set_tap(self, ref: _nat.Ring | None, keep: object, blocks: int, live: bool) -> None:
        """``ref``: the ring C writes each block to (None: no tap); ``keep``: what it points into."""
        self._publish("tap", (ref, keep), blocks, live)
        self.state.tap = ctypes.addressof(ref) if ref is not None else None

    def _publish(self, what: str, keep: object, blocks: int, live: bool) -> None:
        """Keep ``keep`` (the structures about to be handed to C, and what they point
        into) alive while published, and the one it replaces until no block can still be
        using it. ``blocks``: the mixer's block count now; ``live``: a stream runs."""
        old = self._published.get(what)
        self._published[what] = keep
        if old is not None:
            self._retired.append((blocks, old))
        self._retired = [(b, o) for b, o in self._retired if live and blocks < b + 2]


def open_native(mixer: Mixer) -> tuple[NativeLink | None, str | None]:
    """The C mixer over ``mixer``'s arrays and synth, or (None, why not): the library did
    not load, or the synth is not engine.synth.Synth's own FluidSynth."""
    lib = _nat.lib()
    if lib is None:
        return None, _nat.unavailable
    fns = c_functions_for(mixer.synth)
    if fns is None:
        return None, f"{type(mixer.synth).__name__} is not engine.synth.Synth's own FluidSynth"
    st = _nat.MixerState()
    st.write, st.noteon, st.noteoff, st.cc, st.progsel, st.voices = fns
    a = _nat.addr
    st.ints, st.dbls = a(mixer._ints), a(mixer._dbls)
    st.vol, st.part_cc7, st.mute, st.prog = a(mixer._vol), a(mixer._part_cc7), a(mixer._mute), a(mixer._prog)
    st.applied_vol, st.applied_prog, st.held = a(mixer._applied_vol), a(mixer._applied_prog), a(mixer._held)
    st.synths[0] = mixer.synth.native_ref()
    st.xbuf, st.ramp, st.gbuf = a(mixer._xbuf), a(mixer._ramp), a(mixer._gbuf)
    click = mixer._metronome
    st.click_hi, st.click_lo, st.click_len = a(click.click_hi), a(click.click_lo), click.click_hi.shape[0]
    st.cbuf = a(click.buf)
    st.work_ns, st.work_frames, st.work_ring = a(mixer.work_ns), a(mixer.work_frames), WORK_RING
    return NativeLink(lib, st), None
