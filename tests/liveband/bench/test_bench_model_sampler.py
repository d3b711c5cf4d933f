"""`liveband bench model` reports the app's own sampler's cost per step apart from the
model's (the accompanist is timed with a greedy sampler): measured on a song-like melody
once the melody recall's memory is full, where the recall must be matching."""

from liveband.bench.model import bench_sampler


def test_the_sampler_bench_times_a_recalled_song():
    r = bench_sampler()
    assert r["steps"] >= 1000
    assert 0 < r["p50_us"] <= r["p99_us"]
    # repeated 4-bar phrases: the recall matches on most steps (its cost is in the timing)
    assert r["recall_matched_share"] > 0.5
