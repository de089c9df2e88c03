"""The NLL table: every checkpoint in weights/ on its data's test split, next to the published figures.

CIFAR-10 checkpoints are scored on the original pixels of 9,979 of the 10,000 test images, the figure
comparable to published ones.

    python bench/nll_table.py [--weights weights] [--data-dir DIR] [--max-images N]

Each checkpoint folder carries the train.json of the run that made it; its `data` names the source.
Binarized MNIST is the standard benchmark (nats per image, lower is better). A class-conditional
checkpoint's NLL is its exact marginal -log p(x); the figure given each image's true class follows it.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pixelrnn  # noqa: E402
from pixelrnn.datasets import load_splits  # noqa: E402
from pixelrnn.evaluate import evaluate  # noqa: E402

PUBLISHED = [  # binarized MNIST test NLL, nats per image
    ("NADE (Uria et al. 2014)", 88.9),
    ("MADE (Germain et al. 2015)", 86.6),
    ("PixelCNN (van den Oord et al. 2016)", 81.3),
    ("Row LSTM (van den Oord et al. 2016)", 80.5),
    ("Diagonal BiLSTM, 7 layers (van den Oord et al. 2016)", 79.2),
    ("best published exact-likelihood models", 77.6),
]
PUBLISHED_CIFAR = [  # CIFAR-10 test, bits per dim, on the original pixels
    ("PixelCNN (van den Oord et al. 2016)", 3.14),
    ("Row LSTM (van den Oord et al. 2016)", 3.07),
    ("Diagonal BiLSTM (van den Oord et al. 2016)", 3.00),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(Path(__file__).resolve().parents[1] / "weights"))
    parser.add_argument("--data-dir")
    parser.add_argument("--max-images", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for folder in sorted(p for p in Path(args.weights).iterdir() if (p / "config.json").exists()):
        model = pixelrnn.PixelRNN.from_pretrained(folder)
        settings = json.loads((folder / "train.json").read_text()) if (folder / "train.json").exists() else {}
        source = settings.get("data", "binarized-mnist")
        conditional = bool(model.config["classes"])
        splits = load_splits(source, model.config, folder=args.data_dir, copies=settings.get("copies", 512), seed=settings.get("seed", 0),
                             labels=conditional)  # fmt: skip
        split = "test" if splits.test is not None else "valid"
        images = getattr(splits, split)[: args.max_images or None]
        labels = splits.labels_of(split)[: len(images)] if conditional else None
        start = time.perf_counter()
        figures = evaluate(model, images, labels=labels)
        rows.append((folder.name, source, split, len(images), figures, time.perf_counter() - start, pixelrnn.count_parameters(model)))
    print(f"{'checkpoint':<28}{'data':<20}{'split':<7}{'images':>7}{'NLL nats':>10}{'bits/dim':>10}{'params':>11}{'eval s':>8}")
    for name, source, split, count, figures, seconds, params in rows:
        print(f"{name:<28}{source:<20}{split:<7}{count:>7}{figures['nll_nats']:>10.2f}{figures['bits_per_dim']:>10.4f}{params:>11,}{seconds:>8.1f}")
        if "conditional_nll_nats" in figures:
            print(f"{'  given the true class':<62}{figures['conditional_nll_nats']:>10.2f}{figures['conditional_bits_per_dim']:>10.4f}"
                  f"   (the model as a classifier: {figures['class_accuracy']:.1%} right)")  # fmt: skip
    print("\npublished, binarized MNIST test NLL (nats per image):")
    for name, nll in PUBLISHED:
        print(f"  {name:<55}{nll:>6.1f}")
    print("published, CIFAR-10 test bits/dim (original pixels; cifar10 above: 9,979 of the 10,000 test images):")
    for name, bits in PUBLISHED_CIFAR:
        print(f"  {name:<55}{bits:>6.2f}")
    print(json.dumps({f"{name} ({source})": figures for name, source, _, _, figures, _, _ in rows}))


if __name__ == "__main__":
    main()
