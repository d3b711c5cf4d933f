"""LiveBand.ini: read as plain text, never unpickled; a bad value falls back to its
default with a notice naming the file and the key; QSettings-written files still read."""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
from pathlib import Path

from PyQt6.QtCore import QSettings

from ui import settings as st


class _Payload:
    """Unpickling this creates ``marker`` (builtins.open in write mode)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _pickled_variant(marker: Path) -> str:
    """An INI value as PyQt writes a Python object: @Variant(QDataStream of a
    PyQt_PyObject holding pickle bytes), every byte escaped as \\xHH."""
    data = pickle.dumps(_Payload(marker), protocol=2)
    name = b"PyQt_PyObject\0"
    blob = struct.pack(">I", 0x7F) + struct.pack(">I", len(name)) + name + struct.pack(">I", len(data)) + data
    return "@Variant(" + "".join(f"\\x{b:02x}" for b in blob) + ")"


def _write_evil_ini(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[transport]\nmeter=3/4\ntempo={_pickled_variant(marker)}\n[devices]\nblocksize=512\n")


def test_the_crafted_entry_runs_code_through_qsettings(tmp_path):
    """Control: the payload is live; an untyped QSettings read (the old code) unpickles it."""
    ini, marker = tmp_path / "evil.ini", tmp_path / "ran"
    _write_evil_ini(ini, marker)
    code = (
        "import sys; from PyQt6.QtCore import QSettings; "
        "s = QSettings(sys.argv[1], QSettings.Format.IniFormat); s.value('transport/tempo')"
    )
    subprocess.run([sys.executable, "-c", code, str(ini)], capture_output=True, timeout=60)
    assert marker.exists()


def test_a_pickled_entry_is_never_loaded(tmp_path):
    ini, marker = tmp_path / "LiveBand.ini", tmp_path / "ran"
    _write_evil_ini(ini, marker)
    s = st.open_settings(ini)
    assert st.read(s, "transport/tempo") == 100.0  # the default
    assert st.read(s, "transport/meter") == "3/4"  # the rest of the section still reads
    assert st.read(s, "devices/blocksize") == 512
    assert not marker.exists()
    assert any(str(ini) in n and "transport/tempo" in n for n in s.notices), s.notices


def test_the_window_starts_from_a_pickled_settings_file_without_running_it(
    themed_app, qtbot, fake_session, _settings_in_tmp, tmp_path
):
    """The app's own path: MainWindow with no settings given opens the user's
    LiveBand.ini (in the test's config folder), restores, and saves on close."""
    from ui.mainwindow import MainWindow

    ini, marker = _settings_in_tmp / "LiveBand" / "LiveBand.ini", tmp_path / "ran"
    _write_evil_ini(ini, marker)
    assert Path(st.settings_path()) == ini
    w = MainWindow(fake_session)
    qtbot.addWidget(w)
    w.show()
    assert w.transport.tempo.value() == 100.0
    assert w.transport.meter.currentData() == "3/4"
    assert "transport/tempo" in w.notice_text.text()
    w.close()
    assert not marker.exists()
    text = ini.read_text()
    assert "@Variant" not in text and "PyQt_PyObject" not in text
    # What the window saved reads back, through QSettings too (typed: nothing to unpickle now).
    assert QSettings(str(ini), QSettings.Format.IniFormat).value("transport/meter", type=str) == "3/4"
    assert not marker.exists()


def test_bad_values_fall_back_to_defaults_with_a_notice_naming_file_and_key(tmp_path):
    ini = tmp_path / "LiveBand.ini"
    ini.write_text(
        "[devices]\nblocksize=3\ninput_gain_db=9000\n[transport]\ntempo=abc\ncount_in=2\n"
        "meter=5/9\n[band]\nstyle=polka\n[parts]\nbass\\volume=7\n"
    )
    s = st.open_settings(ini)
    assert st.read(s, "devices/blocksize") == 256
    assert st.read(s, "devices/input_gain_db") == 0
    assert st.read(s, "transport/tempo") == 100.0
    assert st.read(s, "transport/count_in") == 2
    assert st.read(s, "transport/meter") == "4/4"
    assert st.read(s, "band/style") == "pop"
    assert st.read(s, "parts/bass/volume", 1.0) == 1.0
    for key in (
        "devices/blocksize",
        "devices/input_gain_db",
        "transport/tempo",
        "transport/meter",
        "band/style",
        "parts/bass/volume",
    ):
        assert sum(str(ini) in n and key in n for n in s.notices) == 1, (key, s.notices)
    assert st.read(s, "devices/blocksize") == 256 and len(s.notices) == 6  # each said once


def test_the_app_opens_its_session_with_the_default_buffer_when_the_file_has_a_bad_one(
    themed_app, qtbot, fake_session, _settings_in_tmp
):
    from ui.mainwindow import MainWindow

    ini = _settings_in_tmp / "LiveBand" / "LiveBand.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[devices]\nblocksize=3\n[transport]\ntempo=abc\n")
    w = MainWindow(fake_session)
    qtbot.addWidget(w)
    assert w.blocksize == 256
    assert w.transport.tempo.value() == 100.0
    notices = w.notice_text.text()
    assert "devices/blocksize" in notices and "transport/tempo" in notices and "LiveBand.ini" in notices
    w.close()


def test_qsettings_files_read_and_our_files_read_in_qsettings(tmp_path):
    ini = tmp_path / "LiveBand.ini"
    q = QSettings(str(ini), QSettings.Format.IniFormat)
    q.setValue("devices/audio_out", 'HDA Intel, "PCH" ; analog=1')
    q.setValue("parts/bass/mute", True)
    q.setValue("transport/tempo", 87.5)
    q.setValue("input/mode", "@mic")
    q.sync()
    del q
    s = st.open_settings(ini)
    assert st.read(s, "devices/audio_out") == 'HDA Intel, "PCH" ; analog=1'
    assert st.read(s, "parts/bass/mute", False) is True
    assert st.read(s, "transport/tempo") == 87.5
    assert s.raw("input/mode") == "@mic"
    st.write(s, "devices/midi_in", "Keystation\t49 ab")
    st.write(s, "window/geometry", b"\x01\xd9\xd0\xcb\x00")
    s.sync()
    q = QSettings(str(ini), QSettings.Format.IniFormat)
    assert q.value("devices/audio_out", type=str) == 'HDA Intel, "PCH" ; analog=1'
    assert q.value("devices/midi_in", type=str) == "Keystation\t49 ab"
    assert q.value("parts/bass/mute", type=bool) is True
    assert q.value("input/mode", type=str) == "@mic"
    again = st.open_settings(ini)
    assert st.read(again, "window/geometry") == b"\x01\xd9\xd0\xcb\x00"
    assert st.read(again, "devices/midi_in") == "Keystation\t49 ab"
    assert not again.notices
    assert not list(tmp_path.glob("*.tmp"))


def test_liveband_play_starts_from_a_hostile_settings_file_under_xvfb(pulse_server, tmp_path):
    """The real entry point: `liveband play` with a pickled entry and blocksize=3 in
    LiveBand.ini starts, says what it ignored (file and key), runs nothing, and saves a
    clean file on close."""
    import os

    from ui.xvfb import Xvfb

    ini, marker = tmp_path / "config" / "LiveBand" / "LiveBand.ini", tmp_path / "ran"
    _write_evil_ini(ini, marker)
    ini.write_text(ini.read_text().replace("blocksize=512", "blocksize=3"))
    exe = Path(sys.executable).parent / "liveband"
    with Xvfb() as x:
        env = dict(
            os.environ, **x.env(), XDG_CONFIG_HOME=str(tmp_path / "config"), LIVEBAND_HOME=str(tmp_path / "home")
        )
        proc = subprocess.run(
            [str(exe), "play", "--quit-after", "3"], env=env, capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not marker.exists()
    notes = [ln for ln in proc.stderr.splitlines() if ln.startswith("liveband: note:")]
    assert any(str(ini) in n and "transport/tempo" in n for n in notes), proc.stderr[-3000:]
    assert any(str(ini) in n and "devices/blocksize=3" in n for n in notes), proc.stderr[-3000:]
    text = ini.read_text()
    assert "@Variant" not in text and "blocksize=256" in text and "meter=3/4" in text


def test_the_defaults_and_choices_are_the_band_s(tmp_path):
    """Each default and choice lives once (issue 16): the file falls back to what the
    session and the command line use, and accepts the modes they accept."""
    from liveband import config
    from liveband.config import AudioConfig, EngineConfig

    s = st.open_settings(tmp_path / "LiveBand.ini")
    e, a = EngineConfig(), AudioConfig()
    assert st.read(s, "transport/meter") == e.meter
    assert st.read(s, "transport/count_in") == e.count_in_bars
    assert st.read(s, "band/style") == e.style
    assert st.read(s, "devices/blocksize") == a.blocksize
    assert st.read(s, "input/mode") == config.DEFAULT_INPUT_MODE
    assert st.CHECKS["input/mode"][1] == "one of " + ", ".join(config.INPUT_MODES)
    assert st.CHECKS["devices/sync"][1] == "one of " + ", ".join(config.SYNC_MODES)
    assert st.CHECKS["chords/split"][1] == "{}-{}".format(*config.SPLIT_RANGE)
