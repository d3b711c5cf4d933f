"""The transport's style menu offers every band style by the name a player reads, and
choosing one reaches the session by its id."""

from PyQt6.QtCore import QSettings

from engine.styles import load_styles
from ui.mainwindow import MainWindow


def test_the_style_menu_lists_every_style_by_label_and_sets_it(themed_app, qtbot, tmp_path, fake_session):
    w = MainWindow(fake_session, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(w)
    menu = w.transport.style_menu
    offered = {menu.itemData(i): menu.itemText(i) for i in range(menu.count())}
    shipped = load_styles().styles
    assert len(offered) >= 11 and {n: s.label for n, s in shipped.items()}.items() <= offered.items()
    assert offered["jazz"] == "Jazz swing" and offered["bossa"] == "Bossa nova"
    fake_session.calls.clear()
    menu.setCurrentIndex(menu.findText("Blues shuffle"))
    assert fake_session.called("set_style")[-1] == ("blues",)
