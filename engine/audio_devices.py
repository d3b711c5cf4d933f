"""PortAudio's devices: the lock every PortAudio call holds, re-scanning, listing, and
negotiating a sample rate; and raising the stream's threads to real-time scheduling.

Thread: any (each PortAudio call holds PA_LOCK).
"""

from __future__ import annotations

import os
import threading
from typing import Any

PREFERRED_RATES = (48000, 44100, 96000, 88200, 32000, 22050)
# PortAudio's device list and stream table are process-global and not thread-safe: a
# re-scan (terminate + initialize) while another thread opens a stream or queries the
# devices corrupts its heap. Every PortAudio call LiveBand makes holds this lock.
PA_LOCK = threading.RLock()
# Audio-server client threads started inside PortAudio that carry the stream's data
# (libpulse's threaded mainloop; JACK's client threads are real-time already).
IO_THREAD_NAMES = ("threaded-ml",)


class AudioUnavailable(RuntimeError):
    """No usable output device (message says what is missing and how to fix it)."""


def sounddevice() -> Any:
    """The sounddevice module; AudioUnavailable when PortAudio is missing."""
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio missing
        raise AudioUnavailable(
            f"PortAudio is not available ({exc}); install it with 'sudo apt-get install libportaudio2'"
        ) from None
    return sd


def refresh_devices() -> None:
    """Re-scan PortAudio's device list (a server that started or stopped since)."""
    from engine.midi_ports import quiet_stderr  # libjack/ALSA complain on stderr while probing

    sd = sounddevice()
    with PA_LOCK, quiet_stderr():
        try:
            sd._terminate()
        except Exception:
            pass
        sd._initialize()


def _device_names(channels_key: str, at_least: int) -> list[str]:
    sd = sounddevice()
    try:
        with PA_LOCK:
            return [d["name"] for d in sd.query_devices() if d[channels_key] >= at_least]
    except Exception:
        return []


def device_table() -> tuple[list[dict[str, Any]], list[str], tuple[Any, Any]]:
    """PortAudio's devices (its dicts: name, hostapi, channels, default rate...), its host
    APIs' names and the default (input, output) devices, read together under PA_LOCK.
    AudioUnavailable when PortAudio is missing; PortAudio's own error (no server, no card)
    passes through."""
    sd = sounddevice()
    with PA_LOCK:
        devices = [dict(d) for d in sd.query_devices()]
        apis = [str(h["name"]) for h in sd.query_hostapis()]
        default_in, default_out = sd.default.device
    return devices, apis, (default_in, default_out)


def output_devices() -> list[str]:
    """Names of the devices that play stereo."""
    return _device_names("max_output_channels", 2)


def input_devices() -> list[str]:
    """Names of the devices that record."""
    return _device_names("max_input_channels", 1)


def negotiate_rate(device: str | int | None, preferred: int) -> int:
    """The preferred rate if the device takes it, else its default rate, else the first
    common rate it accepts. AudioUnavailable when there is no output device at all."""
    sd = sounddevice()
    with PA_LOCK:
        try:
            info = sd.query_devices(device, "output")
        except Exception as exc:
            if device is not None:
                raise AudioUnavailable(
                    f"audio output {device!r} not found ({exc}); choose one of: {', '.join(output_devices()) or 'none'}"
                ) from None
            raise AudioUnavailable(
                "no audio output device (no sound card and no audio server found); start "
                "PulseAudio/PipeWire or JACK, or plug in a sound card"
            ) from None
        candidates = [preferred, int(info["default_samplerate"]), *PREFERRED_RATES]
        for rate in dict.fromkeys(candidates):
            try:
                sd.check_output_settings(device=device, samplerate=rate, channels=2, dtype="float32")
                return int(rate)
            except Exception:
                continue
    raise AudioUnavailable(f"output device {info['name']!r} accepts none of the rates {PREFERRED_RATES}")


def thread_ids() -> set[int]:
    """This process's kernel thread ids (empty where /proc is not Linux's)."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def _thread_name(tid: int) -> str:
    try:
        with open(f"/proc/self/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def make_realtime(priority: int) -> bool:
    """Ask SCHED_FIFO at ``priority`` for the calling thread, so other busy processes
    cannot preempt it (needs root, CAP_SYS_NICE or an rtprio limit). Whether it got it."""
    if priority <= 0 or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (OSError, ValueError):
        return False


def make_io_realtime(before: set[int], priority: int) -> int:
    """Give the audio server's client threads started since ``before`` (``thread_ids()``
    then: the PulseAudio client's ``threaded-ml`` mainloop) SCHED_FIFO at ``priority``.

    Why: with PulseAudio (and PipeWire's pulse layer) PortAudio's callback thread only
    writes into the client library; that library's mainloop thread moves the data to the
    server and wakes the callback thread for the next block. At normal priority a busy
    neighbour delays it by 10-50 ms, and the stream underflows. Returns how many threads
    were raised."""
    if priority <= 0 or not hasattr(os, "sched_setscheduler"):
        return 0
    raised = 0
    for tid in thread_ids() - before:
        if _thread_name(tid) not in IO_THREAD_NAMES:
            continue
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
            raised += 1
        except (OSError, ValueError):
            pass
    return raised
