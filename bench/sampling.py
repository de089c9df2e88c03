"""Sampling speed: carried RNN state versus re-running the RNN over the prefix for every row.

Both paths share the row head; they differ only in how each row's context is computed:
- carried: one RNN step per row (`model.context_step`), as `pixelrnn.generate` does;
- prefix: the parallel pass over all rows produced so far, for every row (H(H+1)/2 RNN steps);
- naive (also printed, small models only): a full forward pass over the whole image for every value, the
  way many PixelCNN codebases sample.
The table ends with the shipped binarized-mnist (the bar: 64 images in at most 0.1 s), then one row's
LSTM step through nn.LSTM against the fused cell that sampling uses.
Then the row head's own loop, on the shipped checkpoints and the colour model's shape: `generate` with the
library's sampler against `reference_sample_token`, the loop it replaced (a pass over the whole head for
every value, in Python), with the share of images that came out identical for the same seed.
Then `generate(fast=True)` on the shipped binarized-mnist: the RNN step's products in bfloat16, its time
against the exact path's and the images drawn alike for the same seed; `--fidelity` also scores the test
split teacher-forced through the fast step, against the exact NLL (needs ../shared/data or --data-dir).
Timings are the best of `--repeats` runs, measured in one process so the ratios hold on a noisy machine.

    python bench/sampling.py --threads 1    # the figures in the README (also with --threads 2)
    python bench/sampling.py --only-fast --fidelity --repeats 7
"""
import functools
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


def reference_sample_token(model, context, temperature=1.0, greedy=False, generator=None):
    """The masked row head's sampler before the sampling plan: a pass over the whole head for every value."""
    c, head = model.config, model.head
    values, size, k = c["values"], model.token_size, model.params_per_value
    if greedy:
        draw = lambda params, d: distributions.mode(params, values)  # noqa: E731
    else:
        shape = (context.shape[0], size, distributions.noise_size(values, c["mixtures"]))
        uniform = torch.rand(shape, generator=generator, device=context.device, dtype=context.dtype)
        noise = distributions.prepare_noise(uniform, values)
        draw = lambda params, d: distributions.sample(params, noise[:, d], values, temperature)  # noqa: E731
    in_weight = head.inp.weight * head.inp.mask  # (head, D)
    out_weight = (head.out.weight * head.out.mask).unflatten(0, (size, k))  # (D, K, head)
    out_bias = (head.out.bias + head.context_out(context)).unflatten(-1, (size, k))  # (B, D, K)
    pre_activation = head.context_in(context) + head.inp.bias
    direct = None if head.direct is None else (head.direct.weight * head.direct.mask).unflatten(0, (size, k))
    drawn = torch.zeros_like(out_bias[..., 0])  # normalized values drawn so far, for the direct connections
    tokens, params = [], []
    for d in range(size):
        params.append(torch.addmm(out_bias[:, d], head._hidden(pre_activation), out_weight[d].T))
        if direct is not None and d > 0:
            params[-1] = torch.addmm(params[-1], drawn[:, :d], direct[d, :, :d].T)
        tokens.append(draw(params[-1], d))
        value = distributions.normalize(tokens[-1], values)
        pre_activation = torch.addr(pre_activation, value, in_weight[:, d])
        drawn[:, d] = value
    return torch.stack(tokens, dim=1), torch.stack(params, dim=1)


def generate_images(model, n, seed, reference=False):
    if reference:  # the instance attribute shadows the method for this model only
        model.sample_token = functools.partial(reference_sample_token, model)
    try:
        final = pixelrnn.last(pixelrnn.generate(model, n=n, seed=seed))
    finally:
        model.__dict__.pop("sample_token", None)
    return final.image


def row_head_models():
    root = Path(__file__).resolve().parents[1] / "weights"
    models = {name: pixelrnn.PixelRNN.from_pretrained(root / name) for name in ("binarized-mnist", "cifar10") if (root / name).is_dir()}
    colour = dict(height=32, width=32, channels=3, values="8bit", hidden_size=512, head_size=512)  # the CIFAR-10 run's
    models["colour (untrained)"] = pixelrnn.PixelRNN(**colour).eval()
    return models


def best_time(function, repeats, *args, clock=time.perf_counter):
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        function(*args)
        best = min(best, clock() - start)
    return best


def carried_state(args):
    models = {
        "14x14 binary": pixelrnn.PixelRNN(height=14, width=14),
        "28x28 binary": pixelrnn.PixelRNN(),
        "28x28 binary indep.": pixelrnn.PixelRNN(row_head="independent"),
        "56x56 binary": pixelrnn.PixelRNN(height=56, width=56),
        "64x64 RGB 8-bit": pixelrnn.PixelRNN(height=64, width=64, channels=3, values="8bit", hidden_size=256),
    }
    shipped = Path(__file__).resolve().parents[1] / "weights" / "binarized-mnist"
    if shipped.is_dir():  # the app's default model (the bar: 64 images in at most 0.1 s)
        models["binarized-mnist"] = pixelrnn.PixelRNN.from_pretrained(shipped)
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
    lstm_step(args.n, args.repeats)


@torch.inference_mode()
def lstm_step(n, repeats):
    """One LSTM step of a row (hidden 512): nn.LSTM's own call against the fused cell `context_step` uses."""
    from pixelrnn.rnn_steps import lstm_step as _lstm_step

    lstm = torch.nn.LSTM(512, 512, batch_first=True).eval()
    x, state = torch.randn(n, 1, 512), (torch.zeros(1, n, 512), torch.zeros(1, n, 512))
    module = best_time(lambda: [lstm(x, state) for _ in range(28)], repeats)
    cell = best_time(lambda: [_lstm_step(lstm, x, state) for _ in range(28)], repeats)
    print(f"28 LSTM steps (hidden 512, {n} images): nn.LSTM {module:.3f} s, the fused cell {cell:.3f} s, {module / cell:.1f}x")


def fast_sampling(args):
    shipped = Path(__file__).resolve().parents[1] / "weights" / "binarized-mnist"
    if not shipped.is_dir():
        print("no weights/binarized-mnist: nothing to compare")
        return
    from pixelrnn.devices import bfloat16_is_fast

    model = pixelrnn.PixelRNN.from_pretrained(shipped)
    native = bfloat16_is_fast("cpu")
    print(f"\nfast=True on the shipped binarized-mnist: {args.n} images, best of {args.repeats}, {torch.get_num_threads()} threads, "
          f"bfloat16 {'native' if native else 'emulated (fast=True does not pay here)'} on this CPU")
    times = {False: float("inf"), True: float("inf")}
    for _ in range(args.repeats):  # interleaved, so that a busy moment costs both alike
        for fast in times:
            times[fast] = min(times[fast], best_time(draw, 1, model, args.n, 0, fast))
    same = (draw(model, args.n, 1, False) == draw(model, args.n, 1, True)).flatten(1).all(1)
    print(f"exact {times[False]:.3f} s, fast {times[True]:.3f} s: {times[False] / times[True]:.2f}x; "
          f"{int(same.sum())}/{len(same)} images identical for the same seed")
    if args.fidelity:
        from pixelrnn.datasets import load_splits
        from pixelrnn.evaluate import evaluate

        test = load_splits("binarized-mnist", model.config, folder=args.data_dir).test
        exact = evaluate(model, test)["nll_nats"]
        fast = fast_nll(model, test)
        print(f"test NLL ({len(test)} images): exact {exact:.4f} nats, through the fast step {fast:.4f} nats, "
              f"difference {fast - exact:+.4f}")


@torch.inference_mode()
def draw(model, n, seed, fast):
    *_, last = pixelrnn.generate(model, n=n, seed=seed, fast=fast)
    return last.image


@torch.inference_mode()
def fast_nll(model, images, batch_size=1000):
    """Teacher-forced NLL (nats per image) with every row's context from `context_step(fast=True)`."""
    values, total = model.config["values"], 0.0
    for start in range(0, len(images), batch_size):
        tokens = model.to_tokens(images[start : start + batch_size])
        state, previous = None, None
        for t in range(model.num_tokens):
            context, state = model.context_step(previous, state, batch_size=len(tokens), fast=True)
            params = model.token_params(context, tokens[:, t])
            total -= distributions.log_prob(params, tokens[:, t], values).double().sum().item()
            previous = tokens[:, t]
    return total / len(images)


def cores(args):
    """The spatial state (core="spatial") against today's vector shapes: 16 CIFAR-10-sized and 64 MNIST-sized
    images, untrained weights (the cost does not depend on them) and the shipped files where they exist."""
    weights = Path(__file__).resolve().parents[1] / "weights"
    cases = [
        ("cifar10 shape, vector: GRU 512, MADE 512", dict(height=32, width=32, channels=3, values="8bit", hidden_size=512, head_size=512), 16),
        ("cifar10 shape, spatial: LSTM 96, row head 96 x 4", dict(height=32, width=32, channels=3, values="8bit", core="spatial",
         batch_norm=False, cell="lstm", hidden_size=96, head_size=96, head_layers=4, mixtures=10), 16),
        ("binarized-mnist shape, vector: LSTM 512, MADE 2 x 512", dict(cell="lstm", hidden_size=512, head_size=512, head_layers=2), 64),
        ("binarized-mnist shape, spatial: LSTM 64, row head 64 x 4", dict(core="spatial", batch_norm=False, cell="lstm", hidden_size=64,
         head_size=64, head_layers=4), 64),
    ]  # fmt: skip
    models = [(name, pixelrnn.PixelRNN(**config).eval(), n) for name, config, n in cases]
    for folder in ("cifar10", "binarized-mnist"):
        if (weights / folder / "config.json").exists():
            model = pixelrnn.PixelRNN.from_pretrained(weights / folder)
            models.append((f"weights/{folder} (shipped, {model.config['core']})", model, 16 if model.config["channels"] == 3 else 64))
    print(f"\ncores: generate n images, exact path, best of {args.repeats}, {torch.get_num_threads()} threads")
    print(f"{'model':<58}{'n':>4}{'params':>11}{'seconds':>9}")
    for name, model, n in models:
        generate_images(model, n, 0)
        seconds = best_time(generate_images, args.repeats, model, n, 0)
        print(f"{name:<58}{n:>4}{pixelrnn.count_parameters(model):>11,}{seconds:>9.3f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="images per batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--head-n", type=int, default=16, help="images per batch for the row head comparison")
    parser.add_argument("--only-head", action="store_true", help="skip the carried-state comparison")
    parser.add_argument("--only-fast", action="store_true", help="only the fast=True comparison")
    parser.add_argument("--fidelity", action="store_true", help="also score the test split through the fast step")
    parser.add_argument("--only-cores", action="store_true", help="only the vector against the spatial core")
    parser.add_argument("--data-dir", default=None, help="folder of the .npz data sets (default: $PIXELRNN_DATA, else ../shared/data)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.only_cores:
        return cores(args)
    if not args.only_head:
        if not args.only_fast:
            carried_state(args)
        fast_sampling(args)
    if args.only_fast:
        return

    print(f"\nrow head: generate {args.head_n} images, library vs the replaced per-value loop, {torch.get_num_threads()} threads")
    print(f"(CPU seconds of this process, best of {args.repeats} after a warm-up: steadier than wall time on a shared machine)")
    print(f"{'model':<21}{'values':>8}{'library s':>11}{'replaced s':>12}{'speed-up':>10}{'same images':>13}")
    for name, model in row_head_models().items():
        generate_images(model, args.head_n, 0)  # scripts the loop and lets TorchScript specialize it
        ours = best_time(generate_images, args.repeats, model, args.head_n, 0, clock=time.process_time)
        theirs = best_time(generate_images, args.repeats, model, args.head_n, 0, True, clock=time.process_time)
        same = (generate_images(model, args.head_n, 1) == generate_images(model, args.head_n, 1, True)).flatten(1).all(1)
        size = model.num_tokens * model.token_size
        print(f"{name:<21}{size:>8}{ours:>11.3f}{theirs:>12.3f}{theirs / ours:>9.1f}x{f'{int(same.sum())}/{len(same)}':>13}")


if __name__ == "__main__":
    main()
