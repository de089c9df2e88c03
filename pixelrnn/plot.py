"""Small line charts drawn with PIL (no plotting library needed): the training loss curve."""
from PIL import Image, ImageDraw

COLORS = {"train": (31, 119, 180), "valid": (255, 127, 14)}


def loss_curve(metrics: list, path) -> None:
    """metrics: records from metrics.jsonl -> a PNG with training (per logged step) and validation NLL."""
    train = [(m["step"], m["train_nll"]) for m in metrics if m.get("kind") == "step"]
    valid = [(m["step"], m["valid_nll"]) for m in metrics if m.get("kind") in ("epoch", "eval")]
    if not train:
        train = [(m["step"], m["train_nll"]) for m in metrics if m.get("kind") == "epoch"]
    line_chart({"train": train, "valid": valid}, "NLL (nats per image) by step").save(path)


def line_chart(series: dict, title: str, size=(640, 400)) -> Image.Image:
    width, height = size
    left, right, top, bottom = 70, 20, 30, 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    points = [p for values in series.values() for p in values]
    draw.text((left, 8), title, fill="black")
    if not points:
        return image
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def place(x, y):
        return (left + (x - x0) / (x1 - x0) * (width - left - right), top + (y1 - y) / (y1 - y0) * (height - top - bottom))

    draw.rectangle((left, top, width - right, height - bottom), outline=(160, 160, 160))
    for fraction in (0.0, 0.5, 1.0):
        y = y0 + fraction * (y1 - y0)
        draw.text((4, place(x0, y)[1] - 6), f"{y:.4g}", fill="black")
        x = x0 + fraction * (x1 - x0)
        draw.text((place(x, y0)[0] - 10, height - bottom + 6), f"{x:.0f}", fill="black")
    for offset, (name, values) in enumerate(series.items()):
        color = COLORS.get(name, (44, 160, 44))
        if len(values) > 1:
            draw.line([place(*p) for p in values], fill=color, width=2)
        for p in values[-1:] if len(values) > 1 else values:
            cx, cy = place(*p)
            draw.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=color)
        draw.text((width - right - 120, top + 6 + 14 * offset), name, fill=color)
    return image
