"""``diffusion-gui train`` unchanged under ``accelerate launch``, 2 processes on this CPU (gloo).

With ``DIFFUSION_GUI_DEBUG_SHARDS=1`` every process logs the dataset rows it trained on and a
checksum of its final weights. Against a single-process run of the same configuration:

- each process saw a different half of every global batch, and together exactly that batch
  (rank r took rows r, r + 2, ...), so the data is sharded, not duplicated;
- both processes end with bit-identical weights (gradients are synchronised), and those weights
  equal the single-process run's (the averaged shard gradients are the full-batch gradient);
- only the main process writes: one "saved" line, one pipeline, which loads.

``accelerate launch --multi_gpu`` only picks torchrun as the launcher: on a machine without GPUs
accelerate runs the processes on the CPU with the gloo backend (``--cpu`` would run just one).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("accelerate")
pytestmark = pytest.mark.slow   # several processes: `make test-fast` skips it

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--preset", "tiny", "--size", "8", "--batch", "8", "--steps", "3", "--threads", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", DIFFUSION_GUI_DEBUG_SHARDS="1", CUDA_VISIBLE_DEVICES="",
               HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
               **extra)
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_MIXED_PRECISION"):
        env.pop(k, None)
    return env


def _log(path: Path):
    lines = [json.loads(ln) for ln in path.read_text().splitlines()]
    head, rows, tail = lines[0], {d["step"]: d["rows"] for d in lines if "rows" in d}, lines[-1]
    return head, rows, tail.get("final_sha256")


def _state(folder):
    return torch.load(folder / "checkpoint" / "state.pt", map_location="cpu", weights_only=True)


@pytest.mark.timeout(240)
def test_two_processes_shard_the_data_and_stay_in_sync(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    r = subprocess.run([sys.executable, "-m", "diffusion_gui", "train", *ARGS, "-o", str(single)],
                       env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_free_port()),
              "-m", "diffusion_gui", "train", *ARGS, "-o", str(multi)]
    r = subprocess.run(launch, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    assert r.stdout.count("saved ") == 1                     # only the main process reports

    _, ref_rows, _ = _log(single / "debug" / "shard-rank0.jsonl")
    (h0, rows0, sha0), (h1, rows1, sha1) = (_log(multi / "debug" / f"shard-rank{k}.jsonl") for k in (0, 1))
    assert (h0, h1) == ({"rank": 0, "world": 2}, {"rank": 1, "world": 2})
    assert sorted(rows0) == sorted(rows1) == sorted(ref_rows) == [1, 2, 3]
    for step, full in ref_rows.items():
        assert len(full) == 8 and rows0[step] == full[0::2] and rows1[step] == full[1::2]
        assert rows0[step] != rows1[step]                    # the processes saw different data
    assert sha0 is not None and sha0 == sha1                 # gradients were synchronised

    # one pipeline, written by the main process, loads; its weights match the 1-process run's
    from diffusers import DDPMPipeline
    pipe = DDPMPipeline.from_pretrained(str(multi))
    assert pipe.unet.config.sample_size == 8
    a, b = _state(single), _state(multi)
    assert int(b["step"]) == 3
    for name, v in a["unet"].items():
        torch.testing.assert_close(b["unet"][name], v, rtol=1e-4, atol=1e-5, msg=name)
    assert (multi / "model_card.md").is_file()
