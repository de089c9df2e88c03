"""Shifted views of training images, for distribution augmentation (Jun et al. 2020).

A model with `view_shift` S is trained on its images as they are and on copies moved by up to S rows and
columns, and told which view each is; view 0, the image as it is, is the only one evaluated and sampled.
"""
import torch


def view_count(view_shift: int) -> int:
    """Views of an image shifted by up to `view_shift` pixels down/up and left/right, itself included."""
    return (2 * view_shift + 1) ** 2


def draw_views(view_shift: int, batch: int, seed: int, step: int, device) -> torch.Tensor | None:
    """Which view of its image each training image is: half the batch as it is, the rest shifted at random."""
    if not view_shift:
        return None
    generator = torch.Generator().manual_seed(seed * 1000003 + step)
    shifted = torch.randint(1, view_count(view_shift), (batch,), generator=generator)
    keep = torch.rand(batch, generator=generator) < 0.5
    return torch.where(keep, 0, shifted).to(device)


def shifted_views(x: torch.Tensor, views: torch.Tensor, view_shift: int) -> torch.Tensor:
    """(B, C, H, W) and view numbers (B,) -> each image moved by its view's shift, the uncovered edge zero.

    View v is the shift (v // n - s, v % n - s) rows and columns with n = 2s + 1, renumbered so that view 0
    is no shift.
    """
    side = 2 * view_shift + 1
    centre = view_count(view_shift) // 2
    grid = torch.where(views == 0, centre, torch.where(views <= centre, views - 1, views))  # 0 <-> centre
    rows, columns = (grid // side - view_shift).tolist(), (grid % side - view_shift).tolist()
    height, width = x.shape[-2:]
    moved = torch.zeros_like(x)
    for index, (dy, dx) in enumerate(zip(rows, columns)):
        moved[index, :, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = x[
            index, :, max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
        ]
    return moved
