"""The original design's colour experiment: fit one RGB photograph, binarized per channel, then restore it.

    python scripts/fit_one_photo.py [--photo astronaut] [--size 64] [--steps 1500]

Each row is flattened over all channels (R, G, B of pixel 0, then pixel 1, ...): 64 rows of 192 values in
{0, 1}. The model is the original design (GRU, independent row head, many-to-many), trained on the one
image; the restoration is teacher-forced (`pixelrnn.reconstruct`), and its sampling loss is the
cross-entropy in nats per value against the image. Writes docs/fit-one-photo.png: the photo as the model
sees it, next to the restoration.
"""
import argparse
import sys
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pixelrnn  # noqa: E402
from pixelrnn.datasets import Splits  # noqa: E402
from pixelrnn.train import TrainConfig, run  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default="astronaut", help="a photograph of skimage.data")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--out", default=str(ROOT / "runs" / "fit-one-photo"))
    args = parser.parse_args()
    from skimage import data

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photo = out / f"{args.photo}.png"
    Image.fromarray(getattr(data, args.photo)()).save(photo)
    model_config = dict(height=args.size, width=args.size, channels=3, values="binary", row_head="independent",
                        hidden_size=args.hidden_size)  # fmt: skip
    original = pixelrnn.load_image(photo, model_config)
    # The one image is the whole training set (200 copies make an epoch of 200 steps) and the validation set.
    splits = Splits(original.repeat(200, 1, 1, 1), original[None], None, f"the photograph {args.photo}")
    config = TrainConfig(data=str(photo), out=str(out / "run"), epochs=0, max_steps=args.steps, batch_size=1,
                         lr=2e-3, warmup_steps=100, log_every=100, save_every=500, overwrite=True)  # fmt: skip
    for _ in run(config, model_config, splits=splits):
        pass
    model = pixelrnn.PixelRNN.from_pretrained(out / "run")
    *_, restored = pixelrnn.reconstruct(model, original)
    print(f"{args.photo}, {args.size}x{args.size}, 3 binary channels, {args.steps} steps: "
          f"sampling loss {restored.loss:.2e} nats per value, values wrong {restored.error_rate:.4f}")  # fmt: skip
    pair = torch.stack([original, restored.image[0].cpu()])
    pixelrnn.to_pil(pair, model, scale=4).save(ROOT / "docs" / "fit-one-photo.png")


if __name__ == "__main__":
    main()
