"""Results as the page shows them: small PNGs (the browser upscales them, pixelated), error maps, curves.

Pictures leave the server at one pixel per value (plus the grid's gaps): the page's CSS makes them large and
crisp, so a streamed row costs a few hundred bytes instead of an upscaled PNG.
"""
import secrets
import time

import pandas as pd
import torch

import pixelrnn


def picture(x: torch.Tensor, model):
    """(C, H, W) or (B, C, H, W) in value space -> a PIL image, one pixel per value."""
    return pixelrnn.to_pil(x, model)


def error_map(original: torch.Tensor, shown: torch.Tensor, rows_done: int, model):
    """Where the result differs from the original, over the rows produced so far.

    Binary: the original dimmed, values turned off in blue, turned on in red. 8-bit: the mean absolute
    difference on a black-red-yellow-white scale.
    """
    original = original.reshape(shown.shape[-3:]).float().cpu()
    shown = shown.reshape(shown.shape[-3:]).float().cpu()
    height, width = original.shape[-2:]
    rgb = torch.zeros(3, height, width)
    if model.config["values"] == "binary":
        truth, result = original.mean(0), shown.mean(0)
        rgb[:] = truth * 70
        missed, extra = truth > result, truth < result
        rgb[:, missed] = torch.tensor([60.0, 120.0, 255.0])[:, None]
        rgb[:, extra] = torch.tensor([255.0, 60.0, 60.0])[:, None]
    else:
        level = (original - shown).abs().mean(0) / 255 * 3
        rgb = torch.stack([level, level - 1, level - 2]).clamp(0, 1) * 255
    rgb[:, rows_done + 1 :] = 0
    return pixelrnn.to_pil(rgb.round(), dict(model.config, channels=3, values="8bit"))


class UniqueFrames:
    """Marks each streamed picture with its own PNG text chunk, so each becomes its own file.

    Gradio names an output file by its content and rewrites that file when the same content comes again
    (a black row adds nothing to a picture); the rewrite can cut short a download of the same file that
    is still in flight. Pixels are untouched.
    """

    def __init__(self):
        self.prefix, self.count = secrets.token_hex(8), 0

    def __call__(self, image):
        self.count += 1
        image = image.copy()
        image.info["frame"] = f"{self.prefix}-{self.count}"
        return image


def paced(steps, per_second: float, max_seconds: float):
    """The steps worth showing: the first at once, then at most `per_second`, and always the last one.

    A person cannot see 28 rows in 0.1 s; sending each one costs the page a PNG, numbers and a plot.
    A request that runs past `max_seconds` stops with a message: one visitor cannot hold the app.
    """
    pending, shown_at, deadline = None, -float("inf"), time.monotonic() + max_seconds
    for step in steps:
        if time.monotonic() > deadline:
            raise pixelrnn.PixelRNNError(
                f"stopped after {max_seconds:.0f} s, the limit of one request here: ask for fewer images, "
                "or run this model with the library on your own machine"
            )
        if time.monotonic() - shown_at >= 1 / per_second:
            pending = None
            yield step
            shown_at = time.monotonic()  # counted from when the page has taken the frame: its own time is not drawing time
        else:
            pending = step
    if pending is not None:
        yield pending


def row_loss_frame(row_losses: list) -> pd.DataFrame:
    return pd.DataFrame({"row": range(len(row_losses)), "loss": row_losses})


def row_loss_curves(curves: dict) -> pd.DataFrame:
    """name -> per-row losses, as one frame with a `model` column: several curves in one plot."""
    return pd.concat([row_loss_frame(losses).assign(model=name) for name, losses in curves.items()], ignore_index=True)


def loss_frame(history: list) -> pd.DataFrame:
    """(step, nll, series) records -> the training curve, train and valid named.

    Both series are there from the first update (valid as an empty point until its first figure): the page's
    plot fixes its colours and legend on the first data it gets.
    """
    frame = pd.DataFrame(history, columns=["step", "nll", "series"])
    missing = [name for name in ("train", "valid") if name not in set(frame["series"])]
    placeholders = pd.DataFrame([(frame["step"].min() if len(frame) else 0, float("nan"), name) for name in missing], columns=frame.columns)
    return pd.concat([frame, placeholders], ignore_index=True) if missing else frame
