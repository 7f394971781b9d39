"""A loaded network on a device and in a precision (:mod:`diffusion_gui.core.devices`).

:class:`PlacedUNet` is called as a diffusers ``UNet2DModel`` is -- ``unet(x, t,
class_labels=None).sample`` -- and is what :meth:`LoadedModel.on
<diffusion_gui.models.loader.LoadedModel.on>` puts in place of the CPU network: the inputs are
moved to its device and cast to its precision, and the output comes back float32 on that
device, so the step's maths never sees half precision.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch


@dataclass
class _Output:
    sample: object


class PlacedUNet:
    """``unet`` (a copy; the CPU original stays as it is) on ``device`` in ``dtype``."""

    def __init__(self, unet, device, dtype):
        self.device, self.dtype = device, dtype
        # torch's own Module.to: diffusers' override warns about a dtype cast that is intended here
        self.unet = torch.nn.Module.to(copy.deepcopy(unet), device=device, dtype=dtype)

    @property
    def config(self):
        return self.unet.config

    def parameters(self):
        return self.unet.parameters()

    def __call__(self, x, t, class_labels=None):
        """x ``[B, C, H, W]`` (any device, float), t ``[B]`` LongTensor of indices ``i = t - 1``;
        the output ``.sample`` ``[B, C', H, W]`` float32 on this device."""
        kw = {} if class_labels is None else {"class_labels": class_labels.to(self.device)}
        out = self.unet(x.to(device=self.device, dtype=self.dtype), t.to(self.device), **kw).sample
        return _Output(out.float())
