"""Draws the example images the app offers (run once; the PNGs are committed). No data set is copied."""
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).parent


def font(size):
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def digit(text, side, ink, paper, mode="L"):
    image = Image.new(mode, (side, side), paper)
    ImageDraw.Draw(image).text((side / 2, side / 2), text, fill=ink, font=font(int(side * 0.8)), anchor="mm")
    return image


def colors(side=64):
    image = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(image)
    for y in range(side):
        draw.line([(0, y), (side, y)], fill=(30 + 2 * y, 60, 200 - 2 * y))
    draw.ellipse((8, 10, 36, 38), fill=(250, 200, 40))
    draw.rectangle((34, 30, 58, 56), fill=(40, 180, 90))
    return image


if __name__ == "__main__":
    digit("3", 28, 255, 0).save(HERE / "digit-3.png")  # MNIST style: white on black
    digit("7", 112, 20, 235).save(HERE / "digit-7-on-paper.png")  # dark on light: the app inverts it
    digit("0", 56, (255, 255, 255, 255), (0, 0, 0, 0), mode="RGBA").save(HERE / "digit-0-transparent.png")
    colors().save(HERE / "colors.png")
