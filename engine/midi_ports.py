"""MIDI ports through mido's rtmidi backend (ALSA sequencer, or JACK MIDI): listing the
ports of every backend that works here (with a note saying why there are none), opening
and closing one, and hot-plug (``PortWatcher``). rtmidi's and libjack's complaints on
stderr are silenced while probing and opening.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Callable

# libjack would otherwise try to start a server of its own when none runs.
os.environ.setdefault("JACK_NO_START_SERVER", "1")

ALSA, JACK = "LINUX_ALSA", "UNIX_JACK"
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
    long for the GIL. And not any file starting with "jack": the shared-memory registry
    a JACK server leaves behind would make the hot-plug poll try (and fail) every second,
    each try a GIL wait for the callback.
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
                    s.connect(path)  # a socket left by a server that died refuses this
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
    working: list[str] = []
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


def open_port(name: str, api: str | None, *, output: bool, virtual: bool, callback: Callable | None = None):
    """An open mido port: a virtual one named ``name`` (other programs connect to it) on
    ``api`` (None: ``default_api()``), or the existing port ``name`` (on ``api``, or on
    whichever system lists it). Returns (port, api); OSError saying what is missing."""
    if virtual:
        api = api or default_api()
        if api is None:
            raise OSError("no MIDI system for a virtual port (no ALSA sequencer, no JACK server)")
    else:
        ins, outs, note = scan()
        have = outs if output else ins
        if name not in have:
            raise OSError(
                f"MIDI {'output' if output else 'input'} {name!r} not found"
                + (f" ({note})" if note else f"; available: {', '.join(have) or 'none'}")
            )
        api = api or have[name]
    kw = {"client_name": "LiveBand"} if virtual else {}
    with quiet_stderr():
        backend = _backend(api)
        port = backend.open_output(name, **kw) if output else backend.open_input(name, callback=callback, **kw)
    return port, api


def close_port(port) -> None:
    """Close a port opened by ``open_port``; a port whose system went away closes quietly."""
    with quiet_stderr():
        try:
            port.close()
        except Exception:
            pass


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
        self._problem: dict[str, str] = {}  # why each system failed, for the notice

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
                probe = (
                    rtmidi.MidiIn(rtapi=rt_api, name="LiveBand watch"),
                    rtmidi.MidiOut(rtapi=rt_api, name="LiveBand watch"),
                )
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
        working: list[str] = []
        for api in (ALSA, JACK):
            probe = self._probe(api)
            if probe is None:
                continue
            try:
                with quiet_stderr():
                    i, o = probe[0].get_ports(), probe[1].get_ports()
            except Exception:  # the server went away: drop the probe, retry later
                self.close(api)
                self._problem[api] = "no JACK server running" if api == JACK else "the ALSA sequencer went away"
                continue
            _add_ports(ins, outs, working, api, i, o)
        # the notice from the probes' own failures: a fresh scan() here opened a new
        # client per system on every poll (each holding the GIL for ms, see _jack_running)
        note = _ports_note(
            ins,
            outs,
            working,
            lambda: "no MIDI ports: " + "; ".join(self._problem.get(api, f"{api} unavailable") for api in (ALSA, JACK)),
        )
        appeared = set(ins) - set(self.inputs)
        vanished = set(self.inputs) - set(ins)
        self.inputs, self.outputs, self.note = ins, outs, note
        return appeared, vanished

    def close(self, api: str | None = None) -> None:
        for key in [api] if api else list(self._probes):
            probe = self._probes.pop(key, None)
            if probe is not None:
                with quiet_stderr():
                    for p in probe:
                        try:
                            p.delete()
                        except Exception:
                            pass
                self._failed_at[key] = time.monotonic()
