"""The original design next to the exact model: the shipped binarized-MNIST checkpoints on the same images.

    python bench/original_design.py [--weights weights] [--data-dir ../shared/data] [--images 100]

For each checkpoint: the test NLL (nats per image, all 10,000 test images) and the sampling loss of the
teacher-forced reconstruction (`pixelrnn.reconstruct`: cross-entropy in nats per value of the predicted
distributions against the true values, and the fraction of values restored wrong) on the same first
`--images` test images.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pixelrnn  # noqa: E402
from pixelrnn.datasets import load_splits  # noqa: E402
from pixelrnn.evaluate import evaluate  # noqa: E402

CHECKPOINTS = ("binarized-mnist", "original-many-to-many", "original-many-to-one")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "weights"))
    parser.add_argument("--data-dir")
    parser.add_argument("--images", type=int, default=100)
    args = parser.parse_args()
    rows = {}
    for name in CHECKPOINTS:
        model = pixelrnn.PixelRNN.from_pretrained(Path(args.weights) / name)
        test = load_splits("binarized-mnist", model.config, folder=args.data_dir).test
        *_, restored = pixelrnn.reconstruct(model, test[: args.images])
        c = model.config
        rows[name] = {
            "model": f"{c['cell'].upper()} {c['hidden_size']}, {c['row_head']} row head, {c['mode']}"
                     + (f" (window {c['window']})" if c["mode"] == "many-to-one" else ""),
            "parameters": pixelrnn.count_parameters(model),
            "test_nll_nats": evaluate(model, test)["nll_nats"],
            "sampling_loss": restored.loss,
            "values_wrong": restored.error_rate,
        }  # fmt: skip
    print(f"{'checkpoint':<24}{'model':<58}{'params':>10}{'test NLL':>10}{'sampling loss':>15}{'wrong':>8}")
    for name, row in rows.items():
        print(f"{name:<24}{row['model']:<58}{row['parameters']:>10,}{row['test_nll_nats']:>10.2f}{row['sampling_loss']:>15.4f}{row['values_wrong']:>8.4f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
