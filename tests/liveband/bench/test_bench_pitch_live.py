"""`liveband bench pitch`'s live part on the real session and a private PulseAudio server:
hummed notes reach the band's next steps, and mode switches are measured."""

from liveband.bench.pitch import bench_live


def test_hummed_notes_reach_the_band_within_a_few_steps_and_switches_are_measured(liveband_home):
    rep = bench_live(tempo=110.0, switches=2)
    hb = rep["hum_to_band"]
    assert hb["notes_heard"] >= 0.75 * hb["notes_sung"], hb
    # the band can only answer after the note: at least the model's lookahead, and within
    # the generator's commit margin plus a step or two
    assert 1 <= hb["steps_p50"] <= 5, hb
    assert hb["ms_p50"] > 0 and hb["ms_p95"] >= hb["ms_p50"]
    ms = rep["mode_switch"]
    assert ms["switches"] == 2 and ms["xruns"] >= 0 and ms["ui_tick_stall_ms_max"] is not None
