"""Results as the page shows them: error maps, curves and the drawing canvas (pictures: pixelrnn.to_pil).

Pictures leave the server at one pixel per value (plus the grid's gaps): the page's CSS makes them large and
crisp, so a streamed row costs a few hundred bytes instead of an upscaled PNG.
"""
import pandas as pd
import torch
from PIL import Image


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
    return Image.fromarray(rgb.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy())


def canvas_size(width: int, height: int) -> tuple[int, int]:
    """The drawing canvas for a model's image size: about 320 pixels on its longer side, whole pixels per value."""
    scale = max(1, 320 // max(width, height))
    return (width * scale, height * scale)


def blank_canvas(width: int, height: int) -> dict:
    """White paper to draw on in black (or in colour): gray models read it inverted, as MNIST digits."""
    return {"background": Image.new("RGBA", canvas_size(width, height), "white"), "layers": [], "composite": None}


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
