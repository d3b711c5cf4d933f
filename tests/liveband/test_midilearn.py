"""MIDI learn as logic: arming and binding, knobs and buttons, per-controller storage in a
JSON file (atomic, a corrupt file reported once and kept). Real ports:
tests/liveband/test_session_learn.py."""

from __future__ import annotations

import json

import mido

from liveband.midilearn import BUTTON, KNOB, ControlThread, MidiLearn, Target


def make(tmp_path, notices=None):
    got = {"knob": [], "presses": 0}
    targets = {
        "density": Target(KNOB, got["knob"].append),
        "tempo": Target(KNOB, got["knob"].append, 40.0, 240.0),
        "play_stop": Target(BUTTON, lambda v: got.__setitem__("presses", got["presses"] + 1)),
    }
    control = ControlThread()
    ml = MidiLearn(
        tmp_path / "midi_bindings.json", control, lambda: targets, (notices if notices is not None else []).append
    )
    ml.set_controller("Pad box")
    return ml, control, got


def cc(n, v, ch=0):
    return mido.Message("control_change", control=n, value=v, channel=ch)


def test_learn_binds_the_next_control_and_consumes_what_is_bound(tmp_path):
    ml, control, got = make(tmp_path)
    assert not ml.handle(cc(21, 10), 0.0)  # nothing bound: passes on
    ml.arm("density")
    assert ml.handle(cc(21, 0), 0.0) is False  # a CC at 0 is a knob at rest, not a move
    assert ml.handle(cc(21, 5), 0.0)  # bound
    assert ml.armed is None
    ml.arm("play_stop")
    assert ml.handle(mido.Message("note_on", note=36, velocity=100, channel=9), 0.0)
    assert ml.handle(mido.Message("note_off", note=36, channel=9), 0.0)  # its release is taken too
    for v in (0, 64, 127):
        assert ml.handle(cc(21, v), 0.0)
    assert ml.handle(mido.Message("note_on", note=36, velocity=90, channel=9), 0.0)
    assert not ml.handle(mido.Message("note_on", note=37, velocity=90, channel=9), 0.0)
    assert control.wait_idle()
    assert got["knob"][-1] == 1.0 and got["presses"] == 1
    assert [b.describe() for b in ml.bindings()] == [
        "CC 21 (channel 1) -> density",
        "note 36 (channel 10) -> play_stop",
    ]
    control.close()


def test_a_cc_button_acts_on_press_only_and_a_knob_maps_to_its_range(tmp_path):
    ml, control, got = make(tmp_path)
    ml.arm("play_stop")
    ml.handle(cc(64, 127), 0.0)  # the learning press itself does nothing
    for v in (0, 127, 127, 0, 100, 20, 0):  # a foot switch: press, held, release, press...
        ml.handle(cc(64, v), 0.0)
    ml.arm("tempo")
    ml.handle(cc(7, 3), 0.0)
    ml.handle(cc(7, 127), 0.0)
    assert control.wait_idle()
    assert got["presses"] == 2
    assert got["knob"][-1] == 240.0
    control.close()


def test_bindings_are_kept_per_controller_across_restarts(tmp_path):
    ml, control, _ = make(tmp_path)
    ml.arm("density")
    ml.handle(cc(21, 30), 0.0)
    ml.set_controller("Foot pedal")
    ml.arm("play_stop")
    ml.handle(cc(64, 127), 0.0)
    assert control.wait_idle()
    control.close()
    assert not list(tmp_path.glob("*.tmp"))
    data = json.loads((tmp_path / "midi_bindings.json").read_text())
    assert set(data["controllers"]) == {"Pad box", "Foot pedal"}
    again, control2, _ = make(tmp_path)  # a fresh start reads them back
    assert [b.target for b in again.bindings()] == ["density"]
    again.set_controller("Foot pedal")
    assert [(b.type, b.number, b.target) for b in again.bindings()] == [("cc", 64, "play_stop")]
    assert again.clear("play_stop") == 1 and again.bindings() == []
    assert control2.wait_idle()
    control2.close()


def test_a_corrupt_file_gives_one_line_is_ignored_and_kept(tmp_path):
    path = tmp_path / "midi_bindings.json"
    path.write_text('{"controllers": {"Pad box": [{"type": "cc", "channel": 0}]}}')
    notices = []
    ml, control, _ = make(tmp_path, notices)
    assert len(notices) == 1 and str(path) in notices[0] and "\n" not in notices[0]
    assert ml.bindings() == []
    ml.arm("density")
    ml.handle(cc(21, 30), 0.0)
    assert control.wait_idle()
    control.close()
    assert (tmp_path / "midi_bindings.json.corrupt").read_text().startswith('{"controllers"')
    assert json.loads(path.read_text())["controllers"]["Pad box"][0]["number"] == 21
    notices.clear()
    make(tmp_path, notices)[1].close()
    assert notices == []


def test_a_file_nested_thousands_deep_is_one_line_and_ignored(tmp_path):
    (tmp_path / "midi_bindings.json").write_text("[" * 5000 + "]" * 5000)
    notices = []
    ml, control, _ = make(tmp_path, notices)
    control.close()
    assert len(notices) == 1 and "midi_bindings.json" in notices[0] and "\n" not in notices[0]
    assert ml.bindings() == []
