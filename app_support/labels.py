"""The words of the page that handlers and tests both read."""
RESTORE, COMPLETE = "restore (teacher-forced)", "complete from the first rows"

SPLITS = {"test": "test", "valid": "validation", "train": "training"}


def measured(metrics: dict) -> str:
    """A card's metrics said as the README's tables say them: "test NLL 78.97 nats, 0.145 bits/dim".

    NLLs are nats per image, bits per dim per value; epoch and step name the checkpoint they were measured on
    (the best by validation NLL, not the run's last step). Any other metric is shown as plain text.
    """
    from app_support.text import plain

    metrics = {name: value for name, value in (metrics or {}).items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
    if not metrics:
        return ""
    figures = []
    for split, word in SPLITS.items():
        nll, bits = metrics.pop(f"{split}_nll_nats", None), metrics.pop(f"{split}_bits_per_dim", None)
        said = ([f"NLL {nll:.2f} nats"] if nll is not None else []) + ([f"{bits:.3f} bits/dim"] if bits is not None else [])
        if said:
            figures.append(f"{word} {', '.join(said)}")
    where = [f"{name} {int(metrics.pop(name)):,}" for name in ("epoch", "step") if name in metrics]
    figures += [f"{plain(name)} {value:.4g}" if isinstance(value, float) else f"{plain(name)} {value}" for name, value in metrics.items()]
    if not figures:
        return ""
    checkpoint = f" on the checkpoint kept ({', '.join(where)})" if where else ""
    return f"Measured{checkpoint}: {'; '.join(figures)}."
