import io

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

import pixelrnn
from conftest import png_bytes, tiny


@pytest.fixture
def digit():
    """A real 8x8 handwritten digit (scikit-learn's bundled data), as 8-bit gray, white on black."""
    return (load_digits().images[0] / 16 * 255).astype(np.uint8)


def test_every_kind_of_source_gives_the_same_tensor(digit, tmp_path):
    model = tiny(height=8, width=8)
    pil = Image.fromarray(digit)
    path = tmp_path / "digit.png"
    pil.save(path)
    expected = pixelrnn.load_image(digit, model)
    assert expected.shape == (1, 8, 8) and set(expected.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(expected, (torch.from_numpy(digit).float() >= 128)[None].float())
    for source in (pil, path, str(path), png_bytes(pil), io.BytesIO(png_bytes(pil))):
        torch.testing.assert_close(pixelrnn.load_image(source, model), expected)


def test_8bit_rgb_keeps_levels_and_pixel_order():
    model = tiny(height=2, width=2, channels=3, values="8bit")
    array = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    x = pixelrnn.load_image(array, model)
    assert x.shape == (3, 2, 2)
    torch.testing.assert_close(x, torch.from_numpy(array).permute(2, 0, 1).float())
    tokens = model.to_tokens(x[None])
    assert tokens[0, 0].tolist() == array[0].reshape(-1).astype(float).tolist()  # R,G,B of pixel 0 first


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "I;16", "I", "F", "CMYK", "1"])
def test_odd_modes_are_converted(mode, digit):
    model = tiny(height=8, width=8)
    image = Image.fromarray(digit).convert(mode) if mode not in ("I;16",) else Image.fromarray(digit.astype(np.uint16) * 257)
    x = pixelrnn.load_image(png_bytes(image) if mode not in ("CMYK", "F", "I") else image, model)
    assert x.shape == (1, 8, 8)
    assert (x == (torch.from_numpy(digit) >= 128).float()).float().mean() > 0.9


def test_transparency_is_composited_on_black():
    model = tiny(height=4, width=4)
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white everywhere, but only the left half is opaque
    rgba[:, :2, 3] = 255
    x = pixelrnn.load_image(rgba, model)
    assert x[0, :, :2].eq(1).all() and x[0, :, 2:].eq(0).all()


def test_palette_with_transparency_and_animation_first_frame(tmp_path):
    model = tiny(height=4, width=4)
    frames = [Image.new("L", (4, 4), 255), Image.new("L", (4, 4), 0)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert pixelrnn.load_image(path, model).eq(1).all()


def test_resize_fit_and_invert():
    model = tiny(height=4, width=4)
    wide = np.zeros((40, 80), dtype=np.uint8)
    wide[:, 60:] = 255  # a white band on the far right
    assert pixelrnn.load_image(wide, model, fit="stretch")[0, :, 3].eq(1).all()
    assert pixelrnn.load_image(wide, model, fit="crop").eq(0).all()  # the band is cropped away
    paper = np.full((16, 16), 255, dtype=np.uint8)
    paper[2:14, 4:12] = 0  # a dark stroke on white paper
    flipped = pixelrnn.load_image(paper, model, invert="auto")
    assert flipped[0, 0, 0] == 0 and flipped.sum() > 0
    with pytest.raises(pixelrnn.PixelRNNError, match="fit must be one of"):
        pixelrnn.load_image(paper, model, fit="zoom")


@pytest.mark.parametrize(
    "source, words",
    [
        (b"", "empty"),
        (b"definitely not an image", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "not an image"),
        (np.zeros((4, 4, 2)), "must be (H, W)"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.full((4, 4), 300, dtype=np.int32), "0..255"),
        (np.zeros((0, 5)), "no pixels"),
        (12345, "cannot read an image from int"),
        ("/no/such/file.png", "no image file"),
        (torch.zeros(1, 5, 5), "expected an image tensor of shape (1, 4, 4)"),
        (torch.full((1, 4, 4), 2.0), "whole numbers 0..1"),
    ],
)
def test_bad_images_raise_a_clear_error(source, words):
    with pytest.raises(pixelrnn.PixelRNNError) as info:
        pixelrnn.load_image(source, tiny(height=4, width=4))
    assert words in str(info.value)


def test_empty_file_and_decompression_bomb(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(pixelrnn.PixelRNNError, match="is empty"):
        pixelrnn.load_image(empty, tiny())
    bomb = png_bytes(Image.new("1", (10000, 10000)))  # 100 M pixels, a few KB compressed
    assert len(bomb) < 200_000
    with pytest.raises(pixelrnn.PixelRNNError, match="limit is 40,000,000 pixels"):
        pixelrnn.load_image(bomb, tiny())


def test_to_pil_single_grid_and_scale():
    model = tiny(height=4, width=3)
    x = torch.zeros(1, 4, 3)
    x[0, 0, 0] = 1
    image = pixelrnn.to_pil(x, model, scale=5)
    assert image.size == (15, 20) and image.mode == "L"
    assert image.getpixel((0, 0)) == 255 and image.getpixel((5, 0)) == 0
    grid = pixelrnn.to_pil(torch.zeros(5, 1, 4, 3), model)
    assert grid.size == (3 * 3 + 4, 2 * 4 + 3)  # 3 columns, 2 rows, 1 px padding
    rgb = pixelrnn.to_pil(torch.full((3, 4, 3), 200.0), tiny(channels=3, values="8bit"))
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (200, 200, 200)


def test_round_trip_through_to_pil(digit):
    model = tiny(height=8, width=8, values="8bit")
    x = pixelrnn.load_image(digit, model)
    torch.testing.assert_close(pixelrnn.load_image(pixelrnn.to_pil(x, model), model), x)


def test_unreadable_image_messages_hold_no_python_internals(digit):
    with pytest.raises(pixelrnn.PixelRNNError) as info:
        pixelrnn.load_image(b"plain text, not a picture", tiny())
    assert "BytesIO" not in str(info.value) and "0x" not in str(info.value)
    cut = png_bytes(Image.fromarray(digit))[:60]
    with pytest.raises(pixelrnn.PixelRNNError, match="damaged or cut off"):
        pixelrnn.load_image(cut, tiny())


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("orientation, stored", [(3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)])
def test_exif_orientation_is_applied_as_a_viewer_shows_it(orientation, stored, fmt):
    # An asymmetric upright picture, stored turned the way a camera held sideways writes it, with the EXIF
    # Orientation tag that turns it back (6: rotate 90 degrees clockwise to view, as phones write).
    rng = np.random.default_rng(0)
    upright = Image.fromarray(np.kron(rng.integers(0, 256, (3, 5, 3)), np.ones((8, 8, 1))).astype(np.uint8))  # 40 x 24
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    upright.transpose(stored).save(buffer, format=fmt, exif=exif, **({"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}))
    config = dict(height=24, width=40, channels=3, values="8bit")
    expected = pixelrnn.load_image(upright, config, fit="stretch")
    turned_wrong = pixelrnn.load_image(upright.transpose(Image.Transpose.ROTATE_180), config, fit="stretch")
    for source in (buffer.getvalue(), Image.open(io.BytesIO(buffer.getvalue()))):
        got = pixelrnn.load_image(source, config, fit="stretch")
        assert got.shape == expected.shape == (3, 24, 40)
        tolerance = 0 if fmt == "PNG" else 3  # JPEG is lossy
        assert (got - expected).abs().mean() <= tolerance
        assert (got - turned_wrong).abs().mean() > 30  # what a wrong turn would cost


def test_a_damaged_training_image_is_named_and_big_ones_are_kept_small(tmp_path):
    from pixelrnn.datasets import KEPT_SIDES, load_splits, read_training_image

    config = pixelrnn.PixelRNN(height=8, width=8, hidden_size=8, head_size=8).config
    for index in range(3):
        Image.new("L", (20, 20), 40 * index).save(tmp_path / f"good-{index}.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(pixelrnn.PixelRNNError, match="broken.png"):
        load_splits(str(tmp_path), config)
    big = tmp_path / "big.png"
    Image.new("L", (1000, 700), 128).save(big)
    kept = read_training_image(big, config)
    assert max(kept.size) <= KEPT_SIDES * 8 and abs(kept.size[0] / kept.size[1] - 1000 / 700) < 0.05
    assert read_training_image(tmp_path / "good-0.png", config).size == (20, 20)  # small ones as they are
