"""liveband.bench.chords on the real pieces (a private PulseAudio server, the shipped model):
arranger chords struck through Session.key_event become the band's chord stream on the
next 16th and the band plays them within about a step and a half, as the bench reports."""

from liveband.bench.chords import run


def test_the_chord_bench_reports_chords_reaching_the_band_on_the_next_step(liveband_home):
    out = run(256, chords=6)
    assert out["chords"] == 6 and out["chord_stream_ok"] == 6 and out["late_chords"] == 0
    assert out["chord_steps_after_key"]["max"] == 1.0
    lat = out["chord_to_band_onset_ms"]
    # from the key's arrival: the player latency, the rest of its 16th, the next one (a step
    # is 136 ms at 110 BPM), and a few ms of block; never more than two steps
    assert lat["n"] == 6 and out["player_latency_ms"] <= lat["p50"] <= lat["max"] < 2 * out["step_ms_at_tempo"] + 40
