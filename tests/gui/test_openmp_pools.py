"""The GUI thread never runs torch's parallel code, so that sampling runs at full speed.

torch's OpenMP runtime (GNU libgomp) keeps a pool of worker threads for every thread that ever
ran a parallel region, for as long as that thread lives. Once the pools hold more threads than
there are cores, every team waits at its barriers by sleeping instead of spinning, and sampling
in a worker thread ran at 0.47 of its speed (benchmarks/reverse_live.py). Worker threads end
with their job, taking their pool along; the GUI thread lives as long as the app, so it must
never start one.

How it is seen: a new thread inherits the name of the thread that creates it. The GUI thread is
named like the process ("python"); job threads are named after their QThread
("diffusion-gui-job-N") and Qt's own threads otherwise. So a libgomp pool of the GUI thread
shows up as a new thread with the process's name. The check runs in a subprocess with 2 torch
threads (``make test`` runs with 1, which never starts a pool), drives the real main window
through a soak cycle (open image, scrub, Generate, Export, Generate + Stop, switch model) and
every tab, then counts those threads. The guard is ``core.threads.limit_this_thread(1)`` on the GUI
thread once torch is imported (gui/backend.py): a convolution there then starts no pool either,
while a job thread still gets both threads; finally the limit is lifted and the same convolution
must make the count grow, which proves the check can see a pool.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # a subprocess / soak / several processes: `make test-fast` skips it

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(r"""
    import json, os, sys, tempfile, time
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    sys.path.insert(0, os.path.join(ROOT, "tests"))

    def same_named_threads():
        main = str(os.getpid())
        name = open(f"/proc/self/task/{main}/comm").read().strip()
        n = 0
        for tid in os.listdir("/proc/self/task"):
            if tid == main:
                continue
            try:
                n += open(f"/proc/self/task/{tid}/comm").read().strip() == name
            except FileNotFoundError:
                pass
        return n

    from soak import Soak, spin, wait_until
    from reverse_live import in_thread
    import tiny_models

    # the tiny checkpoints are built (torch ops) in a thread that ends, like any job
    real_make = tiny_models.make_checkpoint
    tiny_models.make_checkpoint = lambda *a, **k: in_thread(lambda: real_make(*a, **k))

    s = Soak(tempfile.mkdtemp(), steps=5)
    import torch
    assert in_thread(torch.get_num_threads) == 2      # what every job thread gets
    # the baseline once it is steady: the OpenMP workers of a thread that has just ended (the
    # checkpoints' builder) may take a moment to exit, and counting one of them would make the
    # cycle look as if it had ended a thread (CI once saw before 3, after 2)
    before, steady_since = same_named_threads(), time.monotonic()
    deadline = steady_since + 15
    while time.monotonic() - steady_since < 1.5 and time.monotonic() < deadline:
        spin(100)
        n = same_named_threads()
        if n != before:
            before, steady_since = n, time.monotonic()
    s.cycle(0)
    for key in s.win._keys:                  # every panel shown (the loss panel computes)
        s._tab(key)
        spin(1000)
    s.settle()
    wait_until(lambda: not any(j.is_running() for j in s.ctx._jobs), what="jobs to end")
    after = same_named_threads()
    gui_threads = torch.get_num_threads()    # the GUI thread's own count (core/threads.py)
    job_threads = in_thread(torch.get_num_threads)
    with torch.no_grad():                    # a big op on the GUI thread: serial, no pool
        torch.nn.functional.conv2d(torch.ones(8, 16, 64, 64), torch.ones(16, 16, 3, 3))
    big_op = same_named_threads()
    from diffusion_gui.core.threads import limit_this_thread
    limit_this_thread(2)                     # positive control: lift the limit, and a pool appears
    with torch.no_grad():
        torch.nn.functional.conv2d(torch.ones(8, 16, 64, 64), torch.ones(16, 16, 3, 3))
    control = same_named_threads()
    s.close()
    print("RESULT " + json.dumps({"before": before, "after": after, "big_op": big_op, "control": control,
                                  "gui_threads": gui_threads, "job_threads": job_threads}))
    sys.stdout.flush()
    os._exit(0)
""")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.timeout(240)
def test_gui_thread_never_starts_an_openmp_pool(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", QT_QPA_PLATFORM="offscreen",
               DIFFUSION_GUI_SETTINGS="test-openmp")
    proc = subprocess.run([sys.executable, "-c", f"ROOT = {str(ROOT)!r}\n" + SCRIPT], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=220)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT "):])
    assert r["after"] == r["before"], (
        f"the GUI thread started {r['after'] - r['before']} thread(s) during the cycle "
        f"(an OpenMP pool: torch ran on the GUI thread): {r}")
    assert r["gui_threads"] == 1 and r["job_threads"] == 2, (
        f"the GUI thread must run torch on one thread and a job thread on all of them: {r}")
    assert r["big_op"] == r["after"], f"a big op on the GUI thread started a pool: {r}"
    assert r["control"] > r["big_op"], f"the check cannot see a pool of the GUI thread: {r}"
