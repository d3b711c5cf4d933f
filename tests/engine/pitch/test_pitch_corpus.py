"""Hums with known truth (the synthetic corpus) through the live HumTracker: onsets,
note pitches and latency, on clean and noisy/reverberant clips, for both trackers."""

import pytest

from engine.pitch.live import HumTracker
from liveband.bench.pitch import run_clip, summarise
from liveband.bench.synth_hum import corpus


@pytest.fixture(scope="module")
def clips():
    return corpus("quick", sample_rate=48000)  # 4 clips, resampled 48 kHz -> 16 kHz live


@pytest.fixture(scope="module")
def pesto_summary(clips):
    ht = HumTracker("pesto", input_rate=48000, keep_frames=True)
    return summarise([run_clip(ht, c) for c in clips])


def test_pesto_finds_the_notes_of_clean_and_noisy_hums(pesto_summary):
    s = pesto_summary
    assert s["onset_f1_clean"] >= 0.9
    assert s["onset_f1_noisy"] >= 0.8
    assert s["note_pitch_accuracy"] >= 0.85
    assert s["raw_pitch_accuracy"] >= 0.95


def test_pesto_announces_notes_quickly(pesto_summary):
    # 38.9 ms measured on these 4 clips (the bench: 37.6 on 108 notes; 50.5 before the
    # causal resampler and the glide rules, which this bound would have caught)
    assert pesto_summary["latency_ms_p50"] <= 45
    assert pesto_summary["latency_ms_p50_legato"] <= 60


def test_crepe_finds_the_notes_of_a_clean_hum(clips):
    ht = HumTracker("crepe", input_rate=48000, keep_frames=True)
    s = summarise([run_clip(ht, clips[0]), run_clip(ht, clips[1])])
    assert s["onset_f1_clean"] >= 0.9
    assert s["note_pitch_accuracy"] >= 0.85
    assert s["latency_ms_p50"] <= 90


def test_same_clip_fed_in_different_block_sizes_gives_the_same_notes(clips):
    ht = HumTracker("pesto", input_rate=48000)
    res = []
    for block in (64, 1000):
        ht.reset()
        x = clips[1].audio
        for i in range(0, len(x), block):
            ht.feed(x[i : i + block])
        ht.finish()
        res.append([(n[0], round(n[1], 3)) for n in ht.notes()])
    assert res[0] == res[1] and len(res[0]) >= 6


def test_bench_runs_crepe_full_only_on_a_gpu():
    import torch

    from liveband.bench.pitch import TRACKERS, skip_reason

    assert TRACKERS["crepe_full"] == ("crepe", {"capacity": "full", "device": "cuda"})
    assert skip_reason("pesto") is None and skip_reason("crepe") is None
    if torch.cuda.is_available():
        assert skip_reason("crepe_full") is None
    else:
        assert "no CUDA GPU" in skip_reason("crepe_full")
