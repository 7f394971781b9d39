"""Settings that are corrupt, from another version, or unwritable never stop the app."""
import os
import stat

import pytest
from PySide6.QtCore import QSettings

from diffusion_gui.gui.context import SETTINGS_VERSION, AppContext, make_settings


@pytest.fixture
def settings_dir(tmp_path, monkeypatch):
    d = tmp_path / "config"
    d.mkdir()
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(d))
    monkeypatch.setenv("DIFFUSION_GUI_SETTINGS", "hardening")
    yield d
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, "")


def _file(settings_dir):
    return settings_dir / "diffusion-gui" / "diffusion-gui-hardening.ini"


def test_fresh_settings_get_the_version(settings_dir):
    s = make_settings()
    s.setValue("forward/seed", 7)
    s.sync()
    assert _file(settings_dir).is_file()
    assert int(make_settings().value("settings_version")) == SETTINGS_VERSION
    assert int(make_settings().value("forward/seed")) == 7


def test_settings_from_another_version_are_set_aside(settings_dir):
    f = _file(settings_dir)
    f.parent.mkdir(parents=True)
    f.write_text("[General]\nsettings_version=0\nmodel=old-model\n")
    with pytest.warns(UserWarning, match="another version"):
        s = make_settings()
    assert s.value("model") is None
    assert (f.parent / (f.name + ".bad")).is_file()


def test_garbage_settings_file_is_ignored(settings_dir):
    f = _file(settings_dir)
    f.parent.mkdir(parents=True)
    f.write_bytes(b"\x00\xff\xfe garbage [[[ = \n\x00" * 50)
    with pytest.warns(UserWarning):
        s = make_settings()
    assert int(s.value("settings_version")) == SETTINGS_VERSION
    ctx = AppContext(settings=s)          # the app builds on it
    assert ctx.recent_files() == []


def test_wrong_types_in_settings_fall_back(settings_dir):
    f = _file(settings_dir)
    f.parent.mkdir(parents=True)
    f.write_text(f"[General]\nsettings_version={SETTINGS_VERSION}\nrecent_files=@Invalid()\n")
    ctx = AppContext(settings=make_settings())
    assert ctx.recent_files() == []


def test_read_only_settings_folder_keeps_running(settings_dir, monkeypatch):
    d = settings_dir / "diffusion-gui"
    d.mkdir()
    d.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        s = make_settings()
        s.setValue("forward/seed", 3)     # kept in memory for the session
        s.sync()
        assert int(s.value("forward/seed")) == 3
        if os.geteuid() != 0:             # root writes anyway; a user gets AccessError
            assert s.status() == QSettings.AccessError
        ctx = AppContext(settings=s)
        ctx.add_recent("/tmp/a.png")
        assert ctx.recent_files() == ["/tmp/a.png"]
    finally:
        d.chmod(stat.S_IRWXU)
