"""Render Noto Color Emoji into a folder of small RGB PNGs: the colour model's training data.

    apt-get install fonts-noto-color-emoji
    pip install fonttools
    python tools/emoji_data.py OUT [--size 32] [--holdout 0.1]

Every single-code-point emoji of the font's character map (``fontTools``) is drawn with Pillow at
109 px, the size of the font's bitmaps, with ``embedded_color=True``, composited over white,
cropped to a square around the glyph and downscaled (Lanczos) to ``size`` px. Every tenth emoji
in code-point order (``--holdout``) goes to ``OUT/heldout``, the rest to ``OUT/train``;
``OUT/README.md`` says where the pictures come from and their licence (the Noto emoji images are
Apache-2.0). A training-time tool: the app and its tests never need the font.
"""
from __future__ import annotations

import argparse
from pathlib import Path

FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
LICENCE = ("The pictures are Google's Noto Color Emoji (Debian package fonts-noto-color-emoji), "
           "whose emoji images are licensed under the Apache License 2.0 "
           "(/usr/share/doc/fonts-noto-color-emoji/copyright).")


def code_points(font_path: str) -> list[int]:
    from fontTools.ttLib import TTFont
    cmap = TTFont(font_path, lazy=True).getBestCmap()
    # pictographs only: skip joiners, variation selectors, tags, keycap bases and regional letters
    return sorted(c for c in cmap if c >= 0x2190 and not 0xFE00 <= c <= 0xFE0F and c != 0x200D
                  and not 0xE0000 <= c <= 0xE007F and not 0x1F1E6 <= c <= 0x1F1FF)


def render(ch: str, font, size: int):
    from PIL import Image, ImageDraw
    canvas = Image.new("RGBA", (160, 160), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((8, 8), ch, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        return None
    l, t, r, b = box
    side = max(r - l, b - t)
    cx, cy = (l + r) // 2, (t + b) // 2
    sq = canvas.crop((cx - side // 2, cy - side // 2, cx - side // 2 + side, cy - side // 2 + side))
    white = Image.new("RGBA", sq.size, (255, 255, 255, 255))
    white.alpha_composite(sq)
    return white.convert("RGB").resize((size, size), Image.LANCZOS)


def main(argv=None):
    from PIL import ImageFont
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--holdout-every", type=int, default=10)
    a = ap.parse_args(argv)
    out = Path(a.out)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "heldout").mkdir(parents=True, exist_ok=True)
    font = ImageFont.truetype(FONT, 109)
    n = {"train": 0, "heldout": 0}
    for k, cp in enumerate(code_points(FONT)):
        img = render(chr(cp), font, a.size)
        if img is None:
            continue
        split = "heldout" if k % a.holdout_every == a.holdout_every - 1 else "train"
        img.save(out / split / f"u{cp:05x}.png")
        n[split] += 1
    (out / "README.md").write_text(f"# Emoji, {a.size} px\n\n{n['train']} training and {n['heldout']} held-out "
                                   f"pictures, rendered by tools/emoji_data.py.\n\n{LICENCE}\n")
    print(f"{n['train']} train, {n['heldout']} held out -> {out}")


if __name__ == "__main__":
    main()
