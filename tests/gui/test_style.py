"""Light and dark: chosen by the setting or the system, the two sheets in step, the plots following."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtGui import QPalette

from medalign_desktop import app as app_module
from medalign_desktop import paths
from medalign_desktop.ui.core import style
from medalign_desktop.ui.core.settings import AppSettings
from medalign_desktop.ui.core.style import PLOT_COLOURS, apply_style, style_sheet_path
from medalign_desktop.ui.train.loss_plot import LossPlot

RULE = re.compile(r"([^{}]+)\{[^{}]*\}")


def selectors(sheet: str) -> list[str]:
    without_comments = re.sub(r"/\*.*?\*/", "", sheet, flags=re.S)
    return [" ".join(match.group(1).split()) for match in RULE.finditer(without_comments)]


@pytest.fixture
def themed(qapp):
    """Each test starts light (offscreen reports no system scheme) and leaves the app that way."""
    apply_style(qapp)
    yield qapp
    apply_style(qapp)


def window_colour(app) -> str:
    return app.palette().color(QPalette.ColorRole.Window).name()


def test_the_setting_chooses_dark_or_light(themed):
    manager = apply_style(themed, "dark")
    assert manager.theme == "dark" and style.current_theme() == "dark"
    assert window_colour(themed) == "#1a1e23"
    assert themed.styleSheet() == style_sheet_path("dark").read_text(encoding="utf-8")
    apply_style(themed, "light")
    assert window_colour(themed) == "#f4f6f8"
    assert themed.styleSheet() == style_sheet_path("light").read_text(encoding="utf-8")


def test_system_follows_the_colour_scheme_and_a_choice_does_not(themed, monkeypatch):
    manager = apply_style(themed, "system")
    changes = []
    manager.changed.connect(changes.append)
    monkeypatch.setattr(style, "system_theme", lambda: "dark")
    themed.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert manager.theme == "dark" and window_colour(themed) == "#1a1e23" and changes == ["dark"]
    manager.set_preference("light")
    themed.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert manager.theme == "light" and changes == ["dark", "light"]


def test_the_setting_is_saved_and_bad_values_mean_system(tmp_path):
    settings = AppSettings(QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))
    assert settings.theme == "system"
    settings.theme = "dark"
    settings.sync()
    assert AppSettings(QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)).theme == "dark"
    settings.theme = "purple"
    assert settings.theme == "system"


def test_the_theme_flag(capsys):
    assert app_module.build_parser().parse_args(["--theme", "dark"]).theme == "dark"
    assert app_module.build_parser().parse_args([]).theme is None  # the saved setting stands
    with pytest.raises(SystemExit):
        app_module.build_parser().parse_args(["--theme", "purple"])
    assert "invalid choice: 'purple'" in capsys.readouterr().err


def test_the_plot_background_follows_the_theme(qtbot, themed):
    plot = LossPlot()
    qtbot.addWidget(plot)
    assert plot.canvas.backgroundBrush().color().name() == PLOT_COLOURS["light"].background
    apply_style(themed, "dark")
    assert plot.canvas.backgroundBrush().color().name() == PLOT_COLOURS["dark"].background
    axis = plot.loss_plot.getAxis("left")
    assert axis.textPen().color().name() == PLOT_COLOURS["dark"].foreground
    plot.set_kind("dpo")  # panels made while dark are dark too
    assert plot.plots[1].getAxis("bottom").textPen().color().name() == PLOT_COLOURS["dark"].foreground
    apply_style(themed, "light")
    assert plot.canvas.backgroundBrush().color().name() == PLOT_COLOURS["light"].background


def test_the_dark_sheet_matches_the_light_one_rule_for_rule():
    light = style_sheet_path("light").read_text(encoding="utf-8")
    dark = style_sheet_path("dark").read_text(encoding="utf-8")
    assert selectors(dark) == selectors(light)
    assert len(selectors(light)) > 50


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_image_a_sheet_names_exists(theme):
    sheet = style_sheet_path(theme).read_text(encoding="utf-8")
    names = re.findall(r"url\(resources:([^)]+)\)", sheet)
    assert names and all((paths.RESOURCES_DIR / name).is_file() for name in names), names


def test_the_application_icon_scales_for_high_dpi(themed):
    icon = style.app_icon()
    assert not icon.isNull() and not themed.windowIcon().isNull()
    # Backed by the SVG: crisp at any size, even beyond the largest PNG (256 px) on a 2x screen.
    assert [icon.pixmap(QSize(n, n)).width() for n in (16, 48, 512)] == [16, 48, 512]


def test_the_compare_plots_follow_the_theme(qtbot, themed):
    from medalign_desktop.ui.compare.results import VersionPlots

    plots = VersionPlots()
    qtbot.addWidget(plots)
    backgrounds = lambda: {p.backgroundBrush().color().name() for p in plots.plots.values()}  # noqa: E731
    assert backgrounds() == {PLOT_COLOURS["light"].background}
    apply_style(themed, "dark")
    assert backgrounds() == {PLOT_COLOURS["dark"].background}
    assert plots.plots["accuracy"].getAxis("left").textPen().color().name() == PLOT_COLOURS["dark"].foreground


def test_rich_text_colours_follow_the_theme(themed):
    from medalign_desktop.ui.history.detail_dialog import _section

    assert "color:#4a5260;" in _section("Verdict", "Edited")
    apply_style(themed, "dark")
    assert "color:#b4bec9;" in _section("Verdict", "Edited")  # the light grey would vanish on dark cards


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_spin_boxes_have_arrow_buttons_that_step(qtbot, themed, theme):
    """The sheets' border removes the native spin buttons; they are drawn back, with arrows (papercut)."""
    from PySide6.QtWidgets import QSpinBox, QStyle, QStyleOptionSpinBox

    apply_style(themed, theme)
    box = QSpinBox()
    qtbot.addWidget(box)
    box.setRange(0, 10)
    box.resize(160, box.sizeHint().height())
    box.show()
    qtbot.waitExposed(box)
    option = QStyleOptionSpinBox()
    box.initStyleOption(option) if hasattr(box, "initStyleOption") else option.initFrom(box)
    option.subControls = QStyle.SubControl.SC_SpinBoxUp | QStyle.SubControl.SC_SpinBoxDown
    up = box.style().subControlRect(
        QStyle.ComplexControl.CC_SpinBox, option, QStyle.SubControl.SC_SpinBoxUp, box
    )
    down = box.style().subControlRect(
        QStyle.ComplexControl.CC_SpinBox, option, QStyle.SubControl.SC_SpinBoxDown, box
    )
    assert up.width() >= 16 and down.width() >= 16 and up.bottom() <= down.top()
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=up.center())
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=up.center())
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=down.center())
    assert box.value() == 1
    sheet = style_sheet_path(theme).read_text(encoding="utf-8")
    assert "QSpinBox::up-arrow" in sheet and "QSpinBox::down-arrow" in sheet
