"""The app under random use: a seeded random driver of the real main window.

For ``--seconds`` it picks actions at random (weights in :data:`WEIGHTS`) on whatever widgets are
on screen, found generically (no panel is named): clicks enabled buttons and check boxes, moves
sliders, sets and types into spin boxes, picks combo entries, types into line edits, switches
tabs, triggers menu actions, opens images from a corpus of every Pillow mode
(tests/image_modes.py, plus a non-image and a truncated file), loads the tiny test checkpoints
(and a folder that is not one), opens File > Export and drives it, and waits. While a modal
dialog is up only its widgets are used; message boxes, input dialogs and popup menus are closed
(or answered) by a timer; file dialogs are replaced by a chooser that returns a corpus path, an
export path, or cancels.

It records a **failure** for: an exception reaching Qt's event loop (``sys.excepthook``), a
traceback printed on stderr (a bug caught and printed), an error banner / message box / label
whose text names a Python exception (``TypeError: ...``, the GUI's message for a bug, see
``gui.workers.error_text``), the event loop frozen for more than :data:`STALL_S` (a heartbeat
timer), and, across cycles (every ``--cycle`` seconds, once the runs have been stopped and every
job has ended), growth of Python threads, OS threads, ``QThreadPool`` threads or RSS.

    OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen python benchmarks/exerciser.py --seconds 600 --seed 1

Prints actions done, per-kind counts, the longest stall, threads and memory at the start and
the end, and every failure with its seed and the actions before it. tests/gui/test_exerciser.py
runs it for ``EXERCISER_SECONDS`` (default 60) and fails on any failure.
"""
from __future__ import annotations

import argparse
import collections
import faulthandler
import gc
import io
import os
import random
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

#: the longest the event loop may go without a heartbeat, in seconds
STALL_S = 2.0
#: action kind -> weight
WEIGHTS = {"click": 28, "slider": 10, "spin": 12, "type_spin": 4, "combo": 10, "line_edit": 5,
           "tab": 8, "menu": 5, "open_image": 6, "load_model": 3, "export": 3, "wait": 6}
MODELS = (dict(size=16, channels=1, timesteps=50, seed=0), dict(size=16, channels=3, timesteps=40, seed=1))
#: a message that names a Python exception is the GUI's text for a bug
BUG_TEXT = re.compile(r"Traceback \(most recent call last\)|\b[A-Z]\w*(Error|Exception)\b: ")
_NEVER = re.compile(r"quit|exit|close window", re.I)
_STOPS = re.compile(r"^\s*(stop|cancel|pause)", re.I)
_TEXTS = ["", "0", "-1", "3", "1e9", "nan", "abc", " 12 ", "\u00e9\u00df\u4e2d", "x" * 300,
          "../..", "/nonexistent/file.png", "moons", "digits"]


def malloc_trim() -> bool:
    """glibc's ``malloc_trim(0)``: free memory its arenas still hold goes back to the system, so
    what RSS shows after it is what is live (plus fragmentation). False where there is no glibc."""
    import ctypes
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def paused_jobs() -> int:
    """Started jobs whose worker is paused (see :func:`diffusion_gui.gui.workers.running_jobs`)."""
    from diffusion_gui.gui import workers
    keeper = workers._keeper
    return 0 if keeper is None else sum(1 for j in list(keeper.jobs) if j.worker.is_paused)


class Tee(io.TextIOBase):
    """stderr that also remembers the tracebacks written to it."""

    def __init__(self, real):
        self.real, self.tracebacks, self._buf = real, [], ""

    def write(self, s):
        self.real.write(s)
        self._buf = (self._buf + s)[-20000:]
        if "Traceback (most recent call last)" in self._buf:
            self.tracebacks.append(self._buf[self._buf.index("Traceback"):])
            self._buf = ""
        return len(s)

    def flush(self):
        self.real.flush()


class Exerciser:
    """Builds the window and its corpus in ``workdir``; :meth:`run` drives it."""

    def __init__(self, workdir, seed: int = 0, out=print):
        import numpy as np
        from image_modes import make_all
        from PIL import Image
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication
        from tiny_models import make_checkpoint
        self.app = QApplication.instance() or QApplication([])
        self.dir = Path(workdir)
        self.out = out
        self.seed = seed
        self.rng = random.Random(seed)
        for sub in ("corpus", "exports", "models", "empty"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        # typed relative paths ("abc.png" in an export target) land here, not where it was started
        self._cwd = os.getcwd()
        os.chdir(self.dir / "exports")
        corpus = self.dir / "corpus"
        self.images = list(make_all(corpus).values())
        big = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(big).save(corpus / "noise.jpg")
        (corpus / "not_an_image.png").write_text("hello")
        good = (corpus / "noise.jpg").read_bytes()
        (corpus / "truncated.jpg").write_bytes(good[: len(good) // 3])
        self.images += [corpus / "noise.jpg", corpus / "not_an_image.png", corpus / "truncated.jpg"]
        self.models = [str(make_checkpoint(self.dir / "models" / f"m{k}", **kw))
                       for k, kw in enumerate(MODELS)]
        self.counts: collections.Counter = collections.Counter()
        self.growth: collections.Counter = collections.Counter()     # RSS bytes by action
        import psutil
        self._proc = psutil.Process()
        self.n_actions = 0
        self.failures: list[dict] = []
        self.log: collections.deque = collections.deque(maxlen=25)
        self.max_gap = 0.0
        self.max_gap_after = ""
        self._patches: list = []
        from diffusion_gui.gui.context import AppContext
        from diffusion_gui.gui.main_window import MainWindow
        self.ctx = AppContext(settings=QSettings(str(self.dir / "settings.ini"), QSettings.IniFormat))
        self.win = MainWindow(self.ctx)
        self.win.show()

    # ------------------------------------------------------------------ the event loop
    def spin(self, ms: int = 0):
        from PySide6.QtCore import QEventLoop, QTimer
        if ms <= 0:
            self.app.processEvents()
            return
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_until(self, pred, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while not pred():
            if time.monotonic() > end:
                return False
            self.spin(10)
        return True

    def _beat(self):
        now = time.monotonic()
        gap = now - self._last_beat
        self._last_beat = now
        if gap > self.max_gap:
            self.max_gap, self.max_gap_after = gap, (self.log[-1] if self.log else "")
        if gap > STALL_S:
            stack = self._stall_stack()         # read (and cleared) in any case
            if self._armed:
                self.fail("stall", f"the event loop did not run for {gap:.2f} s" + stack)
        self._rearm_dump()

    def _rearm_dump(self):
        """faulthandler's own C thread (it needs no GIL) writes every thread's stack into a file
        when no beat has come for :data:`STALL_S`: where the GUI thread was stuck."""
        f = getattr(self, "_dump_file", None)
        if f is None:
            return
        if self._armed:
            faulthandler.dump_traceback_later(STALL_S, repeat=False, file=f)
        else:
            faulthandler.cancel_dump_traceback_later()

    def _stall_stack(self) -> str:
        f = getattr(self, "_dump_file", None)
        if f is None:
            return ""
        f.flush()
        f.seek(0)
        text = f.read()
        f.seek(0)
        f.truncate()
        main = [b for b in text.split("\n\n") if "(most recent call first)" in b
                and f"{threading.main_thread().ident:#018x}" in b.lower()]
        return ("\n  the GUI thread was in:\n" + (main[0] if main else text)) if text else ""

    # ------------------------------------------------------------------ failures
    def fail(self, kind: str, detail: str):
        self.failures.append({"kind": kind, "detail": detail[-4000:], "seed": self.seed,
                              "action": self.n_actions, "last": list(self.log)[-10:]})

    def _excepthook(self, etype, value, tb):
        import traceback
        self.fail("exception", "".join(traceback.format_exception(etype, value, tb)))
        if self._prev_hook is not None:
            self._prev_hook(etype, value, tb)

    def _check_texts(self):
        for title, msg in self.win.errors[self._seen_errors:]:
            if BUG_TEXT.search(msg):
                self.fail("bug message", f"banner {title!r}: {msg}")
        self._seen_errors = len(self.win.errors)
        for tb in self.tee.tracebacks[self._seen_tbs:]:
            self.fail("traceback", tb)
        self._seen_tbs = len(self.tee.tracebacks)

    def _check_labels(self):
        from PySide6.QtWidgets import QLabel
        for w in self._top_levels():
            for lab in w.findChildren(QLabel):
                if lab.isVisible() and BUG_TEXT.search(lab.text() or ""):
                    key = lab.text()
                    if key not in self._seen_labels:
                        self._seen_labels.add(key)
                        self.fail("bug message", f"label: {key}")

    # ------------------------------------------------------------------ dialogs
    def _choose_path(self, kind: str) -> str:
        r = self.rng.random()
        if r < 0.2:
            return ""                                        # cancelled
        if kind == "open":
            return str(self.rng.choice(self.images))
        if kind == "folder":
            return str(self.rng.choice([*self.models, self.dir / "corpus", self.dir / "empty",
                                        self.dir / "exports" / "new-frames"]))
        ext = self.rng.choice([".gif", ".mp4", ".webm", ".webp", ".apng", ".png", ".svg", ".csv",
                               "", ".txt"])
        return str(self.dir / "exports" / f"out{self.rng.randrange(4)}{ext}")

    def _patch_dialogs(self):
        from PySide6.QtGui import QDesktopServices
        from PySide6.QtWidgets import QFileDialog

        def patch(owner, name, fn):
            self._patches.append((owner, name, owner.__dict__.get(name, getattr(owner, name))))
            setattr(owner, name, staticmethod(fn))
        patch(QFileDialog, "getOpenFileName", lambda *a, **k: (self._choose_path("open"), ""))
        patch(QFileDialog, "getSaveFileName", lambda *a, **k: (self._choose_path("save"), ""))
        patch(QFileDialog, "getExistingDirectory", lambda *a, **k: self._choose_path("folder"))
        patch(QDesktopServices, "openUrl", lambda *a, **k: True)

    def _close_dialogs(self):
        """Answer what blocks: popup menus, message boxes, input dialogs; a window-modal dialog
        (the Export dialog) is used for a while, then closed."""
        from PySide6.QtWidgets import QDialog, QInputDialog, QMessageBox
        pop = self.app.activePopupWidget()
        if pop is not None:
            pop.close()
        modal = self.app.activeModalWidget()
        if modal is None:
            self._modal_since = None
            return
        if isinstance(modal, QMessageBox):
            if BUG_TEXT.search(modal.text() + " " + modal.informativeText()):
                self.fail("bug message", f"message box {modal.windowTitle()!r}: {modal.text()}")
            self.counts["dialog answered"] += 1
            buttons = modal.buttons()
            if self._closing:                      # at the end: discard, so the window closes
                discard = [b for b in buttons
                           if modal.buttonRole(b) == QMessageBox.DestructiveRole]
                discard[0].click() if discard else modal.reject()
            elif buttons and self.rng.random() < 0.5:
                self.rng.choice(buttons).click()
            else:
                modal.reject()
        elif isinstance(modal, QInputDialog):
            self.counts["dialog answered"] += 1
            modal.setTextValue(self.rng.choice(_TEXTS))
            modal.accept() if self.rng.random() < 0.5 else modal.reject()
        elif isinstance(modal, QDialog):
            now = time.monotonic()
            if self._modal_since is None or self._modal_since[0] is not modal:
                self._modal_since = (modal, now, self.rng.uniform(2.0, 8.0))
            elif now - self._modal_since[1] > self._modal_since[2]:
                running = getattr(modal, "is_running", None)
                if not (callable(running) and running()) or now - self._modal_since[1] > 30:
                    modal.reject()
                    self.counts["dialog closed"] += 1

    # ------------------------------------------------------------------ widgets
    def _top_levels(self):
        modal = self.app.activeModalWidget()
        if modal is not None:
            return [modal]
        return [w for w in self.app.topLevelWidgets() if w.isVisible()]

    def _widgets(self, cls):
        from PySide6.QtWidgets import QAbstractSpinBox, QComboBox
        out = []
        for top in self._top_levels():
            for w in top.findChildren(cls):
                if not (w.isVisible() and w.isEnabled()):
                    continue
                p = w.parent()
                if isinstance(p, (QAbstractSpinBox, QComboBox)):
                    continue                                 # their inner line edit
                out.append(w)
        return out

    def _name(self, w) -> str:
        text = getattr(w, "text", lambda: "")() if hasattr(w, "text") else ""
        tip = w.toolTip()[:30] if hasattr(w, "toolTip") else ""
        return f"{type(w).__name__}({(text or w.objectName() or tip)[:40]!r})"

    # ------------------------------------------------------------------ actions
    def do_click(self):
        from PySide6.QtWidgets import QAbstractButton
        bs = [b for b in self._widgets(QAbstractButton) if not _NEVER.search(b.text() or "")]
        if not bs:
            return "no button"
        b = self.rng.choice(bs)
        desc = f"click {self._name(b)}"
        self.log.append(desc)
        b.click()
        return desc

    def do_slider(self):
        from PySide6.QtWidgets import QAbstractSlider
        ss = self._widgets(QAbstractSlider)
        if not ss:
            return "no slider"
        s = self.rng.choice(ss)
        lo, hi = s.minimum(), s.maximum()
        n = self.rng.choice([1, 1, 5, 12])                   # a jump, or a drag
        self.log.append(f"slider {self._name(s)} x{n} in {lo}..{hi}")
        for _ in range(n):
            if s.isVisible() and s.isEnabled():
                s.setValue(self.rng.choice([lo, hi, self.rng.randint(lo, hi) if hi >= lo else lo]))
            self.spin(self.rng.choice([0, 0, 15]))
        return self.log[-1]

    def do_spin(self):
        from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox
        ss = self._widgets(QSpinBox) + self._widgets(QDoubleSpinBox)
        if not ss:
            return "no spin box"
        s = self.rng.choice(ss)
        lo, hi = s.minimum(), s.maximum()
        r = self.rng.random()
        if r < 0.25:
            v = lo
        elif r < 0.33:
            v = hi
        elif r < 0.7:
            v = s.value() + self.rng.choice([-1, 1]) * s.singleStep()
        else:                  # log-uniform between: small values are more common than huge ones
            span = max(hi - lo, 0)
            v = lo + (span + 1) ** self.rng.random() - 1
            v = v if isinstance(s, QDoubleSpinBox) else int(round(v))
        v = min(max(v, lo), hi)                   # float rounding may step past the ends
        self.log.append(f"spin {self._name(s)} = {v}")
        s.setValue(v)
        return self.log[-1]

    def do_type_spin(self):
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest
        from PySide6.QtWidgets import QAbstractSpinBox
        ss = self._widgets(QAbstractSpinBox)
        if not ss:
            return "no spin box"
        s = self.rng.choice(ss)
        text = self.rng.choice(["", "0", "-5", "999999", "abc", "1.5", "12"])
        self.log.append(f"type {text!r} into {self._name(s)}")
        s.lineEdit().selectAll() if s.lineEdit() is not None else None
        QTest.keyClicks(s, text)
        QTest.keyClick(s, Qt.Key_Return)
        return self.log[-1]

    def do_combo(self):
        from PySide6.QtWidgets import QComboBox
        cs = [c for c in self._widgets(QComboBox) if c.count()]
        if not cs:
            return "no combo"
        c = self.rng.choice(cs)
        k = self.rng.randrange(c.count())
        self.log.append(f"combo {self._name(c)} -> {c.itemText(k)!r}")
        c.setCurrentIndex(k)
        return self.log[-1]

    def do_line_edit(self):
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest
        from PySide6.QtWidgets import QLineEdit
        es = [e for e in self._widgets(QLineEdit) if not e.isReadOnly()]
        if not es:
            return "no line edit"
        e = self.rng.choice(es)
        text = self.rng.choice(_TEXTS + [str(self.rng.choice(self.images)),
                                         str(self.dir / "exports" / "typed.gif")])
        self.log.append(f"type {text[:40]!r} into {self._name(e)}")
        e.clear()
        if text.isascii():
            QTest.keyClicks(e, text)
        else:
            e.insert(text)                       # QTest types ASCII only
        if self.rng.random() < 0.7:
            QTest.keyClick(e, Qt.Key_Return)
        return self.log[-1]

    def do_tab(self):
        from PySide6.QtWidgets import QTabWidget
        ts = [t for t in self._widgets(QTabWidget) if t.count()]
        if not ts:
            return "no tabs"
        t = self.rng.choice(ts)
        k = self.rng.randrange(t.count())
        self.log.append(f"tab {t.tabText(k)!r}")
        t.setCurrentIndex(k)
        return self.log[-1]

    def do_menu(self):
        if self.app.activeModalWidget() is not None:
            return "modal: no menu"
        acts = []

        def walk(menu):
            for a in menu.actions():
                if a.menu() is not None:
                    walk(a.menu())
                elif a.isEnabled() and not a.isSeparator() and not _NEVER.search(a.text()):
                    acts.append(a)
        for a in self.win.menuBar().actions():
            if a.menu() is not None:
                walk(a.menu())
        if not acts:
            return "no menu action"
        a = self.rng.choice(acts)
        self.log.append(f"menu {a.text()!r}")
        a.trigger()
        return self.log[-1]

    def do_open_image(self):
        if self.app.activeModalWidget() is not None:
            return "modal: no open"
        p = self.rng.choice(self.images)
        self.log.append(f"open image {p.name}")
        self.win.open_image(p, wait=False)
        return self.log[-1]

    def do_load_model(self):
        if self.app.activeModalWidget() is not None:
            return "modal: no load"
        spec = self.rng.choice([*self.models, *self.models, str(self.dir / "empty")])
        self.log.append(f"load model {Path(spec).name}")
        self.ctx.load_model(spec)
        return self.log[-1]

    def do_export(self):
        if self.app.activeModalWidget() is not None:
            return "modal: no export"
        self.log.append("File > Export")
        self.win.export_dialog()
        return self.log[-1]

    def do_wait(self):
        ms = self.rng.choice([50, 200, 600])
        self.log.append(f"wait {ms} ms")
        self.spin(ms)
        return self.log[-1]

    # ------------------------------------------------------------------ cycles
    def stop_everything(self, timeout_s: float | None = None) -> bool:
        """Close dialogs, press every visible Stop / Cancel / Pause, switch through the tabs
        doing so, and wait for every job to end or to be paused (the 2-D lab trains until it
        is paused: a paused job, one thread, is a steady state)."""
        from PySide6.QtWidgets import QAbstractButton, QDialog

        from diffusion_gui.gui.workers import running_jobs
        self._armed = False
        end = time.monotonic() + (SETTLE_S if timeout_s is None else timeout_s)
        while time.monotonic() < end:
            for d in self.app.topLevelWidgets():
                if isinstance(d, QDialog) and d.isVisible():
                    running = getattr(d, "is_running", None)
                    if callable(running) and running():
                        for b in d.findChildren(QAbstractButton):
                            if b.isVisible() and b.isEnabled() and _STOPS.match(b.text() or ""):
                                b.click()
                    else:
                        d.reject()
            tabs = self.win.tabs
            for k in range(tabs.count()):
                tabs.setCurrentIndex(k)
                self.spin(0)
                for b in tabs.widget(k).findChildren(QAbstractButton):
                    if b.isVisible() and b.isEnabled() and _STOPS.match(b.text() or ""):
                        b.click()
            self.spin(100)
            for p in self.win.panels.values():        # timed work that starts after a change
                w = getattr(p, "wait_for_chain", None)
                if callable(w):
                    w()
            if running_jobs() == paused_jobs():
                self.spin(50)
                if running_jobs() == paused_jobs():
                    return True
        from soak import describe_jobs
        self.out(f"not settled: {describe_jobs()}")
        return False

    def measure(self) -> dict:
        import psutil
        from PySide6.QtCore import QThreadPool
        from PySide6.QtWidgets import QApplication
        settled = self.stop_everything()
        gc.collect()
        self.spin(20)
        p = psutil.Process()
        held = p.memory_info().rss / 2 ** 20
        trimmed = malloc_trim()      # what glibc keeps in its arenas, handed back: not a leak
        return {"settled": settled, "paused": paused_jobs(), "threads": threading.active_count(),
                "os_threads": p.num_threads(),
                "pool": QThreadPool.globalInstance().activeThreadCount(),
                "widgets": len(QApplication.allWidgets()), "rss_mb": p.memory_info().rss / 2 ** 20,
                "rss_held_mb": held, "trimmed": trimmed, "held": self.held_arrays(),
                "types": object_types()}

    def held_arrays(self, top: int = 6) -> list[tuple[str, float]]:
        """MB of numpy arrays and torch tensors reachable from each panel's attributes (and the
        context's), by ``panel.attribute``, largest first: where the live memory is."""
        import numpy as np
        roots = [(f"{k}.", p) for k, p in self.win.panels.items()] + [("ctx.", self.win.ctx)]
        seen, sizes = set(), collections.Counter()
        for prefix, root in roots:
            stack = [(prefix + a, v, 0) for a, v in vars(root).items()]
            while stack:
                name, o, depth = stack.pop()
                if id(o) in seen or depth > 8 or isinstance(o, (str, bytes, int, float, type)):
                    continue
                seen.add(id(o))
                if isinstance(o, np.ndarray):
                    sizes[name] += o.nbytes
                elif type(o).__module__.startswith("torch") and hasattr(o, "untyped_storage"):
                    sizes[name] += o.untyped_storage().nbytes()
                elif isinstance(o, dict):
                    stack += [(name, v, depth + 1) for v in o.values()]
                elif isinstance(o, (list, tuple, set, frozenset, collections.deque)):
                    stack += [(name, v, depth + 1) for v in o]
                elif hasattr(o, "__dict__") and not callable(o) and type(o).__module__ not in ("builtins",):
                    stack += [(name, v, depth + 1) for v in vars(o).values()]
                elif hasattr(o, "__slots__"):
                    stack += [(name, getattr(o, a, None), depth + 1) for a in o.__slots__]
        return [(k, v / 2 ** 20) for k, v in sizes.most_common(top)]

    def step(self):
        kinds = list(WEIGHTS)
        kind = self.rng.choices(kinds, weights=[WEIGHTS[k] for k in kinds])[0]
        self.counts[kind] += 1
        self.n_actions += 1
        before = self._proc.memory_info().rss
        desc = getattr(self, f"do_{kind}")()
        self.spin(self.rng.choice([0, 0, 5, 20, 60]))
        grew = self._proc.memory_info().rss - before
        if grew > 0:
            self.growth[str(desc).split(" = ")[0][:70]] += grew
        self._check_texts()
        if self.n_actions % 25 == 0:
            self._check_labels()

    def warm_up(self):
        """Load a model and an image, visit every tab once: lazy imports and first builds are
        not stalls of random use."""
        from diffusion_gui.gui.panels.forward import backend_ready, ensure_backend
        ensure_backend()
        self.wait_until(backend_ready, 120)
        self.ctx.load_model(self.models[0])
        self.wait_until(lambda: self.ctx.model is not None, 60)
        self.win.open_image(self.images[5], wait=True)
        for k in range(self.win.tabs.count()):
            self.win.tabs.setCurrentIndex(k)
            self.spin(100)

    def run(self, seconds: float, cycle_s: float = 15.0) -> dict:
        from PySide6.QtCore import QTimer
        self.tee = Tee(sys.stderr)
        real_stderr, sys.stderr = sys.stderr, self.tee
        self._prev_hook, sys.excepthook = sys.excepthook, self._excepthook
        self._seen_errors = self._seen_tbs = 0
        self._seen_labels: set = set()
        self._modal_since = None
        self._armed = False
        self._closing = False
        self._patch_dialogs()
        self._dump_file = tempfile.TemporaryFile("w+")
        beat = QTimer(interval=50)
        self._last_beat = time.monotonic()
        beat.timeout.connect(self._beat)
        beat.start()
        closer = self._closer = QTimer(interval=150)
        closer.timeout.connect(self._close_dialogs)
        closer.start()
        try:
            self.warm_up()
            rows = [(0.0, self.measure())]
            t0 = time.monotonic()
            next_cycle = t0 + cycle_s
            self._last_beat = time.monotonic()
            self._armed = True
            while time.monotonic() - t0 < seconds:
                self.step()
                if time.monotonic() >= next_cycle:
                    rows.append((time.monotonic() - t0, self.measure()))
                    self.out(self.row_text(rows[-1], rows[0][1]))
                    next_cycle = time.monotonic() + cycle_s
                    self._last_beat = time.monotonic()
                    self._armed = True
            rows.append((time.monotonic() - t0, self.measure()))
            self.out(self.row_text(rows[-1], rows[0][1]))
            self._check_texts()
        finally:
            beat.stop()
            closer.stop()
            faulthandler.cancel_dump_traceback_later()
            sys.stderr, sys.excepthook = real_stderr, self._prev_hook
            for owner, name, old in reversed(self._patches):
                setattr(owner, name, old)
            self._patches.clear()
        self.check_growth(rows)
        return {"rows": rows, "counts": dict(self.counts), "actions": self.n_actions,
                "max_gap_s": self.max_gap, "max_gap_after": self.max_gap_after,
                "failures": self.failures, "seed": self.seed, "growth": dict(self.growth)}

    def check_growth(self, rows):
        """After the first cycle (warm caches): threads back to where they were, RSS bounded."""
        if len(rows) < 3:
            return
        base, end = rows[1][1], rows[-1][1]
        if not end["settled"]:
            self.fail("jobs", f"the runs did not all end within {SETTLE_S:.0f} s of pressing Stop")
        extra = max(0, end["paused"] - base["paused"])        # a paused job keeps its thread
        for key, slack in (("threads", 1), ("os_threads", 2), ("pool", 0)):
            if end[key] > base[key] + slack + (extra if key != "pool" else 0):
                self.fail("thread growth", f"{key} {base[key]} -> {end[key]} over the run")
        if end["widgets"] > base["widgets"] + WIDGET_GROWTH:
            self.fail("widget growth", f"live widgets {base['widgets']} -> {end['widgets']}")
        rss = [m["rss_mb"] for _, m in rows[1:] if m["settled"]]
        steps = [b - a for a, b in zip(rss, rss[1:])]
        if len(steps) >= 3 and all(d > LEAK_STEP_MB for d in steps) and steps[-1] >= steps[0] / 2:
            self.fail("memory growth", "RSS grew at every cycle: "
                      + ", ".join(f"{d:+.0f}" for d in steps) + " MB")
        if end["rss_mb"] - base["rss_mb"] > RSS_GROWTH_MB:
            self.fail("memory growth", f"RSS {base['rss_mb']:.0f} -> {end['rss_mb']:.0f} MB")

    @staticmethod
    def row_text(row, base) -> str:
        t, m = row
        return (f"{t:7.1f} s: python threads {m['threads']:>2}, OS threads {m['os_threads']:>3}, "
                f"pool {m['pool']}, paused jobs {m['paused']}, widgets {m['widgets']:>5}, RSS {m['rss_mb']:7.1f} MB "
                f"({m['rss_mb'] - base['rss_mb']:+.1f}; {m.get('rss_held_mb', m['rss_mb']):.1f} before malloc_trim)"
                f"{'' if m['settled'] else ', NOT SETTLED'}"
                + ("\n           arrays held: " + ", ".join(f"{k} {v:.0f} MB" for k, v in m["held"] if v >= 1)
                   if m.get("held") else "")
                + ("\n           objects grown: " + ", ".join(
                    f"{k} {v:+d}" for k, v in (m["types"] - base["types"]).most_common(12))
                   if m.get("types") and base.get("types") else ""))

    def close(self):
        """Stop, close the window (its questions answered by the closer), restore the hooks."""
        from PySide6.QtCore import QTimer
        closer = QTimer(interval=150)
        closer.timeout.connect(self._close_dialogs)
        closer.start()
        self._closing = True
        os.chdir(self._cwd)
        try:
            self.stop_everything(10)
            self.win.close()
            self.spin(20)
        finally:
            closer.stop()


#: Memory. Random use picks what a user may pick: the Forward panel's chain of T frames at
#: 128 px or more (it shows its own memory: about 1 GB), UNets trained at up to 48 px, export
#: previews of 2000 x 1500 px. RSS is measured after gc and glibc's malloc_trim(0): what the
#: allocator merely holds swings by a GB and comes back. Trimmed, seed 3 for 10 minutes (7470
#: actions) stayed within 828..1128 MB after its first cycle (1018 MB) and ended at 1020 MB.
#: With devices and bfloat16 copies (File > Device) it rose to +1152 MB and still climbing
#: while the model cache kept every model loaded; with the cache at two models (7850 actions)
#: +736 MB at the end, flat from 5 minutes on (678..757 MB). ``--who-holds CLASS`` names who
#: keeps what is live; each row says which panel holds arrays and which classes grew.
#: So a leak is RSS growing by more than LEAK_STEP_MB at *every* settled cycle (at least three
#: steps) without slowing down (the last step at least half the first), and RSS_GROWTH_MB
#: bounds the whole run: room for one live 1 GB chain more at the end than after the first cycle.
LEAK_STEP_MB = 20.0
RSS_GROWTH_MB = 1536.0
#: live widgets may grow this much (a dialog left open at the end has ~400)
WIDGET_GROWTH = 600
#: seconds to wait for every job to end after pressing Stop
SETTLE_S = 90.0


def report(res: dict, out=print):
    out(f"seed {res['seed']}: {res['actions']} actions; longest stall {res['max_gap_s']:.2f} s "
        f"(after: {res['max_gap_after']})")
    out("per kind: " + ", ".join(f"{k} {v}" for k, v in sorted(res["counts"].items())))
    (_, a), (_, b) = res["rows"][0], res["rows"][-1]
    out(f"start: python threads {a['threads']}, OS threads {a['os_threads']}, pool {a['pool']}, "
        f"RSS {a['rss_mb']:.1f} MB; end: python threads {b['threads']}, OS threads "
        f"{b['os_threads']}, pool {b['pool']}, RSS {b['rss_mb']:.1f} MB")
    top = sorted(res.get("growth", {}).items(), key=lambda kv: -kv[1])[:8]
    out("RSS grown during (MB): " + ", ".join(f"{k} {v / 2 ** 20:.1f}" for k, v in top))
    for f in res["failures"]:
        out(f"FAILURE [{f['kind']}] seed {f['seed']} at action {f['action']}: {f['detail']}")
        out("  after: " + " | ".join(f["last"]))


def object_types() -> collections.Counter:
    """Live gc-tracked objects by ``package.Class``, builtins left out: what grows is named."""
    out = collections.Counter()
    for o in gc.get_objects():
        mod = getattr(type(o), "__module__", None)
        if isinstance(mod, str) and mod not in ("builtins", "collections"):
            out[f"{mod.split('.')[0]}.{type(o).__qualname__}"] += 1
    return out


def who_holds(cls_name: str, limit: int = 6, depth: int = 7, out=print):
    """For up to ``limit`` live objects of class ``cls_name``: one chain of referrers each (the
    owner's class and, for a dict, the key), up to ``depth`` steps: who keeps it alive."""
    gc.collect()
    objs = [o for o in gc.get_objects() if type(o).__name__ == cls_name][:limit]
    out(f"{cls_name}: {sum(type(o).__name__ == cls_name for o in gc.get_objects())} live")
    skip = {id(objs)}
    for o in objs:
        chain, cur = [], o
        for _ in range(depth):
            refs = [r for r in gc.get_referrers(cur) if id(r) not in skip
                    and not isinstance(r, type(sys._getframe()))]
            if not refs:
                break
            r = refs[0]
            if isinstance(r, dict):
                key = next((k for k, v in r.items() if v is cur), "?")
                chain.append(f"dict[{str(key)[:40]}]")
            else:
                chain.append(type(r).__qualname__)
            skip.add(id(refs))
            cur = r
        out("  " + " <- ".join(chain))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cycle", type=float, default=30.0, help="seconds between measurements")
    ap.add_argument("--who-holds", nargs="*", default=[], metavar="CLASS",
                    help="at the end, who keeps the live objects of these classes (a leak hunt)")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as d:
        for var in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
            os.environ[var] = str(Path(d) / "home")
        os.environ["DIFFUSION_GUI_RUNS"] = str(Path(d) / "runs")
        ex = Exerciser(d, seed=args.seed)
        res = ex.run(args.seconds, cycle_s=args.cycle)
        for name in args.who_holds:
            who_holds(name)
        ex.close()
        report(res)
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
