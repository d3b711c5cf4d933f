"""`liveband devices` tells a person at a glance what the machine offers."""

import os
import subprocess
import sys


def _run_devices(env=None):
    return subprocess.run(
        [sys.executable, "-m", "liveband.cli", "devices"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
        timeout=120,
    )


def test_devices_lists_the_software_server_soundfont_and_backends(pulse_server):
    out = _run_devices()  # the child inherits PULSE_SERVER from the fixture
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "audio out" in text and "audio in" in text
    assert "SoundFont" in text and ".sf2" in text
    assert "torch" in text and "onnxruntime" in text


def test_devices_without_any_audio_server_says_so_and_exits_0(tmp_path):
    env = {"PULSE_SERVER": f"unix:{tmp_path}/no-such-socket", "JACK_DEFAULT_SERVER": "no-such-jack"}
    out = _run_devices(env)
    assert out.returncode == 0, out.stderr
    assert "no audio devices" in out.stdout


# -- a SoundFont is listed as usable only when it is one (issue 15) -------------------
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SMALL_GM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def _fonts(tmp_path) -> dict[str, Path]:
    rng = __import__("numpy").random.default_rng(15)
    fonts = {
        "random": tmp_path / "random.sf2",
        "header only": tmp_path / "header.sf2",
        "truncated": tmp_path / "truncated.sf2",
        "real": tmp_path / "real.sf2",
    }
    fonts["random"].write_bytes(rng.integers(0, 256, 200_000, dtype="uint8").tobytes())
    fonts["header only"].write_bytes(
        b"RIFF" + (200_000).to_bytes(4, "little") + b"sfbk" + rng.integers(0, 256, 199_996, dtype="uint8").tobytes()
    )
    shutil.copyfile(SMALL_GM, fonts["real"])
    fonts["truncated"].write_bytes(SMALL_GM.read_bytes()[:1_000_000])
    return fonts


@pytest.mark.skipif(not SMALL_GM.is_file(), reason="needs the Debian TimGM6mb SoundFont")
def test_the_soundfont_check_agrees_with_fluidsynth(tmp_path):
    from engine.synth import SoundFontError, Synth
    from liveband.devices import soundfont_problem

    for name, path in _fonts(tmp_path).items():
        problem = soundfont_problem(path)
        try:
            Synth(path, reverb=False).close()
            loads = True
        except SoundFontError:
            loads = False
        assert (problem is None) == loads, (name, problem)
        assert (problem is None) == (name == "real"), (name, problem)


@pytest.mark.skipif(not SMALL_GM.is_file(), reason="needs the Debian TimGM6mb SoundFont")
def test_devices_does_not_list_a_random_bytes_sf2_as_usable(tmp_path):
    fonts = _fonts(tmp_path)
    no_audio = {"PULSE_SERVER": f"unix:{tmp_path}/no-such-socket", "JACK_DEFAULT_SERVER": "no-such-jack"}
    out = _run_devices({**no_audio, "LIVEBAND_SOUNDFONT": str(fonts["random"])})
    assert out.returncode == 0, out.stderr
    row = next(ln for ln in out.stdout.splitlines() if "SoundFont" in ln)
    assert "unusable" in row and "MB" not in row
    assert "random.sf2" in out.stdout and "not a SoundFont" in out.stdout
    out = _run_devices({**no_audio, "LIVEBAND_SOUNDFONT": str(fonts["real"])})
    row = next(ln for ln in out.stdout.splitlines() if "SoundFont" in ln)
    assert "real.sf2" in row and "6 MB" in row


def test_devices_reads_portaudio_under_its_lock():
    """PortAudio's device list is process-global: `devices` waits while another thread holds
    the lock every PortAudio call takes (a re-scan or a stream opening)."""
    import threading

    import sounddevice  # noqa: F401  (imported here, so the thread below has only the query to do)

    from engine.audio_devices import PA_LOCK
    from liveband.devices import _audio_rows

    rows: list = []
    done = threading.Event()
    reader = threading.Thread(target=lambda: (rows.extend(_audio_rows()), done.set()), daemon=True)
    with PA_LOCK:
        reader.start()
        assert not done.wait(1.0), "the device list was read while another thread held PA_LOCK"
    assert done.wait(60) and rows
