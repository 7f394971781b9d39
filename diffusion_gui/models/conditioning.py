"""Class-conditional models and classifier-free guidance (Ho & Salimans 2022).

A class-conditional diffusers ``UNet2DModel`` has ``num_class_embeds`` labels. Ours are trained
with the label replaced, at a fixed rate (``label_dropout``), by one extra *null* label, so that
one network predicts both ``eps(x_t, t, y)`` and the unconditional ``eps(x_t, t)``; a pipeline
folder says so in ``classes.json``::

    {"classes": ["0", "1", ...], "null_label": 10, "label_dropout": 0.15}

Guided prediction with scale ``w`` (``w = 0``: unconditional, ``w = 1``: conditional, ``w > 1``:
pushed further towards the class)::

    eps = eps_uncond + w (eps_cond - eps_uncond)

A class-conditional checkpoint without ``classes.json`` (someone else's) loads with classes
``"0" .. "N-1"`` and no null label: it samples conditionally (``w = 1``) only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidParameter, ModelLoadError

__all__ = ["ClassInfo", "read_class_info", "write_class_info", "CLASS_FILE", "labels_for",
           "guided_eps", "MAX_GUIDANCE", "CLASS_CHOICES_HELP"]

CLASS_FILE = "classes.json"
MAX_GUIDANCE = 20.0
CLASS_CHOICES_HELP = ("a class index, 'rows' (one class a row of the batch grid), 'all' (sample k "
                      "gets class k mod N) or 'any' (unconditional)")


@dataclass(frozen=True)
class ClassInfo:
    """The labels of a class-conditional model: ``names`` (one a class), the ``null_label`` index
    of "no class" (None: the model has none, so it cannot be guided) and the training's
    ``label_dropout`` (None when unknown)."""

    names: tuple[str, ...]
    null_label: int | None = None
    label_dropout: float | None = None

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def can_guide(self) -> bool:
        return self.null_label is not None

    def to_json(self) -> dict:
        return {"classes": list(self.names), "null_label": self.null_label,
                "label_dropout": self.label_dropout}


def read_class_info(folder: Path, unet_config) -> ClassInfo | None:
    """The :class:`ClassInfo` of a pipeline ``folder`` whose UNet config is ``unet_config``
    (a mapping or a diffusers ``FrozenDict``), or None for an unconditional model."""
    n_embeds = unet_config.get("num_class_embeds") if hasattr(unet_config, "get") else None
    if not n_embeds:
        if unet_config.get("class_embed_type") not in (None, ""):
            raise ModelLoadError(f"{folder}: class_embed_type {unet_config.get('class_embed_type')!r} "
                                 f"(continuous class embeddings) is not supported; integer class "
                                 f"labels (num_class_embeds) are")
        return None
    path = Path(folder) / CLASS_FILE
    if not path.is_file():
        return ClassInfo(tuple(str(k) for k in range(int(n_embeds))))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        names = tuple(str(s) for s in raw["classes"])
        null = raw.get("null_label")
        drop = raw.get("label_dropout")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelLoadError(f"{path}: not a class list ({type(e).__name__}: {e})") from None
    if null is not None and not (isinstance(null, int) and 0 <= null < int(n_embeds)):
        raise ModelLoadError(f"{path}: null_label {null!r} is not one of the model's {n_embeds} labels")
    if len(names) + (null is not None) > int(n_embeds) or not names:
        raise ModelLoadError(f"{path}: {len(names)} classes do not fit the model's {n_embeds} labels")
    return ClassInfo(names, null, None if drop is None else float(drop))


def write_class_info(out_dir: Path, info: ClassInfo):
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / CLASS_FILE).write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")


def labels_for(info: ClassInfo | None, choice, batch: int):
    """The label of every sample, LongTensor ``[batch]``, for a class ``choice``: an index (or
    its string), ``"rows"`` (one class a row of the square-ish batch grid that
    ``core.images.tile`` lays out: sample ``k`` gets ``(k // ceil(sqrt(batch))) mod N``),
    ``"all"`` (sample ``k`` gets class ``k mod N``) or ``"any"``/None (the null label:
    unconditional). None for an unconditional model (it takes no labels)."""
    import math

    import torch
    if info is None:
        if choice not in (None, "any"):
            raise InvalidParameter("class_label", "needs a class-conditional model")
        return None
    if choice in (None, "any"):
        if info.null_label is None:         # no unconditional label: every class in turn
            return torch.arange(batch) % info.n
        return torch.full((batch,), info.null_label, dtype=torch.long)
    if choice == "all":
        return torch.arange(batch) % info.n
    if choice == "rows":
        return (torch.arange(batch) // max(1, math.ceil(math.sqrt(batch)))) % info.n
    try:
        k = int(choice)
    except (TypeError, ValueError):
        raise InvalidParameter("class_label", f"must be {CLASS_CHOICES_HELP}, not {choice!r}") from None
    if not 0 <= k < info.n:
        raise InvalidParameter("class_label", f"must be in 0..{info.n - 1}, 'rows', 'all' or 'any'")
    return torch.full((batch,), k, dtype=torch.long)


def guided_eps(unet, x, i, labels, guidance: float, null_label: int | None):
    """The network's prediction ``[B, C, H, W]`` for ``x`` ``[B, C, H, W]`` at indices ``i``
    ``[B]`` (``i = t - 1``) with ``labels`` ``[B]`` (None: an unconditional model): conditional
    at ``guidance = 1`` (or when there is no null label), unconditional at 0, and
    ``eps_u + w (eps_c - eps_u)`` otherwise, in one network call on the doubled batch."""
    import torch
    if labels is None:
        return unet(x, i).sample
    labels = labels.to(x.device)
    w = float(guidance)
    if null_label is None or w == 1.0 or bool((labels == null_label).all()):
        return unet(x, i, class_labels=labels).sample
    null = torch.full_like(labels, null_label)
    if w == 0.0:
        return unet(x, i, class_labels=null).sample
    out = unet(torch.cat([x, x]), torch.cat([i, i]), class_labels=torch.cat([labels, null])).sample
    cond, uncond = out.chunk(2)
    c = x.shape[1]
    if out.shape[1] == 2 * c:      # a learned variance: guide the prediction, keep cond's variance
        return torch.cat([uncond[:, :c] + w * (cond[:, :c] - uncond[:, :c]), cond[:, c:]], dim=1)
    return uncond + w * (cond - uncond)
