"""How much memory one training step takes, estimated before a run starts.

A torch backward pass cannot be interrupted: a step too big for the machine swaps or is killed,
and Stop waits for it. :func:`step_memory_bytes` estimates the peak memory of one step of
:func:`~diffusion_gui.models.train.train` (forward, backward, gradient clipping, AdamW, EMA):

- **parameters**: :data:`PARAM_COPIES` float32 copies of every parameter: the weights, their
  gradients, AdamW's two moments, the EMA copy, and the temporaries of AdamW's foreach update;
- **activations**: the bytes of the tensors autograd saves for the backward pass, counted with
  ``torch.autograd.graph.saved_tensors_hooks`` during one forward (and loss) with grad at batch 1
  on the real network and size (each storage once, parameters left out), times the batch, times
  :data:`ACTIVATION_FACTOR` for what the backward pass allocates on top (activation gradients,
  convolution workspaces);
- plus :data:`FIXED_BYTES` for the allocator and autograd bookkeeping.

The factors come from measurement: ``benchmarks/step_memory.py`` runs real steps in a subprocess
and compares their peak RSS growth with the estimate. On a 2-core CPU (one torch thread, as the
panel trains) the estimate was 1.12-1.38x the measured growth for small and medium networks at
16-64 px and batches of 16-128 (0.36-3.5 GB), never under: past the parameters a step took
1.2-1.6x the bytes saved for backward, the most on small networks (up to 55 MB over 1.5x, which
:data:`FIXED_BYTES` covers). A tiny network at 8 px is all fixed part (an estimate of ~140 MB
for a few MB measured): harmless, it is far from any limit.

Measuring a network (built on the meta device, zeroed, one forward) takes up to ~0.2 s for the
biggest preset and size, so the GUI does it in the background; the batch-1 figures are cached per
network (preset, size, channels, variance, class embeddings), so a new batch costs nothing.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

#: float32 copies of the parameters a step holds at its peak: weights, gradients, AdamW's
#: exp_avg and exp_avg_sq, the EMA weights, and ~2 of AdamW's foreach temporaries
PARAM_COPIES = 7
#: peak activation memory of a step over the bytes saved for backward: measured 1.2-1.6
#: (benchmarks/step_memory.py); the fixed part below takes up the top of that range
ACTIVATION_FACTOR = 1.5
#: allocator slack (glibc keeps freed chunks) and autograd bookkeeping of a step: small
#: networks' steps grew the peak RSS by up to 55 MB more than 1.5x their saved bytes
FIXED_BYTES = 128 * 2 ** 20
FLOAT32_BYTES = 4

_cache: dict[tuple, "NetworkMemory"] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class NetworkMemory:
    """What a step's memory is made of for one network: ``parameters`` (a count) and
    ``saved_per_image``, the bytes autograd saves for backward per image of the batch."""

    parameters: int
    saved_per_image: int

    def step_bytes(self, batch_size: int) -> int:
        """The estimated peak bytes of one training step at ``batch_size`` images."""
        params = PARAM_COPIES * FLOAT32_BYTES * self.parameters
        activations = ACTIVATION_FACTOR * self.saved_per_image * int(batch_size)
        return int(params + activations + FIXED_BYTES)


def step_memory_bytes(preset: str, size: int, channels: int, batch_size: int,
                      variance: str = "fixed_small", num_class_embeds: int | None = None) -> int:
    """Estimated peak memory (bytes) of one training step of ``preset`` at ``size`` px with
    ``channels`` channels and ``batch_size`` images; ``variance="learned_range"`` doubles the
    output channels and trains L_hybrid, ``num_class_embeds`` makes the network conditional
    (as :func:`~diffusion_gui.models.train.train` builds it). Up to ~0.2 s on a new network
    (it is built and run once at batch 1), then cached: microseconds."""
    return network_memory(preset, size, channels, variance, num_class_embeds).step_bytes(batch_size)


def step_memory_of(cfg) -> int:
    """:func:`step_memory_bytes` of a :class:`~diffusion_gui.models.train.TrainConfig`."""
    from .train import unet_kwargs
    return step_memory_bytes(cfg.preset, cfg.size, cfg.channels, cfg.batch_size, cfg.variance,
                             unet_kwargs(cfg)["num_class_embeds"])


def network_memory(preset: str, size: int, channels: int, variance: str = "fixed_small",
                   num_class_embeds: int | None = None) -> NetworkMemory:
    """The parameter count and saved bytes per image of a network (measured once, cached)."""
    key = (preset, int(size), int(channels), variance, num_class_embeds or None)
    with _lock:
        if key in _cache:
            return _cache[key]
    net = _measure(*key)
    with _lock:
        _cache[key] = net
    return net


def available_memory_bytes() -> int:
    """Memory the system can give a new allocation without swapping (``psutil``'s ``available``)."""
    import psutil
    return int(psutil.virtual_memory().available)


def format_bytes(n: float) -> str:
    """``"1.2 GB"``, ``"350 MB"``: decimal units, as the system monitors show them."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.0f} MB" if n >= 1e7 else f"{n / 1e6:.1f} MB"


# ------------------------------------------------------------------------------ measuring
def _measure(preset: str, size: int, channels: int, variance: str,
             num_class_embeds: int | None) -> NetworkMemory:
    """Build the network as training does and count what one batch-1 forward saves. Its
    weights are zeros, not a random initialisation (what is saved does not depend on the
    values): torch's global random stream, which a starting run seeds, is left alone."""
    unet = _zero_unet(preset, size, channels, variance, num_class_embeds)
    saved = saved_bytes(lambda: _loss(unet, size, channels, variance, num_class_embeds),
                        unet.parameters())
    from .unet import count_parameters
    return NetworkMemory(count_parameters(unet), saved)


def _zero_unet(preset: str, size: int, channels: int, variance: str, num_class_embeds: int | None):
    """``build_unet`` with training's arguments, built on the meta device (no initialisation),
    then given zeroed CPU storage."""
    import torch

    from .unet import build_unet, output_channels
    with torch.device("meta"):
        unet = build_unet(preset, size, channels, num_class_embeds=num_class_embeds,
                          out_channels=output_channels(channels, variance))
    unet.to_empty(device="cpu")
    with torch.no_grad():
        for t in (*unet.parameters(), *unet.buffers()):
            t.zero_()
    return unet


def saved_bytes(forward, parameters=()) -> int:
    """Bytes autograd saves for backward while ``forward()`` runs (with grad): every saved
    tensor's storage counted once, the storages of ``parameters`` left out. The graph is
    dropped afterwards (no backward is run)."""
    import torch
    skip = {p.untyped_storage().data_ptr() for p in parameters}
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in skip:
            seen[s.data_ptr()] = s.nbytes()
        return t   # kept by the graph: a storage's address is not reused while it is counted

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    del out
    return sum(seen.values())


def _loss(unet, size: int, channels: int, variance: str, num_class_embeds: int | None):
    """The loss :class:`~diffusion_gui.models.train._Loop` takes a step of, on one random image."""
    import torch

    from .train import TrainConfig, train_diffusion
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, channels, size, size, generator=g) * 2 - 1
    eps, i = torch.randn(x0.shape, generator=g), torch.randint(0, 1000, (1,), generator=g)
    diffusion = train_diffusion(TrainConfig(out_dir="", variance=variance))
    x_t = diffusion.q_sample(x0, i, eps)
    y = None if not num_class_embeds else torch.zeros(1, dtype=torch.long)
    pred = unet(x_t, i, class_labels=y).sample
    if variance != "learned_range":
        return (pred.float() - eps).pow(2).mean()
    from ..core.vlb import hybrid_loss, hybrid_terms
    return hybrid_loss(*hybrid_terms(diffusion, pred, x0, x_t, i, eps), 1000).mean()
