"""`liveband bench engine`: how fast and how far ahead the streaming engine runs. Prints JSON.

1. offline: a render of a generated 60-second folk-like melody (4/4, 120 BPM) through
   the whole engine (generator, part renderer, Mixer, FluidSynth, WAV writer) with the
   default model on onnx-cpu (`liveband render`'s default) and torch-cpu, the way
   `liveband render` runs it (the audio in a forked process beside the model); the
   real-time factor is audio seconds per wall second (target >= 20), and per CPU second
   of both processes (the machines are shared: wall time also measures the neighbours).
   The same render with the rule-based band shows the synth's share.
2. live: the same engine against a software audio server (a private PulseAudio null
   sink through PortAudio, the live ``AudioOut`` callback driving the ``Mixer``), with
   the generator worker thread on the audio clock and a simulated player feeding melody
   notes on the beat, planning as the app does (a tentative beat for the piano roll every
   other step). Reports the generator's lead over the audio clock (min, p1 in ms: it must
   never go negative), late steps (target: 0) and the per-step model time with the plan's
   rollout (``step_plan_ms_p99``: the step's own p99 plus the plan's, at most 5 ms) over
   ``--seconds`` (default 600).

Without the shipped checkpoint the debug model stands in, and the JSON says so.
``--seconds 0`` skips the live run (the offline half alone takes under a minute).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.melody_file import Melody, MelodyNote
from liveband.config import DEFAULT_BACKEND

TARGET_RTF = 20.0


def bench_melody(seconds: float, bpm: float = 120.0, seed: int = 0) -> Melody:
    """A deterministic tune: a random walk on C major in quarters and eighths."""
    rng = np.random.default_rng(seed)
    scale = [60, 62, 64, 65, 67, 69, 71, 72, 74, 76, 77, 79]
    beats_total = seconds * bpm / 60.0
    notes, b, i = [], 0.0, 4
    while b < beats_total:
        dur = float(rng.choice([0.5, 1.0, 1.0, 2.0]))
        i = int(np.clip(i + rng.integers(-2, 3), 0, len(scale) - 1))
        notes.append(MelodyNote(b, b + dur * 0.95, scale[i], 90))
        b += dur
    return Melody(tuple(notes), bpm, "4/4", "4/4", "bench")


def _load(checkpoint: str | None, backend: str, log):
    from engine.backends import limit_cpu_threads, open_accompanist
    from models.runtime import DEFAULT_CHECKPOINT, debug_model

    path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
    if path.is_file():
        acc, used = open_accompanist(backend, str(path), notify=log)
        return acc, used, str(path)
    limit_cpu_threads(1)
    log(f"bench engine: no checkpoint at {path}; timing the debug model instead")
    return debug_model(0).accompanist(0), "torch-cpu", "debug model (no shipped checkpoint)"


def offline(seconds: float, checkpoint: str | None, backend: str, soundfont: str, log, accompanist=None) -> dict:
    """Render ``seconds`` of the bench melody; ``accompanist`` overrides the model."""
    from engine.offline import RenderSettings, render_melody

    if accompanist is not None:
        acc, used, model = accompanist, "none", type(accompanist).__name__
    else:
        acc, used, model = _load(checkpoint, backend, log)
    mel = bench_melody(seconds)
    settings = RenderSettings(style="pop", tempo=120.0, meter="4/4", seed=0, synth_process=True)
    with tempfile.TemporaryDirectory() as tmp:
        cpu0 = time.process_time()
        kids0 = _children_cpu()
        r = render_melody(mel, acc, settings, soundfont, Path(tmp) / "bench.wav", backend=used)
        cpu = time.process_time() - cpu0
        cpu_audio = _children_cpu() - kids0  # the audio process (joined by now)
    audio_s = r.frames / settings.sample_rate
    m = r.metrics
    rtf = audio_s / r.seconds_wall
    return {
        "model": model,
        "backend": used,
        "audio_s": round(audio_s, 2),
        "wall_s": round(r.seconds_wall, 3),
        "realtime_factor": round(rtf, 1),
        "target_realtime_factor": TARGET_RTF,
        # CPU seconds this process used: on a shared machine wall time also counts
        # the neighbours; this is what the render itself costs
        "cpu_s": round(cpu + cpu_audio, 3),
        "cpu_s_model_process": round(cpu, 3),
        "cpu_s_audio_process": round(cpu_audio, 3),
        "realtime_factor_cpu": round(audio_s / max(cpu + cpu_audio, 1e-9), 1),
        "meets_target": bool(rtf >= TARGET_RTF),
        "audio_in_second_process": settings.synth_process,
        "steps": m.steps,
        "step_ms_p50": round(m.step_ms_p50, 3),
        "step_ms_p99": round(m.step_ms_p99, 3),
        "late_steps": m.late_steps,
    }


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def live(
    seconds: float,
    checkpoint: str | None,
    backend: str,
    soundfont: str,
    log,
    blocksize: int = 256,
    margin_steps: int = 2,
    chunk_steps: int = 1,
) -> dict:
    from engine.audio_out import AudioOut
    from engine.clock import Clock
    from engine.events import EventQueue
    from engine.generator import StreamingGenerator
    from engine.mixer import Mixer
    from engine.quantiser import Quantiser
    from engine.renderer import PartRenderer
    from engine.synth import Synth
    from liveband.bench.softaudio import SoftwareAudioServer
    from models.sampling import ControlledSampler

    acc, used, model = _load(checkpoint, backend, log)
    sr = 48000
    bpm = 120.0
    srv = SoftwareAudioServer("pulse", rate=sr).start()
    synth = Synth(soundfont, sr)
    out = None
    gen = None
    try:
        mixer = Mixer(synth, sr, max(blocksize, 1024))
        out = AudioOut(mixer, blocksize=blocksize)
        out.start()
        start = mixer.clock + sr // 2  # the music starts half a second after the stream
        clock = Clock(sr, bpm, "4/4", 1, start_sample=start)
        q = EventQueue(1 << 14)
        mixer.add_queue(q)
        renderer = PartRenderer([q], "pop", "4/4", seed=0)
        gen = StreamingGenerator(
            acc,
            clock,
            renderer,
            style="pop",
            sampler=ControlledSampler(0),
            quantiser=Quantiser(clock),
            chunk_steps=chunk_steps,
            margin_steps=margin_steps,
            clock_source=lambda: mixer.clock,
            backend=used,
            plan=True,
        )
        mel = bench_melody(seconds + 10, bpm)
        gen.start()
        t_end = time.monotonic() + seconds
        leads: list[float] = []
        idx = 0
        seen = 0
        next_report = time.monotonic() + 30
        while time.monotonic() < t_end:
            now = mixer.clock
            # the "player": note on/off events as the audio clock reaches them (sent
            # slightly ahead, like a MIDI driver timestamping them, so they are on time)
            while idx < len(mel.notes) and clock.beat_to_sample(mel.notes[idx].start) <= now + sr // 50:
                n = mel.notes[idx]
                gen.melody_event(clock.beat_to_sample(n.start), n.pitch, True)
                gen.melody_event(clock.beat_to_sample(n.end), n.pitch, False)
                idx += 1
            # collect every step's lead (the generator's ring holds only the last ones)
            k = gen._nstats
            if k > seen:
                ring = gen._lead_ms
                for j in range(max(seen, k - len(ring)), k):
                    leads.append(float(ring[j % len(ring)]))
                seen = k
            if gen.error is not None:
                raise RuntimeError(f"generator failed: {gen.error}")
            if time.monotonic() > next_report:
                log(
                    f"bench engine: live {seconds - (t_end - time.monotonic()):.0f}/{seconds:g} s, "
                    f"late steps {gen.late_steps}, xruns {mixer.xruns}"
                )
                next_report += 30
            time.sleep(0.01)
        gen.stop()
        m = gen.metrics()
        # count-in steps are generated at once at the start; the player's music starts at step 0
        lead = np.array(leads) if leads else np.zeros(1)
        ws = mixer.work_stats()
        return {
            "model": model,
            "backend": used,
            "server": "pulseaudio null sink",
            "blocksize": blocksize,
            "seconds": seconds,
            "tempo": bpm,
            "margin_steps": margin_steps,
            "chunk_steps": chunk_steps,
            "steps": m.steps,
            "late_steps": m.late_steps,
            "lead_ms_min": round(float(lead.min()), 2),
            "lead_ms_p1": round(float(np.percentile(lead, 1)), 2),
            "lead_ms_p50": round(float(np.percentile(lead, 50)), 2),
            "step_ms_p50": round(m.step_ms_p50, 3),
            "step_ms_p99": round(m.step_ms_p99, 3),
            "step_ms_max": round(m.step_ms_max, 3),
            "plan_ms_p99": round(m.plan_ms_p99, 3),
            "step_plan_ms_p99": round(m.step_ms_p99 + m.plan_ms_p99, 3),
            "late_melody_onsets": m.late_onsets,
            "melody_onsets": gen.quantiser.onsets,
            "xruns": mixer.xruns,
            "late_mixer_events": mixer.late_events,
            "callback_p99_load": round(ws["p99_load"], 3),
            "realtime_scheduling": out.realtime,
            "meets_target": bool(m.late_steps == 0 and lead.min() > 0),
        }
    finally:
        if gen is not None:
            gen.stop()
        if out is not None:
            out.stop()
        synth.close()
        srv.stop()


def main(args) -> int:
    from liveband.paths import find_soundfont

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    quick = bool(getattr(args, "quick", False))
    seconds = getattr(args, "seconds", None)
    if seconds is None:
        seconds = 15.0 if quick else 600.0
    checkpoint = getattr(args, "checkpoint", None)
    soundfont = str(find_soundfont(None))
    result: dict[str, Any] = {
        "bench": "engine",
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    log("bench engine: offline render of 60 s of melody")
    # both CPU backends: the render's speed is the model's step plus the synth
    result["offline"] = {
        b: offline(15.0 if quick else 60.0, checkpoint, b, soundfont, log) for b in ("onnx-cpu", "torch-cpu")
    }
    try:
        # the same render with the rule-based band (a musical note density, no model):
        # separates the synth's share from the model's
        from models.rules import RuleAccompanist

        result["offline_rule_band"] = offline(
            15.0 if quick else 60.0, None, "", soundfont, log, accompanist=RuleAccompanist()
        )
    except ImportError:
        pass
    if seconds > 0:
        log(f"bench engine: live run for {seconds:g} s on a PulseAudio null sink")
        blocksize = getattr(args, "blocksize", None) or 256
        # the app's own backend (liveband.config.DEFAULT_BACKEND, with its fallback)
        result["live"] = live(seconds, checkpoint, DEFAULT_BACKEND, soundfont, log, blocksize=blocksize)
    else:
        log("bench engine: --seconds 0: no live run")
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    return 0
