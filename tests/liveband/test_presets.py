"""Band presets (issue 19 item 2) on the real Session, and the player's own part as a
mixer strip (item 1): a preset saved here reloads in a fresh process to the same state;
a corrupt or hostile preset is one line and changes nothing."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liveband import presets as pr
from liveband.cli import main
from liveband.config import EngineConfig
from liveband.paths import presets_dir
from liveband.session import Session

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def config_home(tmp_path, monkeypatch, liveband_home):
    """Presets (and everything else of the user's config) inside the test's tmp folder."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("LIVEBAND_PRESETS", raising=False)
    return tmp_path / "config"


def setup_band(s: Session) -> None:
    """A setup far from every default."""
    s.set_style("jazz")
    s.set_meter("3/4")
    s.set_tempo(132.0)
    s.set_key("D minor")
    s.set_temperature(1.3)
    s.set_density(0.2)
    s.set_harmony_follow(0.85)
    s.set_master_volume(0.6)
    s.set_feel(swing=0.4, fills="more", time_feel="half", humanise=0.3)
    s.set_part("bass", program=35, volume=0.7)
    s.set_part("keys", mute=True, program=4)
    s.set_part("drums", solo=True, volume=0.9)
    s.set_part("melody", program=65, volume=0.5, through=False)
    s.set_chart_text(CHART)


CHART = "A: | Dm | Gm | A7 | Dm |\nB: | Bb | Gm | A7 | A7 |\n"


FRESH = """
import json, sys
from liveband import presets as pr
from liveband.session import Session
with Session(start_audio=False) as s:
    pr.apply(s, pr.load_preset(sys.argv[1]))
    print(json.dumps(pr.capture(s).to_json()))
"""


def test_a_saved_preset_reloads_in_a_fresh_process_to_the_same_state(config_home):
    with Session(EngineConfig(), start_audio=False) as s:
        setup_band(s)
        state = pr.capture(s)
        path = pr.save_preset("late night trio", state)
    assert path.parent == config_home / "LiveBand" / "presets" == presets_dir()
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temporary left
    saved = json.loads(path.read_text())
    assert saved["style"] == "jazz" and saved["parts"]["melody"]["through"] is False
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", FRESH, "late night trio"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout.strip().splitlines()[-1])
    assert again == state.to_json()
    # and it is not the state a fresh session starts in
    assert again["tempo"] == 132.0 and again["key"] == "D minor" and again["swing"] == 0.4
    assert again["parts"]["bass"]["program"] == 35 and again["parts"]["keys"]["mute"] is True
    # the chord chart comes back too, sections and all
    assert again["chart"] == CHART == saved["chart"]


def test_a_preset_without_a_chart_leaves_the_band_to_find_its_chords(config_home):
    with Session(EngineConfig(), start_audio=False) as s:
        pr.save_preset("free", pr.capture(s))
        assert pr.capture(s).chart is None
        s.set_chart_text(CHART)
        assert s.chart_sections() == ["A", "B"]
        pr.apply(s, pr.load_preset("free"))
        assert s.chart_text() == "" and pr.capture(s).chart is None


HOSTILE = {
    "pickle.json": pickle.dumps({"tempo": 120}),
    "notjson.json": b"{tempo: 120,",
    "array.json": b"[1, 2, 3]",
    "deep.json": b"[" * 100000 + b"]" * 100000,
    "huge.json": b'{"liveband_preset": 1, "chart": "' + b"x" * 300000 + b'"}',
    "types.json": json.dumps({"liveband_preset": 1, "tempo": "fast"}).encode(),
    "range.json": json.dumps({"liveband_preset": 1, "tempo": 1e9}).encode(),
    "part.json": json.dumps({"liveband_preset": 1, "parts": {"bass": {"program": 300}}}).encode(),
    "unknown.json": json.dumps({"liveband_preset": 1, "__reduce__": "os.system"}).encode(),
    "nan.json": b'{"liveband_preset": 1, "density": NaN}',
    "nopreset.json": json.dumps({"tempo": 120}).encode(),
    "badchart.json": json.dumps({"liveband_preset": 1, "tempo": 90, "chart": "| C | Xyz7 |"}).encode(),
}


def test_a_corrupt_or_hostile_preset_is_one_line_and_changes_nothing(config_home, capsys):
    folder = presets_dir()
    folder.mkdir(parents=True)
    for name, data in HOSTILE.items():
        (folder / name).write_bytes(data)
    with Session(start_audio=False) as s:
        before = pr.capture(s).to_json()
        for name in HOSTILE:
            with pytest.raises(pr.PresetError) as exc:
                pr.apply(s, pr.load_preset(name[:-5]))
            msg = str(exc.value)
            assert "\n" not in msg and name in msg and len(msg) < 300, msg
        assert pr.capture(s).to_json() == before
    # from the command line: one line, exit 2, before any window opens
    rc = main(["play", "--preset", "pickle"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "pickle.json" in err[0], err
    rc = main(["play", "--preset", "missing one"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no preset named 'missing one'" in err[0], err


def test_preset_names_cannot_escape_the_folder(config_home, tmp_path):
    with Session(start_audio=False) as s:
        state = pr.capture(s)
    for bad in ("../outside", "/etc/passwd", ".hidden", "", "a\\b", "x" * 200, "tab\there"):
        with pytest.raises(pr.PresetError):
            pr.save_preset(bad, state)
    assert not (tmp_path / "outside.json").exists() and pr.list_presets() == []
    pr.save_preset("ok", state)
    pr.delete_preset("ok")
    assert pr.list_presets() == []


def test_your_own_part_has_program_volume_mute_and_through(config_home):
    """The melody channel through the real mixer and SoundFont synth: Thru off or mute
    silences the player's notes; the program and volume reach the synth."""

    def played(s: Session) -> np.ndarray:
        s.key_event(72, True)
        audio = s.mixer.render(24000)
        s.key_event(72, False)
        s.mixer.render(48000)  # let it ring out
        return audio

    def rms(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x**2)))

    with Session(start_audio=False) as s:
        assert "melody" in s.snapshot().parts
        loud = rms(played(s))
        assert loud > 1e-3
        s.set_part("melody", through=False)
        assert rms(played(s)) < loud * 1e-3
        s.set_part("melody", through=True, mute=True)
        assert rms(played(s)) < loud * 1e-3
        s.set_part("melody", mute=False, volume=0.3)
        quiet = rms(played(s))
        assert quiet < loud * 0.5

        def attack(x: np.ndarray) -> int:  # frames until half the peak
            env = np.abs(x[:, 0])
            return int(np.argmax(env > 0.5 * env.max()))

        s.set_part("melody", volume=1.0)
        flute = attack(played(s))
        s.set_part("melody", program=0)  # piano instead of the flute
        piano = attack(played(s))
        assert piano * 3 < flute  # a struck string speaks at once
        with pytest.raises(ValueError):
            s.set_part("bass", through=False)  # only your own part has Thru
