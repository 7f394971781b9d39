"""core.threads: a per-thread torch thread count (OpenMP and MKL), leaving other threads alone.

Runs in a subprocess with 2 threads (``make test`` sets OMP_NUM_THREADS=1, where every count is
1 and nothing could be told apart)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(r"""
    import json, threading, torch
    from diffusion_gui.core.threads import limit_this_thread
    from diffusion_gui.core.toy2d_mlp import one_thread

    def in_thread(fn):
        out = []
        t = threading.Thread(target=lambda: out.append(fn()))
        t.start(); t.join()
        return out[0]

    r = {"default": in_thread(torch.get_num_threads)}
    r["limited_ok"] = limit_this_thread(1)
    r["limited"] = torch.get_num_threads()
    r["other_after_limit"] = in_thread(torch.get_num_threads)
    limit_this_thread(2)
    r["lifted"] = torch.get_num_threads()

    def inside():
        with one_thread():
            seen = {"inside": torch.get_num_threads(), "other": in_thread(torch.get_num_threads)}
        seen["restored"] = torch.get_num_threads()
        return seen
    r.update(in_thread(inside))
    x = torch.linspace(0.01, 1, 5000, dtype=torch.float64)
    limit_this_thread(1)
    r["sqrt_same"] = bool(torch.equal(x.sqrt(), in_thread(lambda: x.sqrt())))
    print("RESULT " + json.dumps(r))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the per-thread count is read from libgomp")
def test_limit_is_per_thread_and_one_thread_restores_it():
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=120)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    r = json.loads(lines[-1][len("RESULT "):])
    assert r == {"default": 2, "limited_ok": True, "limited": 1, "other_after_limit": 2, "lifted": 2,
                 "inside": 1, "other": 2, "restored": 2, "sqrt_same": True}, r
