"""`liveband bench engine`'s offline half reports a real render's speed (no timing asserts)."""

from liveband.bench.engine import bench_melody, offline


def test_offline_bench_reports_speed_of_a_real_render(soundfont):
    r = offline(4.0, None, "torch-cpu", str(soundfont), lambda m: None)
    assert r["audio_s"] >= 4.0 and r["steps"] >= 32 and r["late_steps"] == 0
    assert r["realtime_factor"] > 0 and r["realtime_factor_cpu"] > 0
    assert r["meets_target"] == (r["realtime_factor"] >= r["target_realtime_factor"])
    # rendered as `liveband render` does: the audio in a second process, its CPU counted
    assert r["audio_in_second_process"] and r["cpu_s_audio_process"] > 0
    assert abs(r["cpu_s"] - r["cpu_s_model_process"] - r["cpu_s_audio_process"]) < 0.01


def test_bench_melody_is_deterministic_and_fills_the_time():
    a, b = bench_melody(30.0), bench_melody(30.0)
    assert a == b and a.end_beat >= 59.0
