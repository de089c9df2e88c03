"""The README's CIFAR-10 pictures, drawn with the shipped checkpoint.

    python scripts/cifar10_figures.py [--weights weights/cifar10] [--data-dir ../shared/data]

docs/cifar10-samples.png: 36 samples (seed 0). docs/cifar10-completions.png: the first 8 test images (top
row, original pixels), their top half kept and the bottom half drawn by the model, 3 ways (seeds 0, 1, 2).
"""
import argparse
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pixelrnn  # noqa: E402
from pixelrnn.datasets import load_splits  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "weights" / "cifar10"))
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    model = pixelrnn.PixelRNN.from_pretrained(args.weights)
    *_, samples = pixelrnn.generate(model, n=36, seed=0)
    pixelrnn.to_pil(samples.image, model, scale=3).save(ROOT / "docs" / "cifar10-samples.png")
    originals = load_splits("cifar10", model.config, folder=args.data_dir).test[:8]
    rows = [originals]
    for seed in range(3):
        *_, completed = pixelrnn.complete(model, originals, keep_rows=16, seed=seed)
        rows.append(completed.image.cpu())
    cell = 32 * 3 + 3  # a 3x picture and a 3-pixel gap
    sheet = Image.new("RGB", (8 * cell + 3, len(rows) * cell + 3), "black")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            sheet.paste(pixelrnn.to_pil(image, model, scale=3, padding=0), (3 + c * cell, 3 + r * cell))
    sheet.save(ROOT / "docs" / "cifar10-completions.png")

if __name__ == "__main__":
    main()
