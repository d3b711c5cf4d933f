"""`liveband devices`: what this machine offers LiveBand, as one table."""

from __future__ import annotations

import argparse
import os


def _audio_rows() -> list[tuple[str, str, str]]:
    from engine.audio_devices import AudioUnavailable, device_table

    try:
        devices, hostapis, (default_in, default_out) = device_table()  # under the PortAudio lock
    except AudioUnavailable as exc:  # PortAudio library missing
        return [("audio", "unavailable", str(exc))]
    except Exception as exc:  # no server, no card
        return [("audio", "none", f"no audio devices ({exc})")]
    if len(devices) == 0:
        return [("audio", "none", "no audio devices or audio server found (start PulseAudio/PipeWire or JACK)")]
    rows = []
    for i, d in enumerate(devices):
        api = hostapis[d["hostapi"]]
        sr = int(d["default_samplerate"])
        if d["max_output_channels"] > 0:
            mark = " (default)" if i == default_out else ""
            rows.append(("audio out", f"[{i}] {d['name']}{mark}", f"{api}, {d['max_output_channels']} ch, {sr} Hz"))
        if d["max_input_channels"] > 0:
            mark = " (default)" if i == default_in else ""
            rows.append(("audio in", f"[{i}] {d['name']}{mark}", f"{api}, {d['max_input_channels']} ch, {sr} Hz"))
    return rows


def _midi_rows() -> list[tuple[str, str, str]]:
    from engine.midi_ports import list_ports

    try:
        ins, outs, note = list_ports()
    except Exception as exc:  # no rtmidi, no ALSA sequencer
        return [("MIDI", "unavailable", str(exc))]
    rows = [("MIDI in", n, "") for n in ins] + [("MIDI out", n, "") for n in outs]
    if not rows:
        rows.append(("MIDI", "none", note or "no MIDI ports (no ALSA sequencer or JACK server)"))
    return rows


# SoundFont 2.04 "pdta" sub-chunks and their record sizes, in the order the spec fixes
_PDTA = {
    b"phdr": 38,
    b"pbag": 4,
    b"pmod": 10,
    b"pgen": 4,
    b"inst": 22,
    b"ibag": 4,
    b"imod": 10,
    b"igen": 4,
    b"shdr": 46,
}


def soundfont_problem(path: str | os.PathLike) -> str | None:
    """None when ``path`` has the structure of a SoundFont 2 file (RIFF 'sfbk' whose size
    matches the file, with INFO, sdta and pdta lists and whole pdta records), else why
    not, in a few words. Reads only chunk headers, so it is cheap on a 140 MB font."""
    import struct

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
                return "not a SoundFont 2 file (no RIFF 'sfbk' header)"
            riff_end = 8 + struct.unpack("<I", head[4:8])[0]
            if riff_end > size:
                return f"truncated ({size} of {riff_end} bytes)"
            lists: dict[bytes, tuple[int, int]] = {}
            pos = 12
            while pos + 12 <= riff_end:
                f.seek(pos)
                cid, clen, kind = struct.unpack("<4sI4s", f.read(12))
                if cid == b"LIST":
                    lists[kind] = (pos + 12, pos + 8 + clen)
                pos += 8 + clen + (clen & 1)
            missing = [k.decode() for k in (b"INFO", b"sdta", b"pdta") if k not in lists]
            if missing:
                return f"not a SoundFont 2 file (no {', '.join(missing)} list)"
            pos, end = lists[b"pdta"]
            for cid, rec in _PDTA.items():
                f.seek(pos)
                got = f.read(8)
                if pos + 8 > end or len(got) < 8:
                    return f"damaged: the preset data ends before '{cid.decode()}'"
                gid, glen = struct.unpack("<4sI", got)
                least = 2 if cid in (b"phdr", b"inst", b"shdr") else 1  # entries + the terminal one
                if gid != cid or glen % rec or glen < least * rec:
                    return f"damaged: bad '{cid.decode()}' chunk in the preset data"
                pos += 8 + glen
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    return None


def _soundfont_rows() -> list[tuple[str, str, str]]:
    from liveband.paths import find_soundfont

    try:
        sf = find_soundfont()
    except FileNotFoundError as exc:
        return [("SoundFont", "missing", str(exc))]
    problem = soundfont_problem(sf)
    if problem is not None:
        return [
            (
                "SoundFont",
                "unusable",
                f"{sf}: {problem}; pass --soundfont FILE.sf2 or set "
                f"LIVEBAND_SOUNDFONT (the Debian GM font: 'sudo apt-get install --reinstall fluid-soundfont-gm')",
            )
        ]
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
        rows.append(
            (
                "inference",
                f"onnxruntime {ort.__version__} CPU",
                "available" if "CPUExecutionProvider" in av else "not available",
            )
        )
        rows.append(
            (
                "inference",
                "onnxruntime CUDA",
                "provider built in (used when a CUDA GPU is present)"
                if "CUDAExecutionProvider" in av
                else "not available",
            )
        )
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
