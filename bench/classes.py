"""Do a class-conditional model's samples follow their class, and what does the class cost or buy in NLL?

    python bench/classes.py weights/mnist-classes [--unconditional FOLDER] [--data mnist] [--per-class 100]

1. A classifier trained here, independently of the model (scikit-learn's MLP on the data's training images,
   as the model sees them: thresholded for a binary model), labels `--per-class` samples of each class; the
   table gives the share labelled as their class, beside the same classifier's accuracy on the real test
   images of that class (the ceiling).
2. Test NLL (nats per image) of the class-conditional model given the true class, its exact marginal, its
   accuracy as a classifier (the likeliest class given the image) and, with --unconditional, an
   unconditional model's NLL on the same images.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pixelrnn  # noqa: E402
from pixelrnn.datasets import load_splits  # noqa: E402
from pixelrnn.evaluate import evaluate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--unconditional", help="an unconditional model of the same data, for the NLL table")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--data-dir")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--classifier-images", type=int, default=0, help="training images for the classifier (0: all)")
    parser.add_argument("--classifier-epochs", type=int, default=50, help="passes of the classifier's training")
    parser.add_argument("--max-test", type=int, default=0, help="score the first N test images (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from sklearn.neural_network import MLPClassifier

    model = pixelrnn.PixelRNN.from_pretrained(args.model)
    names = model.config["class_names"]
    if not names:
        sys.exit(f"{args.model} is not class-conditional")
    splits = load_splits(args.data, model.config, folder=args.data_dir, labels=True)
    test, test_labels = splits.test, splits.test_labels
    if args.max_test:
        test, test_labels = test[: args.max_test], test_labels[: args.max_test]
    flat = lambda images: images.reshape(len(images), -1).numpy() / (1 if model.config["values"] == "binary" else 255)  # noqa: E731
    classifier = MLPClassifier(hidden_layer_sizes=(256,), max_iter=args.classifier_epochs, random_state=args.seed)
    known = slice(0, args.classifier_images or None)
    classifier.fit(flat(splits.train[known]), splits.train_labels[known].numpy())
    real = torch.from_numpy(classifier.predict(flat(test)))

    print(f"| class | samples labelled as their class ({args.per_class} per class) | classifier on real test images |")
    print("|---|---|---|")
    followed = []
    for index, name in enumerate(names):
        drawn = pixelrnn.last(pixelrnn.generate(model, n=args.per_class, seed=args.seed + index, labels=index)).image
        share = float((torch.from_numpy(classifier.predict(flat(drawn))) == index).float().mean())
        ceiling = float((real[test_labels == index] == index).float().mean())
        followed.append(share)
        print(f"| {name} | {share:.0%} | {ceiling:.1%} |")
    print(f"| all | {sum(followed) / len(followed):.1%} | {float((real == test_labels).float().mean()):.1%} |")

    figures = evaluate(model, test, batch_size=200, labels=test_labels, error_images=0)
    print()
    print(f"| model ({len(test):,} test images of {args.data}) | test NLL (nats per image) |")
    print("|---|---|")
    print(f"| {args.model}, given the true class | {figures['conditional_nll_nats']:.2f} |")
    print(f"| {args.model}, exact marginal p(x) | {figures['nll_nats']:.2f} |")
    if args.unconditional:
        other = pixelrnn.PixelRNN.from_pretrained(args.unconditional)
        print(f"| {args.unconditional} (unconditional) | {evaluate(other, test, batch_size=200, error_images=0)['nll_nats']:.2f} |")
    print(f"\nthe model as a classifier (likeliest class given the image): {figures['class_accuracy']:.1%} of the test images")


if __name__ == "__main__":
    main()
