"""The synthetic hum corpus used by these tests (and by `liveband bench pitch`).

It lives in engine/pitch/synth_hum.py so the bench can import it without the tests
folder; this module re-exports it under the name the tests use."""

from engine.pitch.synth_hum import HumClip, HumSpec, corpus, make_hum, make_speech_like  # noqa: F401
