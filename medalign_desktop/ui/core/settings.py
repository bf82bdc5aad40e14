"""What the window remembers between sessions (QSettings): geometry, annotator, sampling, last page.

The file is an INI file next to the CLI's settings.json (under MEDALIGN_HOME when that is set), so tests
and portable installs never touch the user's real profile. Per-verdict data lives in SQLite, not here.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QWidget

from medalign_desktop import paths
from medalign_desktop.engine import SamplingSettings
from medalign_desktop.jobs.command import DEFAULT_LAUNCHER
from medalign_desktop.jobs.retrain_policy import DEFAULT_THRESHOLD

GUI_SETTINGS_FILE = "gui.ini"
NO_SEED = -1  # QSettings has no None; -1 means "a different random answer every time"


def default_qsettings() -> QSettings:
    return QSettings(str(paths.config_dir() / GUI_SETTINGS_FILE), QSettings.Format.IniFormat)


def _make_private(qsettings: QSettings) -> None:
    """The settings file (annotator name, system prompt) readable by its owner only, after Qt wrote it;
    Qt keeps an existing file's mode when it rewrites it (best effort)."""
    path = qsettings.fileName()
    folder = str(paths.config_dir())  # Qt creates it 0777 & ~umask; other folders are not ours to change
    targets = [(path, 0o600)] + ([(folder, 0o700)] if os.path.dirname(path) == folder else [])
    for name, mode in targets:
        try:
            if os.path.exists(name) and os.stat(name).st_uid == os.getuid() and os.stat(name).st_mode & 0o077:
                os.chmod(name, mode)
        except OSError:
            pass


def _choice(key: str, choices: tuple[str, ...], doc: str) -> property:
    """A setting that is one of ``choices``; the first when unset or not one of them (an old or edited
    file)."""

    def get(self: AppSettings) -> str:
        value = self._get(key, choices[0], str)
        return value if value in choices else choices[0]

    def set_(self: AppSettings, value: str) -> None:
        self.qsettings.setValue(key, value)

    return property(get, set_, doc=doc)


def _switch(key: str, default: bool, doc: str) -> property:
    """An on/off setting."""

    def get(self: AppSettings) -> bool:
        return bool(self._get(key, default, bool))

    def set_(self: AppSettings, value: bool) -> None:
        self.qsettings.setValue(key, bool(value))

    return property(get, set_, doc=doc)


def _count(key: str, default: int, minimum: int, doc: str) -> property:
    """A whole number, never below ``minimum`` (an edited file may hold anything)."""

    def get(self: AppSettings) -> int:
        return max(minimum, int(self._get(key, default, int)))

    def set_(self: AppSettings, value: int) -> None:
        self.qsettings.setValue(key, max(minimum, int(value)))

    return property(get, set_, doc=doc)


class AppSettings:
    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.qsettings = qsettings or default_qsettings()
        _make_private(self.qsettings)  # a file written 0644 by an earlier version

    def _get(self, key: str, default, kind):
        return self.qsettings.value(key, default, type=kind)

    # who is annotating --------------------------------------------------------------------------------
    @property
    def annotator(self) -> str:
        return str(self._get("annotator", "", str)).strip()

    @annotator.setter
    def annotator(self, name: str) -> None:
        self.qsettings.setValue("annotator", name.strip())

    # how answers are generated ------------------------------------------------------------------------
    def sampling(self) -> SamplingSettings:
        default = SamplingSettings()
        seed = self._get("sampling/seed", NO_SEED, int)
        settings = SamplingSettings(
            temperature=self._get("sampling/temperature", default.temperature, float),
            top_p=self._get("sampling/top_p", default.top_p, float),
            max_new_tokens=self._get("sampling/max_new_tokens", default.max_new_tokens, int),
            seed=None if seed == NO_SEED else seed,
            system_prompt=self._get("sampling/system_prompt", default.system_prompt, str),
        )
        try:
            return settings.validated()
        except ValueError:  # a hand-edited or outdated file: fall back rather than refuse to start
            return default

    def set_sampling(self, settings: SamplingSettings) -> None:
        self.qsettings.setValue("sampling/temperature", float(settings.temperature))
        self.qsettings.setValue("sampling/top_p", float(settings.top_p))
        self.qsettings.setValue("sampling/max_new_tokens", int(settings.max_new_tokens))
        self.qsettings.setValue("sampling/seed", NO_SEED if settings.seed is None else int(settings.seed))
        self.qsettings.setValue("sampling/system_prompt", settings.system_prompt)

    # the queue and the window ---------------------------------------------------------------------------
    queue_mode = _choice("queue/mode", ("unannotated", "all"), "Which questions the Annotate queue shows.")

    include_held_out = _switch("queue/include_held_out", False, "Whether the queue shows held-out questions.")

    # compare mode: two answers side by side -------------------------------------------------------------
    annotate_mode = _choice(
        "annotate/mode", ("single", "compare"),
        '"single" (one answer, accept / edit / reject) or "compare" (two answers, pick the better).',
    )  # fmt: skip
    compare_source = _choice(
        "annotate/compare_source", ("seeds", "versions"),
        '"seeds" (two samples of the active version) or "versions" (two chosen model versions).',
    )  # fmt: skip

    @property
    def compare_versions(self) -> tuple[str, str]:
        """The two version names compared in "versions" mode; "" is the base model alone."""
        return (
            str(self._get("annotate/compare_version_x", "", str)),
            str(self._get("annotate/compare_version_y", "", str)),
        )

    @compare_versions.setter
    def compare_versions(self, names: tuple[str, str]) -> None:
        self.qsettings.setValue("annotate/compare_version_x", names[0])
        self.qsettings.setValue("annotate/compare_version_y", names[1])

    theme = _choice(
        "window/theme", ("system", "light", "dark"),
        'The look: "system" (follow the system\'s light / dark setting), "light" or "dark".',
    )  # fmt: skip

    last_page = _count("window/last_page", 0, 0, "The page shown when the window last closed.")

    # training ---------------------------------------------------------------------------------------------
    retrain_threshold = _count(
        "training/retrain_threshold",
        DEFAULT_THRESHOLD,
        1,
        "New verdicts after which a retrain starts by itself.",
    )
    auto_retrain = _switch(
        "training/auto_retrain", True, "Whether a retrain starts by itself at the threshold."
    )

    @property
    def scoring_reward_version(self) -> int | None:
        """The reward model version whose scores History shows (and new answers get); None: the newest."""
        value = int(self._get("training/scoring_reward_version", 0, int))
        return value if value > 0 else None

    @scoring_reward_version.setter
    def scoring_reward_version(self, version_id: int | None) -> None:
        self.qsettings.setValue("training/scoring_reward_version", int(version_id or 0))

    version_from = _choice(
        "training/version_from", ("best", "last"),
        'Which checkpoint of a successful job becomes its version: "best" (evaluation) or "last".',
    )  # fmt: skip
    early_stopping_patience = _count(
        "training/early_stopping_patience", 0, 0,
        "Evaluations without improvement after which a training job stops early; 0: never.",
    )  # fmt: skip

    @property
    def launcher(self) -> str:
        """How training programs start (e.g. ``accelerate launch --multi_gpu -m training``)."""
        return str(self._get("training/launcher", DEFAULT_LAUNCHER, str)).strip() or DEFAULT_LAUNCHER

    def save_geometry(self, window: QWidget) -> None:
        self.qsettings.setValue("window/geometry", window.saveGeometry())

    def restore_geometry(self, window: QWidget) -> bool:
        geometry = self.qsettings.value("window/geometry")
        return isinstance(geometry, QByteArray | bytes) and window.restoreGeometry(geometry)

    def sync(self) -> None:
        self.qsettings.sync()
        _make_private(self.qsettings)
