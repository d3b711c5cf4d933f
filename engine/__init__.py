"""Real-time parts of LiveBand. Never imports Qt (ui) or the application shell."""
