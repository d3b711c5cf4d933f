"""The one command-line parser. `liveband` alone opens the desktop app.

Each subcommand's work lives in ``liveband/commands/<name>.py`` as ``main(args) -> int``
and is imported only when that subcommand runs, so `liveband devices` never pays for
torch or Qt. Errors a user can fix (bad file, missing package, bad value) print one
line on stderr and exit 2; they never show a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable

from liveband import __version__
from liveband.config import (
    BACKENDS,
    DEFAULT_DENSITY,
    DEFAULT_HARMONY_FOLLOW,
    DEFAULT_LUFS,
    DEFAULT_METER,
    DEFAULT_STYLE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TEMPO,
    FILLS,
    METERS,
    STYLES,
    TEMPERATURE_RANGE,
    TEMPO_RANGE,
    TIMES,
    UNIT_RANGE,
)
from liveband.errors import UserError  # noqa: F401  (re-exported for command modules)


def _seed(text: str) -> int:
    """argparse type: a seed is a whole number >= 0 (the random generators take no other)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _number(ok: Callable[[float], bool], allowed: str) -> Callable[[str], float]:
    """argparse type: a number for which ``ok`` holds; the error says what is ``allowed``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value

    return parse


_positive = _number(lambda v: 0 < v < float("inf"), "a number above 0")
_unit = _number(lambda v: UNIT_RANGE[0] <= v <= UNIT_RANGE[1], "0-1")
# the app quits on a Qt timer, whose milliseconds are a 32-bit int
_quit_after = _number(lambda v: 0 < v <= (2**31 - 1) / 1000, "seconds above 0 (at most 2147483)")


_TEMPOS = "{:g}-{:g}".format(*TEMPO_RANGE)


def _loudness(text: str) -> float | None:
    """argparse type: a loudness target in LUFS (-70 to 0), or "off"."""
    if text.strip().lower() == "off":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LUFS (e.g. -16) or off, got {text!r}") from None
    if not -70.0 <= value <= 0.0:
        raise argparse.ArgumentTypeError(f"must be -70 to 0 LUFS, got {text}")
    return value


def _engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("band")
    g.add_argument(
        "--style",
        choices=STYLES,
        default=DEFAULT_STYLE,
        help="band style (shipped, or a .toml in the user's styles folder)",
    )
    g.add_argument(
        "--tempo", type=float, default=None, help=f"BPM, {_TEMPOS} (default: from the file, else {DEFAULT_TEMPO:g})"
    )
    g.add_argument("--meter", choices=METERS, default=None, help=f"default: from the file, else {DEFAULT_METER}")
    g.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help="creativity, {:g}-{:g}".format(*TEMPERATURE_RANGE),
    )
    g.add_argument("--density", type=float, default=DEFAULT_DENSITY, help="0 sparse .. 1 busy")
    g.add_argument("--harmony-follow", type=float, default=DEFAULT_HARMONY_FOLLOW, help="0 free .. 1 strict")
    g.add_argument(
        "--backend", choices=BACKENDS, default=None, help="default: onnx-cpu (torch-cpu when onnxruntime is missing)"
    )
    g.add_argument("--checkpoint", default=None, help="model checkpoint (.safetensors); default: shipped")
    _feel_options(g, humanise=0.0)
    g.add_argument("--seed", type=_seed, default=0)
    g.add_argument("--soundfont", default=None, help=".sf2 file (default: Debian's FluidR3_GM)")


def _feel_options(g, humanise: float | None) -> None:
    """The feel flags, the same for render and play (play: unset ones keep the app's)."""
    g.add_argument("--swing", type=_unit, default=None, help="0 straight .. 1 triplet feel (default: the style's)")
    g.add_argument("--fills", choices=FILLS, default=None, help="drum fills (default: the style's)")
    g.add_argument(
        "--time",
        dest="time_feel",
        choices=TIMES,
        default=None,
        help="the drummer's half-time / double-time feel",
    )
    g.add_argument(
        "--humanise",
        "--humanize",
        type=_unit,
        default=humanise,
        help="timing and velocity spread 0-1 (the same for the same --seed)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveband", description="LiveBand: a real-time AI accompanist.")
    parser.add_argument("--version", action="version", version=f"liveband {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("play", help="open the desktop app (the default)")
    p.add_argument("--blocksize", type=int, default=None)
    p.add_argument("--backend", choices=BACKENDS, default=None)
    p.add_argument("--quit-after", type=_quit_after, default=None, help=argparse.SUPPRESS)
    p.add_argument("--autoplay", default=None, help=argparse.SUPPRESS)
    p.add_argument("--preset", default=None, metavar="NAME", help="start with a saved band preset")
    g = p.add_argument_group("band (for this launch; unset: as the app remembers)")
    g.add_argument("--style", choices=STYLES, default=None, help="band style")
    g.add_argument("--tempo", type=float, default=None, help=f"BPM, {_TEMPOS}")
    g.add_argument("--meter", choices=METERS, default=None)
    _feel_options(g, humanise=None)
    g.add_argument(
        "--arranger",
        default=None,
        metavar="SPLIT",
        help="arranger mode: notes below SPLIT (a MIDI note number or name, e.g. 54 or F#3) are "
        "chords the band follows",
    )
    g.add_argument(
        "--chart",
        default=None,
        metavar="FILE",
        help="a chord chart (plain text, e.g. '| C | Am | F G7 |') the band loops",
    )

    sub.add_parser("devices", help="list audio and MIDI devices, SoundFont and inference backends")

    p = sub.add_parser("render", help="accompany a melody file offline into WAV (+ MIDI)")
    p.add_argument("input", help="melody .mid (or a .wav of humming/singing)")
    p.add_argument("-o", "--output", required=True, help="output .wav")
    p.add_argument("--midi-out", default=None, help="also write a multi-track .mid")
    p.add_argument(
        "--chart",
        default=None,
        metavar="FILE",
        help="a chord chart (plain text, e.g. '| C | Am | F G7 |') the band's chords follow",
    )
    p.add_argument("--tracker", choices=("pesto", "crepe"), default="pesto", help="pitch tracker for WAV input")
    p.add_argument(
        "--max-minutes",
        type=_positive,
        default=None,
        metavar="N",
        help="refuse a render longer than N minutes of audio (default 120)",
    )
    p.add_argument(
        "--stems", action="store_true", help="also write each part as a WAV beside the mix (OUT.bass.wav, ...)"
    )
    p.add_argument(
        "--loudness",
        type=_loudness,
        default=DEFAULT_LUFS,
        metavar="LUFS",
        help=f"normalise the mix to this loudness, peaks under -1 dBFS (default {DEFAULT_LUFS:g}; off: as rendered)",
    )
    _engine_options(p)

    p = sub.add_parser("transcribe", help="hummed/sung WAV -> melody MIDI")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--tracker", choices=("pesto", "crepe"), default="pesto")
    p.add_argument("--key", default=None, help="snap notes to this key's scale, e.g. 'D minor' or 'Bb'")

    p = sub.add_parser("train", help="train the accompaniment model")
    p.add_argument("--data", default=None, help="corpora folder (default ../shared/data)")
    p.add_argument("--out", default="runs/train", help="run folder (checkpoints, logs)")
    p.add_argument("--config", default=None, help="model/training config JSON")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
    p.add_argument("--workers", type=int, default=0, help="processes making the batches ahead (a GPU run: 3-6)")

    p = sub.add_parser("train-pitch", help="fine-tune the hum tracker (PESTO) on generated sung clips")
    p.add_argument("--out", default=None, help="weights file (default engine/pitch/assets/pesto_sung.safetensors)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--fresh-clips", type=int, default=None, help="new dev-style sung clips beside the dev clips")
    p.add_argument("--no-voicing", action="store_true", help="leave the voicing head as published")
    p.add_argument("--init", default=None, help="start from: mir-1k_g7 (default), sung (a 2nd round), a .safetensors")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 5e-4)")
    p.add_argument(
        "--extra-conditions",
        default=None,
        help="comma-separated conditions drawn once more each (default snr5,snr10; repeat one to weigh it more)",
    )
    p.add_argument("--tempos", default=None, help="comma-separated BPM the clips are drawn from (default 60-180 by 20)")
    p.add_argument("--report", default=None, help="write the per-hop accuracy report (JSON) here")

    p = sub.add_parser("train-onset-net", help="train the hum input's onset net on generated sung clips and hums")
    p.add_argument("--out", default=None, help="weights file (default engine/pitch/assets/onset_net.safetensors)")
    p.add_argument("--seed", type=_seed, default=0, help="crops and initial weights (the clips are fixed)")
    p.add_argument("--clips", type=int, default=None, help="generated sung clips to train on (default 1600)")
    p.add_argument("--hum-clips", type=int, default=None, help="generated hums beside them (default 800)")
    p.add_argument("--minutes", type=float, default=None, help="training time (default 25)")
    p.add_argument("--lr", type=float, default=None, help="AdamW peak learning rate (default 2e-3)")
    p.add_argument("--init", default=None, help="start from these weights (.safetensors)")

    p = sub.add_parser("eval", help="evaluate a checkpoint; prints JSON")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--jsb", default=None, help="Jsb16thSeparated.json-format file")
    p.add_argument("--split", default="valid")
    p.add_argument("--pop909", default=None, help="POP909-format folder")
    p.add_argument("--nottingham", default=None, help="Nottingham-format folder (validation tunes)")
    p.add_argument("--limit", type=int, default=None, help="at most this many songs per set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--offline-checkpoint",
        default=None,
        help="listening measures: also the checkpoint an offline render plays (default: the shipped "
        "teacher `liveband render` uses; 'none': skip)",
    )

    p = sub.add_parser("bench", help="benchmarks; each prints JSON")
    p.add_argument("what", choices=("model", "engine", "audio", "pitch", "sync"))
    p.add_argument("--seconds", type=float, default=None, help="soak length (audio/engine; sync: per source, 60)")
    p.add_argument("--blocksize", type=int, default=None)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--quick", action="store_true", help="short run for smoke tests")
    p.add_argument(
        "--load", type=int, default=0, metavar="N", help="audio: N CPU-burning processes run beside the soak"
    )
    p.add_argument(
        "--clock-delay",
        type=float,
        default=None,
        metavar="MS",
        help="sync: the MIDI clock delay setting, 0-100 ms (Setup's delay; default 0)",
    )

    p = sub.add_parser("sessions", help="list, export, rename or delete recorded sessions")
    p.add_argument("action", choices=("list", "export", "rename", "delete"), nargs="?", default="list")
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("new_name", nargs="?", default=None, help="rename: the new name")
    p.add_argument("-o", "--output", default=None, help="export folder")
    return parser


_HANDLERS = {
    "play": "liveband.commands.play",
    "devices": "liveband.devices",
    "render": "liveband.commands.render",
    "transcribe": "liveband.commands.transcribe",
    "train": "liveband.commands.train",
    "train-pitch": "liveband.commands.train_pitch",
    "train-onset-net": "liveband.commands.train_onset_net",
    "eval": "liveband.commands.evaluate",
    "bench": "liveband.commands.bench",
    "sessions": "liveband.commands.sessions",
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["play", *argv]  # `liveband --blocksize 512` is `liveband play --blocksize 512`
    for tok in argv:
        if tok == "--":
            break
        if tok.startswith("--") and tok.endswith("=--"):
            # argparse turns `--tempo=--` into an empty list, which reached the command as a TypeError
            parser.error(f"argument {tok[:-3]}: expected one argument")
    args = parser.parse_args(argv)
    command = args.command or "play"
    if command in ("play", "render"):
        from engine.styles import book

        for problem in book().problems:  # a broken user style file: one line, then on
            print(f"liveband {command}: {problem}", file=sys.stderr)
    if args.command is None:
        args = parser.parse_args(["play", *(argv if argv is not None else sys.argv[1:])])
    try:
        module = importlib.import_module(_HANDLERS[command])
        return int(module.main(args) or 0)
    except (UserError, FileNotFoundError, ValueError) as exc:
        if os.environ.get("LIVEBAND_DEBUG"):
            raise
        print(f"liveband {command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
