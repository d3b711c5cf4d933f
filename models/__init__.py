"""Learned parts of LiveBand and their offline life. Never imports engine, ui or liveband."""
