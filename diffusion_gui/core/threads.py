"""torch's intra-op threads, set for one OS thread at a time.

torch's OpenMP runtime (GNU libgomp) keeps a pool of worker threads for every thread that ever
ran a parallel region, for as long as that thread lives; once the pools hold more threads than
there are cores, every team sleeps at its barriers and sampling in a worker ran at 0.47 of its
speed (benchmarks/reverse_live.py, tests/gui/test_openmp_pools.py). The GUI thread lives as long
as the app, so it must never start one, whatever torch op it runs.

``torch.set_num_threads`` cannot say that: it also sets the process-wide count that every *new*
thread starts with, so a job thread started afterwards would run on one thread too. OpenMP's
``omp_set_num_threads`` sets the count of the calling thread only (its "nthreads-var" ICV), and
torch's parallel loops read that count (``omp_get_max_threads``) in the calling thread. So
:func:`limit_this_thread` calls it directly, after torch has initialised the thread's count
(torch does that once per thread, lazily, from the process-wide count).

MKL (torch's BLAS and vector maths, e.g. ``vdSqrt`` behind a float64 ``sqrt``) runs its own
OpenMP regions with an explicit thread count, its own setting, which the ICV does not limit: a
``sqrt`` of 1000 float64 values on the GUI thread started a pool with the OpenMP count at 1. So
:func:`limit_this_thread` sets MKL's count for the calling thread too
(``MKL_Set_Num_Threads_Local``, exported by ``libtorch_cpu``).
"""
from __future__ import annotations

import ctypes
import os
from functools import lru_cache

__all__ = ["limit_this_thread", "mkl_runtime", "openmp_runtime"]


@lru_cache(maxsize=1)
def openmp_runtime():
    """The OpenMP runtime torch loaded (a ``ctypes.CDLL``), or None (not Linux, no OpenMP)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {ln.split()[-1] for ln in f if "libgomp" in ln or "libiomp" in ln}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            lib.omp_set_num_threads.argtypes = [ctypes.c_int]
            lib.omp_get_max_threads.restype = ctypes.c_int
            return lib
        except (OSError, AttributeError):
            continue
    return None


@lru_cache(maxsize=1)
def mkl_runtime():
    """torch's MKL (a ``ctypes.CDLL`` of ``libtorch_cpu`` exporting ``MKL_Set_Num_Threads_Local``),
    or None (a torch built without MKL, or one that does not export it). Imports torch."""
    import torch

    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib"):
        path = os.path.join(os.path.dirname(torch.__file__), "lib", name)
        if not os.path.exists(path):
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.MKL_Set_Num_Threads_Local.argtypes = [ctypes.c_int]
            lib.MKL_Set_Num_Threads_Local.restype = ctypes.c_int
            return lib
        except (OSError, AttributeError):
            return None
    return None


def limit_this_thread(n: int = 1) -> bool:
    """Let torch's parallel loops use at most ``n`` threads when called from the calling thread,
    leaving every other thread and every thread started later as they are. Imports torch.
    Returns False where the OpenMP runtime cannot be reached (then nothing changed)."""
    import torch

    torch.get_num_threads()          # torch's lazy per-thread set-up first, or it would undo ours
    lib = openmp_runtime()
    if lib is None:
        return False
    lib.omp_set_num_threads(max(1, int(n)))
    mkl = mkl_runtime()
    if mkl is not None:
        mkl.MKL_Set_Num_Threads_Local(max(1, int(n)))
    return torch.get_num_threads() == max(1, int(n))
