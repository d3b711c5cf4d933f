"""The C audio callback (callback.c): its build, its loading, and the memory layouts it shares.

``lib()`` returns the loaded library, or None when it cannot be built or loaded; the
reason is in ``unavailable`` (one line; the session shows it as a notice). scripts/setup.sh builds it; ``lib()`` also
(re)builds it when the .so is missing or older than callback.c and a C compiler exists,
writing a temporary file in this folder and renaming it into place.

The structures below mirror callback.c's (``lb_sizes`` checks them at load). Python owns
every byte the C side touches (numpy arrays, ctypes structures) and keeps it alive for as
long as the C side may use it: nothing published to it is ever freed while it runs.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from models.atomic import atomic_path

if TYPE_CHECKING:
    import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "callback.c"
LIBRARY = HERE / "_callback.so"
ABI = 3
MAX_QUEUES = 16
PLAYER_PHASES = 4
TIMING_RING = 1024

# Mixer ints (callback.c: I_*)
(
    I_CLOCK,
    I_BLOCKS,
    I_XRUNS,
    I_LATE,
    I_APPLIED,
    I_CTL_VERSION,
    I_CTL_APPLIED,
    I_RESET,
    I_PLAYER_CH,
    I_NEXTRA,
    I_EV_CAP,
    I_MAX_BLOCK,
    I_METRO_SEQ,
    I_PHASE0,
) = range(14)
I_XPER0 = I_PHASE0 + 1 + PLAYER_PHASES
I_XSTARTS0 = I_XPER0 + PLAYER_PHASES
I_DROPPED = I_XSTARTS0 + PLAYER_PHASES
I_AUDIBLE_XRUNS = I_DROPPED + 1
I_NONFINITE = I_DROPPED + 2
N_INTS = I_DROPPED + 3
# Mixer doubles (D_*)
(D_PEAK, D_GR_DB, D_GAIN, D_MASTER, D_CEILING, D_RELEASE, D_M_ON) = range(7)
N_DBLS = 17
METRO_N = N_DBLS - D_M_ON
# Output-stream ints / doubles (O_*, OD_*)
O_BLK_N, O_CONV_N, O_LAST_BLOCK_CLOCK, O_RT_PRIO, O_REALTIME = range(5)
O_N_INTS = 5
OD_CONV_PREV, OD_CONV_CUR, OD_LAST_BLOCK_TIME, OD_LAST_DAC_OFFSET, OD_RATE = range(5)
OD_N_DBLS = 5

_p = ctypes.c_void_p
_i64 = ctypes.c_int64


class Queue(ctypes.Structure):
    """An EventQueue: its slots, mask, and [write, read, dropped] indices."""

    _fields_ = [("buf", _p), ("mask", _i64), ("idx", _p)]


class QueueTable(ctypes.Structure):
    _fields_ = [("n", _i64), ("q", Queue * MAX_QUEUES)]


class Ring(ctypes.Structure):
    """An AudioRing: its frames, capacity, [write, read, overflows, dropped_frames, first_time]."""

    _fields_ = [("buf", _p), ("cap", _i64), ("idx", _p)]


class SynthRef(ctypes.Structure):
    _fields_ = [("handle", _p), ("frames", _p), ("sfid", _i64)]


class MixerState(ctypes.Structure):
    _fields_ = [
        ("write", _p),
        ("noteon", _p),
        ("noteoff", _p),
        ("cc", _p),
        ("progsel", _p),
        ("voices", _p),
        ("ints", _p),
        ("dbls", _p),
        ("vol", _p),
        ("part_cc7", _p),
        ("mute", _p),
        ("prog", _p),
        ("applied_vol", _p),
        ("applied_prog", _p),
        ("held", _p),
        ("synths", SynthRef * (1 + PLAYER_PHASES)),
        ("xbuf", _p),
        ("ramp", _p),
        ("gbuf", _p),
        ("click_hi", _p),
        ("click_lo", _p),
        ("click_len", _i64),
        ("cbuf", _p),
        ("work_ns", _p),
        ("work_frames", _p),
        ("work_ring", _i64),
        ("qtable", _p),
        ("log", _p),
        ("tap", _p),
        ("metro", ctypes.c_double * METRO_N),
        ("xpos", _i64 * PLAYER_PHASES),
    ]


class OutState(ctypes.Structure):
    _fields_ = [
        ("m", _p),
        ("ints", _p),
        ("dbls", _p),
        ("blk_clock", _p),
        ("blk_time", _p),
        ("blk_dac", _p),
        ("blk_lead", _p),
        ("blk_entry", _p),
        ("blk_xrun", _p),
        ("rt_thread", ctypes.c_ulong),
        ("rt_known", _i64),
    ]


unavailable: str | None = None
_lib: ctypes.CDLL | None = None
_tried = False


def build(target: Path = LIBRARY) -> None:
    """Compile callback.c into ``target`` (temp file in the same folder, renamed into
    place). CalledProcessError / OSError when there is no compiler or it fails."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise OSError("no C compiler (install it with 'sudo apt-get install gcc libc6-dev')")
    with atomic_path(target, suffix=".so") as tmp:
        subprocess.run(
            [cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE), "-lm", "-pthread"],
            check=True,
            capture_output=True,
            text=True,
        )


def _check(lib: ctypes.CDLL) -> None:
    lib.lb_abi.restype = ctypes.c_int
    lib.lb_sizes.restype = ctypes.c_int
    lib.lb_sizes.argtypes = [ctypes.c_int]
    if lib.lb_abi() != ABI:
        raise OSError(f"{LIBRARY.name} is ABI {lib.lb_abi()}, this LiveBand needs {ABI}: rebuild it")
    want = [
        ctypes.sizeof(MixerState),
        ctypes.sizeof(OutState),
        ctypes.sizeof(QueueTable),
        N_INTS,
        N_DBLS,
        O_N_INTS,
        OD_N_DBLS,
    ]
    got = [lib.lb_sizes(i) for i in range(len(want))]
    if got != want:
        raise OSError(f"{LIBRARY.name} layout {got} does not match engine/native ({want}): rebuild it")


def lib() -> ctypes.CDLL | None:
    """The loaded C callback library, or None (``unavailable`` says why). Thread: any
    (the first call loads; later calls return what it found)."""
    global _lib, _tried, unavailable
    if _tried:
        return _lib
    _tried = True
    if os.environ.get("LIVEBAND_PY_CALLBACK"):
        unavailable = "LIVEBAND_PY_CALLBACK is set"
        return None
    try:
        stale = not LIBRARY.exists() or (SOURCE.exists() and LIBRARY.stat().st_mtime < SOURCE.stat().st_mtime)
        if stale:
            build()
        so = ctypes.CDLL(str(LIBRARY))
        _check(so)
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or "").strip().splitlines()
        unavailable = f"cannot build {LIBRARY.name}: {lines[0] if lines else f'compiler exit {exc.returncode}'}"
        return None
    except OSError as exc:
        unavailable = f"cannot load {LIBRARY.name}: {exc}"
        return None
    so.lb_process.restype = None
    so.lb_process.argtypes = [_p, _p, _i64, ctypes.c_int]
    _lib = so
    return so


def callback_address() -> int:
    """Address of ``lb_pa_callback`` (a PaStreamCallback)."""
    address: int = ctypes.cast(_lib.lb_pa_callback, _p).value  # type: ignore[union-attr, assignment]  # after lib() loaded it
    return address


def int_field(array: str, i: int) -> property:
    """A property over element ``i`` of the int64 array in attribute ``array`` (one the C
    side shares: the Mixer's ``_ints``, AudioOut's ``_oi``)."""

    def get(self: object) -> int:
        return int(getattr(self, array)[i])

    def put(self: object, v: int) -> None:
        getattr(self, array)[i] = v

    return property(get, put)


def dbl_field(array: str, i: int) -> property:
    """A property over element ``i`` of the float64 array in attribute ``array``."""

    def get(self: object) -> float:
        return float(getattr(self, array)[i])

    def put(self: object, v: float) -> None:
        getattr(self, array)[i] = v

    return property(get, put)


def addr(a: np.ndarray) -> int:
    """Data address of a numpy array (it must stay alive while C uses it)."""
    address: int = a.ctypes.data
    return address
