"""What classifier-free guidance does to a class-conditional digits model, for its model card.

    python benchmarks/guidance.py [MODEL] [--per-class 20] [--steps 50] [--no-write]

For w in 0, 1, 2, 4, 8 (``eps_u + w (eps_c - eps_u)``), ``per-class`` DDIM samples of every
digit from one seed (the same x_T for every w), judged by the digits classifier
(``diffusion_gui.models.quality``): the share in the requested class, the judge's mean
probability of it, and the diversity within a class (mean pairwise RMS pixel distance). The
held-out real digits' diversity is printed as the reference. Writes ``guidance.json`` beside
the model and a "Guidance" section into its ``model_card.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from diffusion_gui.models.data import digits
from diffusion_gui.models.loader import load_model
from diffusion_gui.models.quality import digit_classifier, diversity
from diffusion_gui.sessions.guidance import DEFAULT_SCALES, guidance_sweep


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="digits-cond")
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    model = load_model(a.model)
    clf = digit_classifier(model.sample_size)
    held, labels = digits(model.sample_size, "heldout")
    ref = diversity(held, labels)
    print(f"held-out real digits: diversity within a class {ref:.4f}", flush=True)
    rows = []
    for r in guidance_sweep(model, DEFAULT_SCALES, per_class=a.per_class, steps=a.steps, seed=0, judge=clf):
        rows.append(r.to_json())
        print(json.dumps(r.to_json()), flush=True)
    out = {"method": f"{a.per_class} samples of each digit per guidance scale w, DDIM {a.steps} steps "
                     f"(eta 0), seed 0 (the same x_T for every w); judged by the digits classifier "
                     f"(diffusion_gui/models/quality.py); diversity = mean pairwise RMS pixel distance "
                     f"within a class (pixels in [-1, 1]). `python benchmarks/guidance.py`.",
           "heldout_diversity": ref, "rows": rows}
    if not a.no_write:
        folder = Path(model.source)
        (folder / "guidance.json").write_text(json.dumps(out, indent=2))
        _card(folder, out)
        print(f"wrote {folder / 'guidance.json'}")
    return 0


def _card(folder: Path, g: dict):
    card = folder / "model_card.md"
    if not card.is_file():
        return
    text = card.read_text()
    head, _, rest = text.partition("\n## Guidance")
    tail = rest[rest.find("\n## ", 1):] if rest and rest.find("\n## ", 1) >= 0 else ""
    lines = ["", "## Guidance", "", g["method"], "",
             "| w | in the requested class | judge's probability of it | diversity within a class |",
             "|---|---|---|---|"]
    lines += [f"| {r['guidance']:g} | {100 * r['accuracy']:.1f}% | {r['confidence']:.3f} | {r['diversity']:.4f} |"
              for r in g["rows"]]
    lines += ["", f"Held-out real digits: diversity within a class {g['heldout_diversity']:.4f}."]
    card.write_text(head.rstrip() + "\n" + "\n".join(lines) + "\n" + tail)


if __name__ == "__main__":
    sys.exit(main())
