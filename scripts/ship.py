"""Copy a run's best checkpoint into weights/<name>/, stored in float16 to keep it small, and measure it as shipped.

    python scripts/ship.py <name> [--as <shipped name>] [--command "..."]

The figures in the shipped model card are measured here, on the float16 weights as they load (into a
float32 model), so the card describes exactly the file in weights/.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pixelrnn  # noqa: E402
from pixelrnn import checkpoint  # noqa: E402
from pixelrnn.card import card_fields  # noqa: E402
from pixelrnn.datasets import load_splits  # noqa: E402
from pixelrnn.evaluate import evaluate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--runs", default=str(ROOT / "runs"))
    parser.add_argument("--as", dest="shipped_as", help="the folder name in weights/ (default: the run's name)")
    parser.add_argument("--command", help="the command that reproduces the run (default: from its card)")
    args = parser.parse_args()
    run, target = Path(args.runs) / args.name, ROOT / "weights" / (args.shipped_as or args.name)
    trained = pixelrnn.PixelRNN.from_pretrained(run)
    settings = json.loads((run / "train.json").read_text())
    fields = card_fields((run / "README.md").read_text())
    command = args.command or fields.get("command")

    target.mkdir(parents=True, exist_ok=True)
    half = pixelrnn.PixelRNN(**trained.config)
    half.load_state_dict(trained.state_dict())
    half.half()
    checkpoint.save(half, target)  # weights on disk in float16
    shipped = pixelrnn.PixelRNN.from_pretrained(target)  # as users get it: float32 model, float16 values

    labelled = bool(settings.get("labels"))
    splits = load_splits(settings["data"], shipped.config, folder=settings.get("data_dir"), copies=settings["copies"],
                         augment=settings["augment"], seed=settings["seed"], labels=labelled)  # fmt: skip
    metrics = {k: v for k, v in fields.get("metrics", {}).items() if k in ("epoch", "step")}
    for split in ("valid", "test"):
        images = getattr(splits, split)
        if images is not None:
            figures = evaluate(shipped, images, labels=splits.labels_of(split) if labelled else None)
            metrics[f"{split}_nll_nats"] = round(figures["nll_nats"], 3)
            metrics[f"{split}_bits_per_dim"] = round(figures["bits_per_dim"], 5)
            if "conditional_nll_nats" in figures:  # a class-conditional model: nll_nats above is the exact marginal
                metrics[f"{split}_conditional_nll_nats"] = round(figures["conditional_nll_nats"], 3)
                metrics[f"{split}_class_accuracy"] = round(figures["class_accuracy"], 4)
            print(f"{args.name} {split}: {figures}")
    classes = shipped.config["classes"]
    rows_of_classes = 0 < classes <= 16  # one row per class
    labels = [c for c in range(classes) for _ in range(classes)] if rows_of_classes else None
    *_, last = pixelrnn.generate(shipped, n=classes * classes if rows_of_classes else 16, seed=0, labels=labels)
    pixelrnn.to_pil(last.image, shipped, scale=4 if shipped.config["width"] <= 32 else 2).save(target / "samples.png")
    checkpoint.save(half, target, metrics=metrics, data=splits.name, command=command, samples_image="samples.png")
    for name in ("train.json", "metrics.jsonl", "loss.png"):
        shutil.copy(run / name, target / name)
    settings["command"] = command
    (target / "train.json").write_text(json.dumps(settings, indent=2) + "\n")
    size = (target / "model.safetensors").stat().st_size
    print(f"shipped {target} ({size / 2**20:.1f} MiB): {metrics}")


if __name__ == "__main__":
    main()
