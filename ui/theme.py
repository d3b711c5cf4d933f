"""LiveBand's dark theme: one palette, one stylesheet, one colour per part.

Deep blue-grey surfaces, amber for the player (melody, play button, accents) and a
distinct hue per band part that the piano roll and the mixer strips share.
"""

from __future__ import annotations

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

BG = "#12141a"  # window
PANEL = "#1a1d25"  # panels, roll background
PANEL_HI = "#232733"  # controls
LINE = "#2e3340"  # borders, grid
TEXT = "#e6e8ee"
TEXT_DIM = "#8a90a0"
ACCENT = "#ffb547"  # amber: the player
GOOD = "#4fd18b"
WARN = "#ffcc4d"
BAD = "#ff5a5f"

PART_COLORS: dict[str, str] = {
    "melody": ACCENT,
    "bass": "#ff6b8b",
    "keys": "#4fd1c5",
    "pad": "#7c8cff",
    "drums": "#b5bccb",
}
PART_LABELS: dict[str, str] = {"melody": "You", "bass": "Bass", "keys": "Keys", "pad": "Pad", "drums": "Drums"}

STYLESHEET = f"""
QWidget {{ background: {BG}; color: {TEXT}; font-size: 10pt; }}
QToolTip {{ background: {PANEL_HI}; color: {TEXT}; border: 1px solid {LINE}; }}
QFrame#panel, QGroupBox {{ background: {PANEL}; border: 1px solid {LINE}; border-radius: 8px; }}
QGroupBox {{ margin-top: 14px; padding: 8px 6px 6px 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {TEXT_DIM};
                    font-weight: bold; letter-spacing: 1px; }}
QLabel {{ background: transparent; }}
QLabel#dim {{ color: {TEXT_DIM}; }}
QLabel#caption {{ color: {TEXT_DIM}; font-size: 8pt; letter-spacing: 1px; }}
QLabel#chord {{ color: {ACCENT}; font-size: 26pt; font-weight: bold; }}
QLabel#keyname {{ color: {TEXT}; font-size: 12pt; }}
QLabel#bignum {{ font-size: 16pt; font-weight: bold; }}
QPushButton, QToolButton {{ background: {PANEL_HI}; border: 1px solid {LINE}; border-radius: 6px;
                            padding: 5px 10px; }}
QPushButton:hover, QToolButton:hover {{ border-color: {TEXT_DIM}; }}
QPushButton:pressed, QToolButton:pressed {{ background: {LINE}; }}
QPushButton:checked, QToolButton:checked {{ background: #3a3020; border-color: {ACCENT}; color: {ACCENT}; }}
QPushButton:disabled, QToolButton:disabled {{ color: #555b68; }}
QPushButton#play {{ background: {ACCENT}; color: #1a1200; font-size: 14pt; font-weight: bold;
                    border: none; border-radius: 22px; min-width: 44px; min-height: 44px; padding: 0; }}
QPushButton#play:checked {{ background: {GOOD}; color: #06220f; }}
QPushButton#record:checked {{ background: #3a1618; border-color: {BAD}; color: {BAD}; }}
QPushButton#mute:checked {{ background: #3a1618; border-color: {BAD}; color: {BAD}; }}
QPushButton#solo:checked {{ background: #3a3418; border-color: {WARN}; color: {WARN}; }}
QPushButton#mode {{ border-radius: 0; padding: 6px 12px; }}
QPushButton#mode:checked {{ background: #3a3020; color: {ACCENT}; }}
QComboBox, QSpinBox, QDoubleSpinBox, QLineEdit {{ background: {PANEL_HI}; border: 1px solid {LINE};
                    border-radius: 5px; padding: 3px 6px; selection-background-color: #5a4520; }}
QComboBox QAbstractItemView {{ background: {PANEL_HI}; border: 1px solid {LINE};
                    selection-background-color: #5a4520; }}
QSlider::groove:horizontal {{ height: 4px; background: {LINE}; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {ACCENT}; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {TEXT}; width: 12px; margin: -5px 0; border-radius: 6px; }}
QSlider::groove:vertical {{ width: 4px; background: {LINE}; border-radius: 2px; }}
QSlider::add-page:vertical {{ background: {ACCENT}; border-radius: 2px; }}
QSlider::handle:vertical {{ background: {TEXT}; height: 12px; margin: 0 -5px; border-radius: 6px; }}
QTabWidget::pane {{ border: 1px solid {LINE}; border-radius: 8px; background: {PANEL}; top: -1px; }}
QTabBar::tab {{ background: {BG}; color: {TEXT_DIM}; padding: 6px 14px; border: 1px solid {LINE};
                border-bottom: none; border-top-left-radius: 6px; border-top-right-radius: 6px; }}
QTabBar::tab:selected {{ background: {PANEL}; color: {TEXT}; }}
QListWidget {{ background: {PANEL_HI}; border: 1px solid {LINE}; border-radius: 5px; }}
QProgressBar {{ background: {PANEL_HI}; border: 1px solid {LINE}; border-radius: 5px; text-align: center; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 4px; }}
QFrame#notice {{ background: #2b2413; border: 1px solid #6b5521; border-radius: 6px; }}
QFrame#notice[level="bad"] {{ background: #2d1517; border-color: #7a2a2e; }}
QFrame#notice[level="ok"] {{ background: #15271c; border-color: #2e6b45; }}
QFrame#notice[level="none"] {{ background: transparent; border-color: transparent; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {LINE}; }}
QScrollArea {{ border: none; }}
"""


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style + a dark palette (for native bits the stylesheet misses) + the sheet."""
    app.setStyle("Fusion")
    pal = QPalette()
    for role, color in (
        (QPalette.ColorRole.Window, BG),
        (QPalette.ColorRole.WindowText, TEXT),
        (QPalette.ColorRole.Base, PANEL_HI),
        (QPalette.ColorRole.AlternateBase, PANEL),
        (QPalette.ColorRole.Text, TEXT),
        (QPalette.ColorRole.Button, PANEL_HI),
        (QPalette.ColorRole.ButtonText, TEXT),
        (QPalette.ColorRole.Highlight, "#5a4520"),
        (QPalette.ColorRole.HighlightedText, TEXT),
        (QPalette.ColorRole.ToolTipBase, PANEL_HI),
        (QPalette.ColorRole.ToolTipText, TEXT),
        (QPalette.ColorRole.PlaceholderText, TEXT_DIM),
    ):
        pal.setColor(role, QColor(color))
    app.setPalette(pal)
    app.setStyleSheet(STYLESHEET)
