"""Start the desktop app: one QApplication, one Session, one MainWindow.

Used by ``liveband play`` (liveband/commands/play.py) and scripts/screenshot.py.
"""

from __future__ import annotations

import signal
import sys

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from ui import settings as st
from ui.icon import make_icon
from ui.theme import apply_dark_theme


def make_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), themed."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
        app.setOrganizationName(st.ORG)
        app.setApplicationName(st.APP)
        app.setApplicationDisplayName("LiveBand")
    assert isinstance(app, QApplication)  # LiveBand's process makes only a QApplication
    if not app.property("liveband_themed"):
        apply_dark_theme(app)
        app.setWindowIcon(make_icon())
        app.setProperty("liveband_themed", True)
    return app


def make_session(blocksize: int | None = None, backend: str | None = None, settings=None):
    """A live Session on the system's default audio devices with the remembered (or given)
    buffer size. Returns (session, blocksize). The window then moves the session to the
    remembered devices if they are still connected (MainWindow._restore_devices)."""
    from liveband.config import AudioConfig, EngineConfig
    from liveband.session import Session

    settings = st.as_settings(settings)
    bs = int(blocksize or st.read(settings, "devices/blocksize"))
    engine = EngineConfig() if backend is None else EngineConfig(backend=backend)
    return Session(engine_config=engine, audio_config=AudioConfig(blocksize=bs)), bs


def run(
    blocksize: int | None = None,
    backend: str | None = None,
    quit_after: float | None = None,
    autoplay: str | None = None,
    preset=None,
    preset_name: str | None = None,
    band: dict | None = None,
    steer: dict | None = None,
) -> int:
    """Open the window and run until it closes (``preset``: a loaded liveband.presets.Preset
    put on the band once the window has restored the remembered settings; ``band``: this
    launch's style, tempo, meter and feel, as ``MainWindow.apply_band`` takes them, after
    the preset; ``steer``: {"arranger": split, "chart": path} as the Chords tab sets them).
    Returns the exit code."""
    from ui.autoplay import MODES, KeyboardAutoplay
    from ui.mainwindow import MainWindow

    if autoplay is not None and autoplay not in MODES:
        raise ValueError(f"--autoplay must be one of {', '.join(MODES)}, got {autoplay!r}")
    app = make_app()
    settings = st.open_settings()
    session, bs = make_session(blocksize, backend, settings)
    try:
        win = MainWindow(session, settings, blocksize=bs)
        if preset is not None:
            win.use_preset(preset, preset_name or "")
        if band:
            win.apply_band(**band)
        if steer:
            win.apply_steering(**steer)
        for notice in settings.notices:
            print(f"liveband: note: {notice}", file=sys.stderr)
        win.show()
        player = None
        if autoplay:
            player = KeyboardAutoplay(win)
            QTimer.singleShot(300, player.start)
        if quit_after is not None:
            QTimer.singleShot(int(quit_after * 1000), win.close)
        # Ctrl+C in the terminal closes the window properly (Python sees signals only
        # when the interpreter runs, so a timer wakes it up).
        signal.signal(signal.SIGINT, lambda *_: win.close())
        wake = QTimer()
        wake.start(200)
        wake.timeout.connect(lambda: None)
        app.exec()
        if player is not None:
            player.stop()
    finally:
        for told in session.close():
            print(f"liveband: {told}", file=sys.stderr)
    return 0
