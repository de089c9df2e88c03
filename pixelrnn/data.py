"""Images in and out: any user image -> the model's tensor, and tensors -> PIL images.

Every image a user gives passes through here (datasets, plots and the CLI use PIL for their own files).

Conventions (documented in the README):
- the EXIF orientation is applied, so a phone photo reaches the model upright, as a viewer shows it;
- transparency is composited on a black background (MNIST digits are white on black);
- binary models threshold the gray (or each RGB) value at 128: white = 1, as in MNIST;
- `fit="crop"` (default) center-crops to the model's aspect ratio, "pad" pads with the background,
  "stretch" resizes as is; downscaling is antialiased (Lanczos);
- `invert=True` (or "auto": when the border is mostly bright) turns dark-on-light drawings into MNIST style.
"""
import io
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import PixelRNNError

MAX_FILE_BYTES = 50 * 2**20
MAX_PIXELS = 40_000_000  # larger images are refused before decoding (decompression bombs)
THRESHOLD = 128
BACKGROUND = (0, 0, 0)
FITS = ("crop", "pad", "stretch")


def load_image(source, model, *, fit: str = "crop", invert=False, threshold: int = THRESHOLD) -> torch.Tensor:
    """Path, bytes, file object, PIL image, numpy array or tensor -> (C, H, W) float tensor in the model's value space."""
    config = model.config if hasattr(model, "config") else dict(model)
    if isinstance(source, torch.Tensor):
        return _check_tensor(source, config)
    if fit not in FITS:
        raise PixelRNNError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    image = read_image(source, config["channels"])
    if invert == "auto":
        invert = _border_is_bright(image)
    if invert:
        image = ImageOps.invert(image)
    image = _fit(image, config["width"], config["height"], fit)
    array = np.asarray(image, dtype=np.uint8)
    array = array[:, :, None] if array.ndim == 2 else array
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float()  # (C, H, W), 0..255
    if config["values"] == "binary":
        tensor = (tensor >= threshold).float()
    return tensor


def read_image(source, channels: int) -> Image.Image:
    """Any readable image -> a checked PIL image in mode "L" (channels=1) or "RGB" (channels=3)."""
    return _flatten_modes(_to_pil(source), channels)


def to_pil(x: torch.Tensor, model, scale: int = 1, padding: int = 1) -> Image.Image:
    """(C, H, W) image or (B, C, H, W) batch (laid out as a grid) in value space -> PIL image, nearest upscale."""
    config = model.config if hasattr(model, "config") else dict(model)
    x = x.detach().float().cpu()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise PixelRNNError(f"expected (C, H, W) or (B, C, H, W) with 1 or 3 channels, got {tuple(x.shape)}")
    if config["values"] == "binary":
        x = x * 255
    batch, channels, height, width = x.shape
    x = x.clamp(0, 255).round().to(torch.uint8)
    if batch > 1:
        x = _grid(x, padding)
    else:
        x = x[0]
    array = x.permute(1, 2, 0).numpy()
    image = Image.fromarray(np.ascontiguousarray(array[:, :, 0] if channels == 1 else array))
    scale = int(scale)
    if scale < 1 or scale > 64:
        raise PixelRNNError(f"scale must be between 1 and 64, got {scale}")
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    return image


def _grid(x: torch.Tensor, padding: int) -> torch.Tensor:
    batch, channels, height, width = x.shape
    columns = math.ceil(math.sqrt(batch))
    rows = math.ceil(batch / columns)
    grid = torch.full(
        (channels, rows * (height + padding) + padding, columns * (width + padding) + padding), 128, dtype=x.dtype
    )
    for i in range(batch):
        top = padding + (i // columns) * (height + padding)
        left = padding + (i % columns) * (width + padding)
        grid[:, top : top + height, left : left + width] = x[i]
    return grid


def _to_pil(source) -> Image.Image:
    if isinstance(source, Image.Image):
        _check_size(*source.size)
        return ImageOps.exif_transpose(source)
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise PixelRNNError(f"no image file at {str(path)!r}")
        size = path.stat().st_size
        if size == 0:
            raise PixelRNNError(f"the file {path.name!r} is empty")
        if size > MAX_FILE_BYTES:
            raise PixelRNNError(f"the file {path.name!r} is {size / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB")
        source = path.read_bytes()
    elif hasattr(source, "read"):
        source = source.read()
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source))
    raise PixelRNNError(f"cannot read an image from {type(source).__name__}: give a path, bytes, a PIL image or an array")


def _decode(data: bytes) -> Image.Image:
    if not data:
        raise PixelRNNError("the image is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise PixelRNNError(f"the image is {len(data) / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_size(*image.size)
            image.seek(0)  # animated images: the first frame
            image.load()
            image = ImageOps.exif_transpose(image)  # as a browser shows it (Orientation, e.g. a phone held upright)
    except PixelRNNError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PixelRNNError(f"the image is too large to decode safely: the limit is {MAX_PIXELS:,} pixels") from None
    except UnidentifiedImageError:
        raise PixelRNNError("this file is not an image that can be read (PNG, JPEG, GIF, WebP, BMP, TIFF...)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # a known format, but damaged or cut off
        raise PixelRNNError(f"this file is not an image that can be read: it looks damaged or cut off ({error})") from None
    return image


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise PixelRNNError(f"the image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise PixelRNNError(f"the image is {width}x{height} pixels; the limit is {MAX_PIXELS:,} pixels")


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise PixelRNNError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    _check_size(array.shape[1], array.shape[0])
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise PixelRNNError("the image array holds NaN or infinite values")
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).round().astype(np.uint8)
    elif array.dtype == np.uint16:
        array = (array // 257).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        if array.min(initial=0) < 0 or array.max(initial=0) > 255:
            raise PixelRNNError("integer image arrays must hold values 0..255 (or be uint16)")
        array = array.astype(np.uint8)
    else:
        raise PixelRNNError(f"unsupported image array type {array.dtype}")
    return Image.fromarray(np.ascontiguousarray(array))  # uint8: L, RGB or RGBA by shape


def _flatten_modes(image: Image.Image, channels: int) -> Image.Image:
    """Any PIL mode -> "L" or "RGB", transparency composited on the background."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255, 0, 255).round().astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("L" if channels == 1 else "RGB")


def _border_is_bright(image: Image.Image) -> bool:
    gray = np.asarray(image.convert("L"), dtype=np.float64)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return border.mean() > 127


def _fit(image: Image.Image, width: int, height: int, fit: str) -> Image.Image:
    if fit == "crop":
        return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
    if fit == "pad":
        fill = 0 if image.mode == "L" else BACKGROUND
        return ImageOps.pad(image, (width, height), Image.Resampling.LANCZOS, color=fill)
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _check_tensor(x: torch.Tensor, config: dict) -> torch.Tensor:
    expected = (config["channels"], config["height"], config["width"])
    if tuple(x.shape) != expected:
        raise PixelRNNError(f"expected an image tensor of shape {expected}, got {tuple(x.shape)}")
    x = x.detach().float()
    top = 1 if config["values"] == "binary" else 255
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > top or not torch.equal(x, x.round()):
        raise PixelRNNError(f"image tensors must hold whole numbers 0..{top} for a {config['values']} model")
    return x
