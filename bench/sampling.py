"""Sampling speed: carried RNN state versus re-running the RNN over the prefix for every row.

Both paths share the row head; they differ only in how each row's context is computed:
- carried: one RNN step per row (`model.context_step`), as `pixelrnn.generate` does;
- prefix: the parallel pass over all rows produced so far, for every row (H(H+1)/2 RNN steps);
- naive (also printed, small models only): a full forward pass over the whole image for every value, the
  way many PixelCNN codebases sample.
Timings are the best of `--repeats` runs, measured in one process so the ratios hold on a noisy machine.

    python bench/sampling.py            # the figures in the README
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pixelrnn  # noqa: E402
from pixelrnn import distributions  # noqa: E402


@torch.inference_mode()
def generate_carried(model, n, generator):
    *_, last = pixelrnn.generate(model, n=n, seed=int(torch.randint(0, 2**31, (1,), generator=generator)))
    return last.image


@torch.inference_mode()
def generate_prefix(model, n, generator):
    values = model.config["values"]
    tokens = torch.zeros(n, model.num_tokens, model.token_size)
    for t in range(model.num_tokens):
        contexts = model.contexts(distributions.normalize(tokens[:, : t + 1], values))  # re-read the prefix
        tokens[:, t], _ = model.sample_token(contexts[:, t], generator=generator)
    return model.to_image(tokens)


@torch.inference_mode()
def generate_naive(model, n, generator):
    values = model.config["values"]
    x = torch.zeros(n, model.config["channels"], model.config["height"], model.config["width"])
    for t in range(model.num_tokens):
        for d in range(model.token_size):
            params = model(x)[:, t, d]  # a full forward pass for every value
            probs = distributions.level_log_probs(params, values).exp()
            tokens = model.to_tokens(x)
            tokens[:, t, d] = torch.multinomial(probs, 1, generator=generator)[:, 0].float()
            x = model.to_image(tokens)
    return x


def best_time(function, repeats, *args):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="images per batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {
        "14x14 binary": pixelrnn.PixelRNN(height=14, width=14),
        "28x28 binary": pixelrnn.PixelRNN(),
        "28x28 binary indep.": pixelrnn.PixelRNN(row_head="independent"),
        "56x56 binary": pixelrnn.PixelRNN(height=56, width=56),
        "64x64 RGB 8-bit": pixelrnn.PixelRNN(height=64, width=64, channels=3, values="8bit", hidden_size=256),
    }
    print(f"generate {args.n} images, best of {args.repeats}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':<21}{'rows':>6}{'carried s':>12}{'prefix s':>12}{'prefix/carried':>16}")
    for name, model in models.items():
        model.eval()
        generator = torch.Generator().manual_seed(0)
        carried = best_time(generate_carried, args.repeats, model, args.n, generator)
        prefix = best_time(generate_prefix, args.repeats, model, args.n, generator)
        print(f"{name:<21}{model.config['height']:>6}{carried:>12.3f}{prefix:>12.3f}{prefix / carried:>15.1f}x")
    small = pixelrnn.PixelRNN(height=14, width=14).eval()
    generator = torch.Generator().manual_seed(0)
    carried = best_time(generate_carried, 1, small, args.n, generator)
    naive = best_time(generate_naive, 1, small, args.n, generator)
    print(f"naive full forward pass per value, 14x14 binary: {naive:.2f} s, {naive / carried:.0f}x the carried state")


if __name__ == "__main__":
    main()
