"""`liveband devices` tells a person at a glance what the machine offers."""
import os
import subprocess
import sys


def _run_devices(env=None):
    return subprocess.run([sys.executable, "-m", "liveband.cli", "devices"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "160", **(env or {})}, timeout=120)


def test_devices_lists_the_software_server_soundfont_and_backends(pulse_server):
    out = _run_devices()   # the child inherits PULSE_SERVER from the fixture
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
