"""Benchmarks (`liveband bench ...`) and the helpers they and the tests use to run the real
app headless: a private software audio server and the real-time stall watcher. They drive
the engine and the session from outside, so they live in the shell, not in `engine/`."""
