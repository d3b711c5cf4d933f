"""Running the real `liveband` command line from the model tests."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import mido

ROOT = Path(__file__).resolve().parents[2]


def melody_midi(path: Path) -> Path:
    """An eight-note melody as a MIDI file."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    for p in (60, 62, 64, 65, 67, 65, 64, 62):
        track += [mido.Message("note_on", note=p, velocity=90, time=0), mido.Message("note_off", note=p, time=480)]
    mid.tracks.append(track)
    mid.save(str(path))
    return path


def run_cli(tmp_path: Path, *args, address_space_gb: float | None = None) -> subprocess.CompletedProcess:
    """`python -m liveband.cli ARGS` in a subprocess with its cache and home inside tmp_path.
    An address-space cap keeps a loader that would allocate gigabytes from taking the
    machine with it."""
    env = {
        **os.environ,
        "LIVEBAND_CACHE": str(tmp_path / "cache"),
        "LIVEBAND_HOME": str(tmp_path / "home"),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("LIVEBAND_DEBUG", None)

    def cap() -> None:
        if address_space_gb:
            limit = int(address_space_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "liveband.cli", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap,
    )
