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


def _setter(path: str, name: str):
    """The C function ``int name(int)`` of the library at ``path``, or None (not there)."""
    try:
        fn = getattr(ctypes.CDLL(path), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


@lru_cache(maxsize=1)
def openmp_runtime():
    """``omp_set_num_threads`` of the OpenMP runtime torch loaded, or None (not Linux, no OpenMP)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {ln.split()[-1] for ln in f if "libgomp" in ln or "libiomp" in ln}
    except OSError:
        return None
    return next(filter(None, (_setter(p, "omp_set_num_threads") for p in sorted(paths))), None)


@lru_cache(maxsize=1)
def mkl_runtime():
    """``MKL_Set_Num_Threads_Local`` of torch's MKL (exported by ``libtorch_cpu``), or None (a torch
    built without MKL, or one that does not export it). Imports torch. (The lower-case
    ``mkl_set_num_threads_local`` is the Fortran entry point: it takes a pointer and crashes.)"""
    import torch

    lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    paths = [os.path.join(lib, n) for n in ("libtorch_cpu.so", "libtorch_cpu.dylib")]
    return next(filter(None, (_setter(p, "MKL_Set_Num_Threads_Local") for p in paths
                              if os.path.exists(p))), None)


def limit_this_thread(n: int = 1) -> bool:
    """Let torch's parallel loops use at most ``n`` threads when called from the calling thread,
    leaving every other thread and every thread started later as they are. Imports torch.
    Returns False where the OpenMP runtime cannot be reached (then nothing changed)."""
    import torch

    n = max(1, int(n))
    torch.get_num_threads()          # torch's lazy per-thread set-up first, or it would undo ours
    set_omp = openmp_runtime()
    if set_omp is None:
        return False
    set_omp(n)
    set_mkl = mkl_runtime()
    if set_mkl is not None:
        set_mkl(n)
    return torch.get_num_threads() == n
