"""A small MLP's training speed in a worker thread with one torch thread set per thread
(``core.threads.limit_this_thread``, what ``toy2d_mlp.one_thread`` does now), process-wide
(``torch.set_num_threads``, what it did before) and not limited, side by side in one run.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/one_thread.py
"""
from __future__ import annotations

import threading
import time

import torch

from diffusion_gui.core.threads import limit_this_thread


def main(rounds: int = 6, steps: int = 300) -> dict:
    net = torch.nn.Sequential(torch.nn.Linear(2, 128), torch.nn.SiLU(), torch.nn.Linear(128, 128),
                              torch.nn.SiLU(), torch.nn.Linear(128, 2))
    opt = torch.optim.Adam(net.parameters())

    def loop() -> float:
        t = time.perf_counter()
        for _ in range(steps):
            x = torch.randn(256, 2)
            loss = (net(x) - x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return steps / (time.perf_counter() - t)

    res: dict[str, list[float]] = {"per_thread": [], "process_wide": [], "unlimited": []}
    before = torch.get_num_threads()

    def job(mode: str):
        if mode == "process_wide":
            torch.set_num_threads(1)
        elif mode == "per_thread":
            limit_this_thread(1)
        res[mode].append(loop())
        if mode == "process_wide":
            torch.set_num_threads(before)

    for _ in range(rounds):
        for mode in res:
            t = threading.Thread(target=job, args=(mode,))
            t.start()
            t.join()
    for mode, v in res.items():
        print(f"{mode:>13}: " + ", ".join(f"{x:.0f}" for x in v) + " steps/s")
    best = {k: max(v) for k, v in res.items()}
    print(f"per_thread / process_wide (best of {rounds}): {best['per_thread'] / best['process_wide']:.2f}")
    return res


if __name__ == "__main__":
    main()
