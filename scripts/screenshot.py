#!/usr/bin/env python3
"""Make docs/screenshot.png: LiveBand's window playing, under a private Xvfb display and
a private PulseAudio server (real audio, real model, real SoundFont).

    .venv/bin/python scripts/screenshot.py [--input mic|keyboard] [--seconds 14] [--out docs/screenshot.png]
    .venv/bin/python scripts/screenshot.py --input keyboard --style blues --meter 12/8 --humanise 0.3 \
        --out docs/img/feel.png      # the feel controls (docs/ui.md)
    .venv/bin/python scripts/screenshot.py --input chords --out docs/img/arranger.png

--input chords shows the Chords tab: arranger on with the split at C4, the computer
keyboard an octave down playing a chord a bar (C Am F G, Z to M) under a melody
(", . /"), then, after --seconds, Lock (the last 4 bars), and the shot 6 s later: the
left hand's chord, the split and the locked form on the tab.

--input mic (default) hums a synthetic voice into the server's software microphone, so
the shot shows the hummed-pitch line; --input keyboard plays a tune on the computer
keyboard through the app's own autoplay. Your settings are not read or changed (a
temporary settings folder is used).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_hum(path: Path, seconds: float, rate: int = 48000) -> None:
    """A hummed melody (liveband/bench/synth_hum: a voice-like source with vibrato and scoops)."""
    import numpy as np

    from liveband.bench.synth_hum import HumSpec, make_hum

    clips, total = [], 0.0
    seed = 11
    while total < seconds:
        clip = make_hum(HumSpec(seed=seed, register="female", sample_rate=rate, n_notes=10, tempo=100.0))
        clips.append(clip.audio)
        total += len(clip.audio) / rate
        seed += 1
    audio = np.concatenate(clips)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


# (start step, length, semitones above C3) over four 4/4 bars: C, Am, F, G in the left hand
# (Z to M an octave down, below the split at C4) and a melody above it (, . / = C4 D4 E4)
CHORD_TUNE = (
    *((0, 15, p) for p in (0, 4, 7)),
    (0, 4, 16),
    (4, 4, 14),
    (8, 8, 12),
    *((16, 15, p) for p in (0, 4, 9)),
    (16, 8, 12),
    (24, 8, 16),
    *((32, 15, p) for p in (0, 5, 9)),
    (32, 4, 12),
    (36, 4, 14),
    (40, 8, 16),
    *((48, 15, p) for p in (2, 7, 11)),
    (48, 16, 14),
)


class ChordHand:
    """The arranger from the computer keyboard, as a player's fingers would do it."""

    def __init__(self, win, session) -> None:
        from PyQt6.QtCore import QEvent, Qt
        from PyQt6.QtGui import QKeyEvent
        from PyQt6.QtWidgets import QApplication

        from ui.keyboard import OCTAVE_DOWN, OFFSET_KEYS
        from ui.playalong import NotePlayer

        self.win = win

        def key(k: int, down: bool) -> None:
            ev = QKeyEvent(QEvent.Type.KeyPress if down else QEvent.Type.KeyRelease, k, Qt.KeyboardModifier.NoModifier)
            QApplication.sendEvent(QApplication.focusWidget() or win, ev)

        self._key = key
        self._octave_down = OCTAVE_DOWN
        base = 48
        self.player = NotePlayer(
            session,
            [(float(s), float(n), base + o) for s, n, o in CHORD_TUNE],
            lambda pitch, down: key(OFFSET_KEYS[pitch - base], down),
            loop_steps=64,
        )

    def start(self) -> None:
        w = self.win
        w.transport.count_in.setValue(0)
        w.transport.tempo.setValue(120.0)
        c = w.chords_panel
        w.tabs.setCurrentWidget(c)
        c.split.setValue(60)
        c.arranger.setChecked(True)
        w.set_input_mode("keyboard")
        self._key(self._octave_down, True)  # [ : Z is C3, the chord hand
        self._key(self._octave_down, False)
        w.play()
        self.player.start()

    def lock(self) -> None:
        c = self.win.chords_panel
        c.lock_bars.setCurrentIndex(c.lock_bars.findData(4))
        c.lock_btn.click()

    def stop(self) -> None:
        self.player.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", choices=("mic", "keyboard", "chords"), default="mic")
    ap.add_argument("--seconds", type=float, default=14.0, help="play this long before the shot")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    ap.add_argument("--size", default="1360x820")
    ap.add_argument(
        "--blocksize",
        type=int,
        default=512,
        help="audio buffer (512 keeps a busy 2-core build machine free of dropouts)",
    )
    band = ap.add_argument_group("the band, as `liveband play` takes it")
    band.add_argument("--style")
    band.add_argument("--meter")
    band.add_argument("--tempo", type=float)
    band.add_argument("--swing", type=float)
    band.add_argument("--fills")
    band.add_argument("--time", dest="time_feel")
    band.add_argument("--humanise", type=float)
    args = ap.parse_args()
    band_args = {
        k: getattr(args, k)
        for k in ("style", "meter", "tempo", "swing", "fills", "time_feel", "humanise")
        if getattr(args, k) is not None
    }

    from liveband.bench.softaudio import SoftwareAudioServer
    from ui.xvfb import Xvfb

    tmp = Path(tempfile.mkdtemp(prefix="liveband-shot-"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    os.environ["LIVEBAND_HOME"] = str(tmp / "home")
    hum = tmp / "hum.wav"
    if args.input == "mic":
        write_hum(hum, args.seconds + 4)
    with Xvfb() as x, SoftwareAudioServer("pulse") as server:
        os.environ.update(x.env())
        from PyQt6.QtCore import QTimer

        from ui.app import make_app, make_session
        from ui.autoplay import KeyboardAutoplay
        from ui.mainwindow import MainWindow

        app = make_app()
        session, bs = make_session(blocksize=args.blocksize)
        feeder = []
        try:
            win = MainWindow(session, blocksize=bs)
            w, h = (int(v) for v in args.size.split("x"))
            win.resize(w, h)
            if band_args:
                win.apply_band(**band_args)
            win.show()
            player = KeyboardAutoplay(win) if args.input == "keyboard" else None
            if args.input == "chords":
                player = ChordHand(win, session)
                QTimer.singleShot(int((args.seconds + 6.0) * 1000), lambda: shoot())
                QTimer.singleShot(int(args.seconds * 1000), player.lock)

            def shoot() -> None:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                if not win.grab().save(args.out):
                    print(f"could not write {args.out}", file=sys.stderr)
                if player is not None:
                    player.stop()
                win.close()

            def begin() -> None:
                if player is not None:
                    player.start()
                else:
                    win.play()
                    feeder.append(server.play_into_mic(hum))
                if args.input != "chords":
                    QTimer.singleShot(int(args.seconds * 1000), shoot)

            if player is not None:
                QTimer.singleShot(300, begin)
            else:
                win.set_input_mode("mic")

                def wait_for_mic() -> None:  # the pitch tracker loads in the background
                    if any("microphone" in n for n in session.snapshot().notices):
                        QTimer.singleShot(200, wait_for_mic)
                    else:
                        begin()

                QTimer.singleShot(300, wait_for_mic)
            app.exec()
        finally:
            for p in feeder:
                p.terminate()
            session.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
