"""PyQt6 widgets. Talks only to liveband.session."""
