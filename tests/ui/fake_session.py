"""A stand-in with the Session API, for unit tests of pure widget logic only (no audio,
no model). It records every call so a test can check that a control reached the session,
and produces snapshots/roll data a test can set. Integration tests use the real Session."""

from __future__ import annotations

from dataclasses import replace

from liveband.session_types import PartState, SessionSnapshot


def idle_snapshot() -> SessionSnapshot:
    """A stopped session's snapshot with plausible meters, for a test to ``replace``."""
    return SessionSnapshot(
        playing=False,
        counting_in=False,
        tempo=100.0,
        meter="4/4",
        style="pop",
        input_mode="keyboard",
        step=0.0,
        chord="",
        key="",
        input_level_db=-90.0,
        hummed_pitch=None,
        audio_latency_ms=10.7,
        xruns=0,
        lead_ms=300.0,
        late_steps=0,
        cpu_percent=12.0,
        backend="torch-cpu",
        recording=False,
        notices=(),
        parts={
            "bass": PartState(False, False, 0.82, 33),
            "keys": PartState(False, False, 0.7, 0),
            "pad": PartState(False, False, 0.55, 89),
            "drums": PartState(False, False, 0.75, 0),
            "melody": PartState(False, False, 1.0, 73),
        },
    )


class FakeSession:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.snap = idle_snapshot()
        self.notes: list[tuple] = []
        self.closed = False
        self.takes = ["2026-11-23_1700"]

    def _rec(self, *call) -> None:
        self.calls.append(call)

    def called(self, name: str) -> list[tuple]:
        return [c[1:] for c in self.calls if c[0] == name]

    def play(self):
        self._rec("play")
        self.snap = replace(self.snap, playing=True)

    def stop(self):
        self._rec("stop")
        self.snap = replace(self.snap, playing=False)

    def close(self):
        self._rec("close")
        self.closed = True

    def set_input_mode(self, mode):
        self._rec("set_input_mode", mode)
        self.snap = replace(self.snap, input_mode=mode)

    def audio_devices(self):
        return {"inputs": ["FakeMic"], "outputs": ["NullSpeakers"]}

    def midi_ports(self):
        return {"inputs": [], "outputs": []}

    def set_audio_devices(self, output=None, input=None, blocksize=None):
        self._rec("set_audio_devices", output, input, blocksize)

    def set_input_gain(self, db):
        self._rec("set_input_gain", db)

    def open_midi_input(self, name):
        self._rec("open_midi_input", name)

    def open_midi_output(self, name, virtual=True):
        self._rec("open_midi_output", name, virtual)

    def key_event(self, pitch, down, velocity=100):
        self._rec("key_event", pitch, down)

    def set_tempo(self, bpm):
        self._rec("set_tempo", bpm)
        if not 40 <= bpm <= 240:
            raise ValueError(f"tempo must be 40-240 BPM, got {bpm}")
        self.snap = replace(self.snap, tempo=bpm)

    def tap_tempo(self):
        self._rec("tap_tempo")
        return 123.0

    def set_meter(self, meter):
        self._rec("set_meter", meter)

    def set_style(self, style):
        self._rec("set_style", style)

    def set_feel(self, **feel):
        self._rec("set_feel", feel)

    # the Chords tab (liveband.session_steering)
    def set_arranger(self, on, split=None):
        self._rec("set_arranger", on, split)

    def load_chart(self, path):
        self._rec("load_chart", path)

    def set_chart_text(self, text, name="chart"):
        self._rec("set_chart_text", text, name)

    def chart_text(self):
        return ""

    def save_chart(self, path, locked=False):
        self._rec("save_chart", path, locked)

    def clear_chart(self):
        self._rec("clear_chart")

    def chart_sections(self):
        return []

    def loop_section(self, name):
        self._rec("loop_section", name)

    def lock_form(self, bars):
        self._rec("lock_form", bars)

    def unlock_form(self):
        self._rec("unlock_form")

    def set_tempo_ramp(self, bpm, every=1):
        self._rec("set_tempo_ramp", bpm, every)

    def form_state(self):
        from liveband.session_steering import FormState

        return FormState(0, 0, 0, 0, "", "model", False, 54, "F#3", "", "", 0, "")

    def set_temperature(self, t):
        self._rec("set_temperature", t)

    def set_density(self, d):
        self._rec("set_density", d)

    def set_harmony_follow(self, h):
        self._rec("set_harmony_follow", h)

    def set_part(self, part, *, mute=None, solo=None, volume=None, program=None, through=None):
        call = dict(mute=mute, solo=solo, volume=volume, program=program)
        if through is not None:
            call["through"] = through
        self._rec("set_part", part, call)
        old = self.snap.parts[part]
        new = PartState(
            old.mute if mute is None else mute,
            old.solo if solo is None else solo,
            old.volume if volume is None else volume,
            old.program if program is None else program,
            old.through if through is None else through,
        )
        self.snap = replace(self.snap, parts={**self.snap.parts, part: new})

    def set_master_volume(self, v):
        self._rec("set_master_volume", v)

    def set_metronome(self, on):
        self._rec("set_metronome", on)

    def set_count_in(self, bars):
        self._rec("set_count_in", bars)

    def set_recording(self, on):
        self._rec("set_recording", on)  # the real one records only while playing

    def snapshot(self):
        return self.snap

    def roll(self, since_step):
        return [n for n in self.notes if n[3] >= since_step]

    def list_sessions(self):
        return [{"name": n, "duration": "0:42"} for n in self.takes]

    def rename_session(self, old, new):
        self._rec("rename_session", old, new)
        self.takes = [new if n == old else n for n in self.takes]
        return new

    def delete_session(self, name):
        self._rec("delete_session", name)
        self.takes.remove(name)

    def export_session(self, name, dest):
        self._rec("export_session", name, dest)
        return [f"{dest}/{name}.mid"]

    def render_file(self, path, out_wav, midi_out=None, progress=None, stems=False):
        self._rec("render_file", path, out_wav, midi_out, *(("stems",) if stems else ()))
        for i in range(5):
            if progress:
                progress(i / 4)
