"""Training data: named data sets, image files and folders, Hub data sets -> tensors in the model's value space.

Every source gives `Splits(train, valid, test)` of (N, C, H, W) float tensors; images go through the same
pipeline as user uploads (`pixelrnn.load_image`). Nothing is downloaded except a Hub data set asked for by name.
Sources with classes (mnist, cifar10, digits, a Hub data set with a class-label column, and, with
`labels=True`, a folder whose subfolders are the classes) also give each image's class and the class names.
"""
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import load_image, read_image
from .errors import PixelRNNError

DATA_DIR_ENV = "PIXELRNN_DATA"
# shared/data beside the project folder, wherever the command runs from
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
NAMED = ("binarized-mnist", "mnist", "cifar10", "digits", "photos")
AUGMENTS = ("crops", "flips", "none")
KEPT_SIDES = 8  # training images are kept at most this many times the model's side  # how training views of image files are made
# Photographs inside scikit-image (no download); the first, a portrait, is held out for validation.
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DIGIT_CLASSES = [str(d) for d in range(10)]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
          "camera", "clock", "coins", "moon", "brick", "grass", "gravel", "cell")  # fmt: skip


@dataclass
class Splits:
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor | None
    description: str
    name: str | None = None  # a data set id for the model card's metadata; None for a person's own images
    class_names: list | None = None  # sources with classes: the name of each, and each image's class index below
    train_labels: torch.Tensor | None = None
    valid_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    def labels_of(self, split: str) -> torch.Tensor | None:
        """The class index of each image of `split` ("train", "valid" or "test"); None for a source without classes."""
        return getattr(self, f"{split}_labels")

    def class_counts(self) -> torch.Tensor:
        """How many training images each class has."""
        return torch.bincount(self.train_labels, minlength=len(self.class_names))


def data_dir(path: str | None = None) -> Path:
    return Path(path or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def load_splits(source, config: dict, *, folder: str | None = None, copies: int = 512, augment: str = "crops", seed: int = 0,
                labels: bool = False) -> Splits:  # fmt: skip
    """source: a name in NAMED, "hf:<dataset>[:<split>]", an image file, a folder of images, or a list of files.

    `labels`: the images' classes are needed (a folder's subfolders are then its classes); a source without
    them is a PixelRNNError.
    """
    splits = _load(source, config, folder, copies, augment, seed, labels)
    if labels and splits.class_names is None:
        raise PixelRNNError(f"the data source {str(source)!r} has no labels: train a class-conditional model on mnist, cifar10, "
                            "digits, a folder whose subfolders are the classes, or a Hub data set with a class-label column")  # fmt: skip
    return splits


def _load(source, config, folder, copies, augment, seed, labels) -> Splits:
    if isinstance(source, (list, tuple)):
        return _from_images([Path(p) for p in source], config, copies, augment, seed, "uploaded images")
    source = str(source)
    if source == "binarized-mnist":
        return _binarized_mnist(config, data_dir(folder))
    if source == "mnist":
        return _mnist(config, data_dir(folder))
    if source == "cifar10":
        return _cifar10(config, data_dir(folder))
    if source == "digits":
        return _digits(config, seed)
    if source == "photos":
        return _photos(config, copies, augment, seed)
    if source.startswith("hf:"):
        return _hub_dataset(source[3:], config, seed)
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise PixelRNNError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder {source!r}")
        if labels:
            return _class_folders(path, files, config, copies, augment, seed)
        return _from_images(files, config, copies, augment, seed, f"image folder {path.name}")
    if path.is_file():
        return _from_images([path], config, copies, augment, seed, f"image {path.name}")
    if path.suffix.lower() in IMAGE_SUFFIXES or os.sep in source or "/" in source:
        raise PixelRNNError(f"the data source {source!r} does not exist: no such file or folder")
    raise PixelRNNError(
        f"unknown data source {source!r}: use one of {', '.join(NAMED)}, an image file, a folder, or hf:<dataset>"
    )


def _binarized_mnist(config, folder: Path) -> Splits:
    _expect(config, 28, 28, 1, "binarized-mnist")
    if config["values"] != "binary":
        raise PixelRNNError("binarized-mnist holds binary pixels: use values='binary' (or the 'mnist' source for 8-bit)")
    arrays = _npz(folder / "binarized_mnist.npz", ("train", "valid", "test"))
    unpack = lambda a: torch.from_numpy(np.unpackbits(a, axis=1)[:, :784].reshape(-1, 1, 28, 28).astype(np.float32))  # noqa: E731
    return Splits(unpack(arrays["train"]), unpack(arrays["valid"]), unpack(arrays["test"]),
                  "binarized MNIST (Larochelle & Murray 2011): 50k train / 10k valid / 10k test", "binarized-mnist")  # fmt: skip


def _mnist(config, folder: Path) -> Splits:
    _expect(config, 28, 28, 1, "mnist")
    arrays = _npz(folder / "mnist.npz", ("x_train", "x_test"))
    train = torch.from_numpy(arrays["x_train"].astype(np.float32))[:, None]
    test = torch.from_numpy(arrays["x_test"].astype(np.float32))[:, None]
    if config["values"] == "binary":
        train, test = (train >= 128).float(), (test >= 128).float()
    labels, test_labels = _labels(folder / "mnist.npz", "y_train"), _labels(folder / "mnist.npz", "y_test")
    return Splits(train[:55000], train[55000:], test, "MNIST: the first 55k train images / last 5k as valid / 10k test", "ylecun/mnist",
                  DIGIT_CLASSES, labels[:55000], labels[55000:], test_labels)  # fmt: skip


def _cifar10(config, folder: Path) -> Splits:
    """CIFAR-10 with its original pixels (see shared/data/README.md): 49,926 training and 9,979 test images.

    Valid is the usual last 5,000 training positions (4,982 of them here); bits/dim on the test split is
    comparable to published figures, on 9,979 of the 10,000 test images.
    """
    _expect(config, 32, 32, 3, "cifar10")
    arrays = _npz(folder / "cifar10_original.npz", ("x_train", "train_index", "x_test"))
    train, test = _cifar_tensor(arrays["x_train"], config), _cifar_tensor(arrays["x_test"], config)
    is_valid = torch.from_numpy(arrays["train_index"] >= 45000)
    path = folder / "cifar10_original.npz"
    labels, test_labels = _labels(path, "y_train"), _labels(path, "y_test")
    return Splits(train[~is_valid], train[is_valid], test,
                  "CIFAR-10, original pixels: training positions below 45,000 / the rest as valid / 9,979 test images", "cifar10",
                  CIFAR10_CLASSES, labels[~is_valid], labels[is_valid], test_labels)  # fmt: skip


def _cifar_tensor(images: np.ndarray, config) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()  # (N, 32, 32, 3) uint8 -> (N, 3, 32, 32)
    return (x >= 128).float() if config["values"] == "binary" else x


def _digits(config, seed) -> Splits:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16 * 255).round().astype(np.uint8)  # (1797, 8, 8), 17 gray levels
    x = torch.stack([load_image(image, config) for image in images])
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], torch.from_numpy(digits.target).long()[order]
    return Splits(x[:1497], x[1497:1647], x[1647:], "scikit-learn digits: 1497 train / 150 valid / 150 test", "sklearn-digits",
                  DIGIT_CLASSES, y[:1497], y[1497:1647], y[1647:])  # fmt: skip


def _photos(config, copies, augment, seed) -> Splits:
    """Crops of the real photographs that ship inside scikit-image and scikit-learn (CC0 / public domain)."""
    arrays = []
    try:
        from skimage import data as skdata

        for name in PHOTOS:
            arrays.append(np.asarray(getattr(skdata, name)()))
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        arrays += list(load_sample_images().images)
    except ImportError:
        pass
    if not arrays:
        raise PixelRNNError("the 'photos' source needs scikit-image or scikit-learn installed")
    from PIL import Image

    held_out = arrays.pop(0)  # the first photo is only for validation
    generator = torch.Generator().manual_seed(seed)
    per_photo = -(-copies // len(arrays))  # at least `copies` in all
    train = torch.cat([_augmented(Image.fromarray(a), config, per_photo, augment, generator) for a in arrays])
    # its own generator: the same validation crops whatever the training photos
    valid = _augmented(Image.fromarray(held_out), config, 64, augment, torch.Generator().manual_seed(seed + 1))
    return Splits(train, valid, None, f"random crops of {len(arrays)} photos from scikit-image/scikit-learn (valid: crops of a held-out photo)", "skimage-photos")


def _from_images(paths, config, copies, augment, seed, description) -> Splits:
    images = [read_training_image(path, config) for path in paths]
    generator = torch.Generator().manual_seed(seed)
    per_image = -(-copies // len(images))  # at least `copies` in all
    train = torch.cat([_augmented(image, config, per_image, augment, generator) for image in images])
    valid = torch.stack([load_image(image, config) for image in images])  # the whole images, as the model sees them
    return Splits(train, valid, None, f"{description}: {len(images)} image(s), {len(train)} {augment} copies")


def _class_folders(root: Path, files, config, copies, augment, seed) -> Splits:
    """A folder whose subfolders are the classes (root/<class>/image.png): each class's images labelled with it."""
    loose = [f.name for f in files if f.parent == root]
    if loose:
        raise PixelRNNError(f"with labels, the images of {root.name!r} must be in one subfolder per class; "
                            f"{len(loose)} are not (for example {loose[0]!r})")  # fmt: skip
    names = sorted({f.relative_to(root).parts[0] for f in files})
    if len(names) < 2:
        raise PixelRNNError(f"with labels, {root.name!r} needs at least two subfolders of images, one per class; it has {len(names)}")
    parts = [_from_images([f for f in files if f.relative_to(root).parts[0] == name], config, -(-copies // len(names)), augment,
                          seed + i, "") for i, name in enumerate(names)]  # fmt: skip
    labels = lambda split: torch.cat([torch.full((len(getattr(p, split)),), i) for i, p in enumerate(parts)])  # noqa: E731
    return Splits(torch.cat([p.train for p in parts]), torch.cat([p.valid for p in parts]), None,
                  f"image folder {root.name}: {len(files)} image(s) in {len(names)} classes, {sum(len(p.train) for p in parts)} {augment} copies",
                  None, names, labels("train"), labels("valid"))  # fmt: skip


def read_training_image(path, config):
    """One training image, named in the message when it cannot be read, and kept at most KEPT_SIDES times the
    model's side (a 12-megapixel photo would hold 36 MB for a 32x32 model; its crops of 40% still keep detail)."""
    try:
        image = read_image(path, config["channels"])
    except PixelRNNError as error:
        raise PixelRNNError(f"cannot use the training image {Path(path).name!r}: {error}") from None  # its name only: the app's are server paths
    side = KEPT_SIDES * max(config["height"], config["width"])
    factor = -(-max(image.size) // side)  # ceiling
    return image.reduce(factor) if factor > 1 else image


def _augmented(image, config, count, augment, generator) -> torch.Tensor:
    """`count` views of one image: random crops (40-100% of each side) and flips, or the image itself."""
    if augment not in AUGMENTS:
        raise PixelRNNError(f"augment must be one of {', '.join(AUGMENTS)}, got {augment!r}")
    views = []
    for _ in range(count if augment != "none" else 1):
        view = image
        if augment == "crops":
            scale = 0.4 + 0.6 * torch.rand(1, generator=generator).item()
            width, height = max(1, int(image.width * scale)), max(1, int(image.height * scale))
            left = int(torch.randint(0, image.width - width + 1, (1,), generator=generator))
            top = int(torch.randint(0, image.height - height + 1, (1,), generator=generator))
            view = image.crop((left, top, left + width, top + height))
        x = load_image(view, config)
        if augment in ("crops", "flips") and torch.rand(1, generator=generator).item() < 0.5:
            x = x.flip(-1)
        views.append(x)
    return torch.stack(views)


def _hub_dataset(spec: str, config, seed) -> Splits:
    """A Hugging Face data set with an image column, e.g. hf:ylecun/mnist or hf:./local/copy (needs `datasets`)."""
    try:
        import datasets
    except ImportError:
        raise PixelRNNError("Hub data sets need the `datasets` package: pip install datasets") from None
    name, _, split = spec.partition(":")
    try:
        loaded = datasets.load_dataset(name, split=split or None)
    except Exception as error:  # noqa: BLE001 - any loading failure becomes one clear message
        raise PixelRNNError(f"cannot load the Hub data set {name!r}: {error}") from None
    if isinstance(loaded, datasets.DatasetDict):
        parts = {key: loaded[key] for key in loaded}
    else:
        parts = {"train": loaded}
    features = next(iter(parts.values())).features
    column = next((c for c, f in features.items() if isinstance(f, datasets.Image)), None)
    if column is None:
        raise PixelRNNError(f"the data set {name!r} has no image column")
    label_column = next((c for c, f in features.items() if isinstance(f, datasets.ClassLabel)), None)
    tensors = {key: torch.stack([load_image(row[column], config) for row in part]) for key, part in parts.items()}
    columns = {key: part[label_column] for key, part in parts.items()} if label_column else {}
    if any(value is None for column_values in columns.values() for value in column_values):
        label_column, columns = None, {}  # an image folder without class subfolders: a label column of None
    labels = {key: torch.tensor(column_values, dtype=torch.long) for key, column_values in columns.items()}
    first = next(iter(tensors))
    train, train_labels = tensors.get("train", tensors[first]), labels.get("train", labels.get(first))
    valid_key = next((key for key in ("validation", "valid") if key in tensors), None)
    valid, valid_labels = (tensors[valid_key], labels.get(valid_key)) if valid_key else (None, None)
    if valid is None:
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
        cut = max(1, len(train) // 10)
        train, valid = train[order[cut:]], train[order[:cut]]
        if train_labels is not None:
            train_labels, valid_labels = train_labels[order[cut:]], train_labels[order[:cut]]
    names = [str(n) for n in features[label_column].names] if label_column else None
    return Splits(train, valid, tensors.get("test"), f"Hub data set {name}", name, names, train_labels, valid_labels, labels.get("test"))


def _labels(path: Path, key: str) -> torch.Tensor:
    return torch.from_numpy(_npz(path, (key,))[key].astype(np.int64))


def _npz(path: Path, keys) -> dict:
    if not path.is_file():
        raise PixelRNNError(
            f"{path} not found: point --data-dir (or ${DATA_DIR_ENV}) at the folder holding {path.name}"
        )
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in keys if k not in archive]
        if missing:
            raise PixelRNNError(f"{path} lacks the arrays {', '.join(missing)}")
        return {k: archive[k] for k in keys}


def _expect(config, height, width, channels, name):
    if (config["height"], config["width"], config["channels"]) != (height, width, channels):
        raise PixelRNNError(
            f"{name} images are {height}x{width} with {channels} channel(s): "
            f"set --height {height} --width {width} --channels {channels}"
        )
