"""Builds docs/gallery.png (content | style | result for each painting, balanced preset),
docs/before-after.png (tubingen before and after, with The Starry Night) and docs/seamless.png
(a seamless result laid 2x2, so that any seam would show as a cross).

    .venv/bin/python docs/make_gallery.py

Images come from benchmarks/images (credits in CREDITS.md there): tubingen with each painting.
Credits: Tübingen photograph by Andreas Praefcke (CC BY 3.0); paintings public domain
(van Gogh, Munch, Turner, Matisse).
"""

import sys
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BENCH = REPO / "benchmarks" / "images"  # credits: CREDITS.md there
PAINTINGS = ["starry_night.jpg", "the_scream.jpg", "shipwreck.jpg", "woman-with-hat-matisse.jpg"]
H = 240


def thumb(img: Image.Image) -> Image.Image:
    img = img.convert("RGB")
    return img.resize((round(img.width * H / img.height), H), Image.LANCZOS)


def main():
    import stylecore

    content = Image.open(BENCH / "tubingen.jpg")
    content.thumbnail((512, 512))
    rows = []
    for painting in PAINTINGS:
        style = Image.open(BENCH / painting)
        result = stylecore.stylize(content, style, preset="balanced").to_pil()
        rows.append([thumb(content), thumb(style), thumb(result)])
        if painting == PAINTINGS[0]:
            pair = Image.new("RGB", (content.width * 2 + 10, content.height), "white")
            pair.paste(content.convert("RGB"), (0, 0))
            pair.paste(result, (content.width + 10, 0))
            pair.save(REPO / "docs" / "before-after.png")
    widths = [max(r[i].width for r in rows) for i in range(3)]
    sheet = Image.new("RGB", (sum(widths) + 40, len(rows) * (H + 10) + 30), "white")
    d = ImageDraw.Draw(sheet)
    for i, label in enumerate(["content", "style", "stylecore (balanced)"]):
        d.text((10 + sum(widths[:i]) + 10 * i, 8), label, fill="black")
    for j, row in enumerate(rows):
        x = 10
        for i, im in enumerate(row):
            sheet.paste(im, (x, 25 + j * (H + 10)))
            x += widths[i] + 10
    sheet.save(REPO / "docs" / "gallery.png")

    small = content.copy()
    small.thumbnail((384, 384))
    tile = stylecore.stylize(small, Image.open(BENCH / PAINTINGS[0]), preset="balanced", seamless=True).to_pil()
    laid = Image.new("RGB", (tile.width * 2, tile.height * 2))
    for x in (0, tile.width):
        for y in (0, tile.height):
            laid.paste(tile, (x, y))
    laid.save(REPO / "docs" / "seamless.png")


if __name__ == "__main__":
    main()
