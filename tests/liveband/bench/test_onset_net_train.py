"""The onset net's training recipe (liveband.bench.onset_net_train): its clips stay apart
from the benches', and what it writes is what the live front end loads."""

from __future__ import annotations

import numpy as np
import pytest

from engine.pitch.onset_net import FRAME, N_CLASSES, FrameFeatures, OnsetNet
from liveband.bench.onset_net_train import OnsetNetConfig, clip_specs, hum_clip_specs, train
from liveband.bench.sung_corpus import specs


def test_the_training_clips_are_neither_the_benches_nor_each_others():
    hums = hum_clip_specs(800)
    sung = clip_specs(1600)
    bench_hum_seeds = set(range(1, 5)) | {21} | set(range(101, 113))
    bench_sung_seeds = {s.seed for part in ("dev", "heldout") for s in specs(part)}
    assert len({h.seed for h in hums}) == 800 and not {h.seed for h in hums} & bench_hum_seeds
    assert not {s.seed for s in sung} & bench_sung_seeds
    # both synthesisers' clips vary: registers, noise and room, tempos
    assert {h.register for h in hums} == {"male", "female"}
    assert {h.noise_snr_db for h in hums} >= {None, 5.0, 25.0} and any(h.reverb_rt60 for h in hums)
    assert len({h.tempo for h in hums}) >= 5
    assert hum_clip_specs(800) == hums  # regenerated, not stored


def test_a_bad_mix_is_refused():
    with pytest.raises(ValueError):
        OnsetNetConfig(hum_mix=1.0)
    with pytest.raises(ValueError):
        OnsetNetConfig(hum_clips=0, hum_mix=0.3)


def test_the_weights_it_writes_are_the_ones_the_live_front_end_loads(tmp_path):
    out = tmp_path / "net.safetensors"
    cfg = OnsetNetConfig(clips=2, hum_clips=2, minutes=0.02, batch=4, crop_frames=40, hidden_in=16, hidden=8)
    report = train(cfg, out, lambda m: None)
    assert report["steps"] >= 1 and report["hum_clips"] == 2
    net = OnsetNet.load(out)
    ff = FrameFeatures()
    p, onset = net.step(ff.push(np.zeros(FRAME, np.float32)))
    assert p.shape == (N_CLASSES,) and abs(p.sum() - 1) < 1e-6 and 0 <= onset <= 1
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file
