"""`liveband devices`: what this machine offers LiveBand, as one table."""
from __future__ import annotations

import argparse
import io
import os
from contextlib import redirect_stderr


def _audio_rows() -> list[tuple[str, str, str]]:
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        return [("audio", "unavailable", f"{exc}; install it with 'sudo apt-get install libportaudio2'")]
    try:
        devices = sd.query_devices()
    except Exception as exc:  # no server, no card
        return [("audio", "none", f"no audio devices ({exc})")]
    if len(devices) == 0:
        return [("audio", "none", "no audio devices or audio server found (start PulseAudio/PipeWire or JACK)")]
    rows = []
    default_in, default_out = sd.default.device
    hostapis = sd.query_hostapis()
    for i, d in enumerate(devices):
        api = hostapis[d["hostapi"]]["name"]
        sr = int(d["default_samplerate"])
        if d["max_output_channels"] > 0:
            mark = " (default)" if i == default_out else ""
            rows.append(("audio out", f"[{i}] {d['name']}{mark}", f"{api}, {d['max_output_channels']} ch, {sr} Hz"))
        if d["max_input_channels"] > 0:
            mark = " (default)" if i == default_in else ""
            rows.append(("audio in", f"[{i}] {d['name']}{mark}", f"{api}, {d['max_input_channels']} ch, {sr} Hz"))
    return rows


def _midi_rows() -> list[tuple[str, str, str]]:
    try:
        from engine.midi_io import list_ports
    except ImportError:
        list_ports = None
    if list_ports is not None:
        try:
            ins, outs, note = list_ports()
        except Exception as exc:
            return [("MIDI", "unavailable", str(exc))]
    else:  # pragma: no cover - before engine.midi_io exists
        import mido
        buf = io.StringIO()
        with redirect_stderr(buf):
            try:
                ins, outs, note = mido.get_input_names(), mido.get_output_names(), ""
            except Exception as exc:
                ins, outs, note = [], [], str(exc)
    rows = [("MIDI in", n, "") for n in ins] + [("MIDI out", n, "") for n in outs]
    if not rows:
        rows.append(("MIDI", "none", note or "no MIDI ports (no ALSA sequencer or JACK server)"))
    return rows


def _soundfont_rows() -> list[tuple[str, str, str]]:
    from liveband.paths import find_soundfont
    try:
        sf = find_soundfont()
    except FileNotFoundError as exc:
        return [("SoundFont", "missing", str(exc))]
    return [("SoundFont", str(sf), f"{sf.stat().st_size / 1e6:.0f} MB")]


def _provider_rows() -> list[tuple[str, str, str]]:
    rows = []
    try:
        import torch
        rows.append(("inference", f"torch {torch.__version__} CPU", f"{torch.get_num_threads()} threads"))
        if torch.cuda.is_available():
            rows.append(("inference", "torch CUDA", torch.cuda.get_device_name(0)))
        else:
            rows.append(("inference", "torch CUDA", "not available"))
    except ImportError as exc:
        rows.append(("inference", "torch", f"not installed ({exc})"))
    try:
        import onnxruntime as ort
        av = ort.get_available_providers()
        rows.append(("inference", f"onnxruntime {ort.__version__} CPU",
                     "available" if "CPUExecutionProvider" in av else "not available"))
        rows.append(("inference", "onnxruntime CUDA",
                     "provider built in (used when a CUDA GPU is present)" if "CUDAExecutionProvider" in av
                     else "not available"))
    except ImportError as exc:
        rows.append(("inference", "onnxruntime", f"not installed ({exc})"))
    return rows


def collect() -> list[tuple[str, str, str]]:
    return _audio_rows() + _midi_rows() + _soundfont_rows() + _provider_rows()


def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="LiveBand devices", title_justify="left")
    table.add_column("kind", style="bold cyan", no_wrap=True)
    table.add_column("name")
    table.add_column("details", style="dim")
    for row in collect():
        table.add_row(*row)
    Console(width=max(100, int(os.environ.get("COLUMNS", "0") or 0))).print(table)
    return 0
