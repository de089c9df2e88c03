"""The pixelrnn app: reconstruct, complete, draw, compare, generate and train, row by row, in the browser.

Handlers first (thin adapters: their arguments and returns match the UI's inputs and outputs one for one,
and they call the public pixelrnn API and app_support), then the layout, then the wiring. `python app.py`
serves it; tests import `demo` and launch it themselves. Every limit below is stated in the README.
"""
import importlib.util
import os
import secrets
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# A Python without the requirements gets one line saying how to install them, not a ModuleNotFoundError.
_NEEDED = {"gradio": "gradio", "torch": "torch", "PIL": "pillow", "numpy": "numpy", "safetensors": "safetensors",
           "huggingface_hub": "huggingface_hub", "yaml": "pyyaml", "tqdm": "tqdm", "sklearn": "scikit-learn"}  # fmt: skip
_MISSING = [package for module, package in _NEEDED.items() if importlib.util.find_spec(module) is None]
if _MISSING:
    sys.exit(f"app.py needs {', '.join(_MISSING)}, missing from this Python ({sys.executable}): install the requirements with "
             f"{shlex.quote(sys.executable)} -m pip install -r {shlex.quote(str(Path(__file__).parent / 'requirements.txt'))}")

import gradio as gr  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

import pixelrnn  # noqa: E402
from app_support import fairness, pictures, scratch, uploads  # noqa: E402
from app_support.errors import friendly_errors, gpu, log, scrub  # noqa: E402
from app_support.hubcache import HubCache  # noqa: E402
from app_support.labels import COMPLETE, RESTORE, measured  # noqa: E402
from app_support.models import Models, describe, hub_key, key_for_link, label, local_checkpoints  # noqa: E402
from app_support.models import check_repo_id, default_key, no_checkpoint_message  # noqa: E402
from app_support.text import plain, plain_html, url_part  # noqa: E402
from app_support.models import presets as hub_presets  # noqa: E402
from app_support.training import TrainingRuns  # noqa: E402
from pixelrnn.devices import bfloat16_is_fast, pick_device  # noqa: E402

EXAMPLES = sorted(str(p) for p in (Path(__file__).parent / "examples").glob("*.png"))  # digits and a drawing
COLOUR_EXAMPLES = sorted(str(p) for p in (Path(__file__).parent / "examples" / "cifar10").glob("*.png"))
DATA_SOURCES = [("my uploaded images", "uploads"), ("digits (scikit-learn, 8x8)", "digits"), ("photos (crops)", "photos")]
# Bounds that keep a public Space responsive (the README's Security section lists them).
MAX_SAMPLES, MAX_COMPLETIONS, MAX_SIDE, MAX_HIDDEN, MAX_LAYERS, MAX_WINDOW, MAX_STEPS = 64, 16, 64, 256, 3, 16, 2000
TRAIN_SECONDS = int(os.environ.get("PIXELRNN_TRAIN_SECONDS", 180))
REQUEST_SECONDS = float(os.environ.get("PIXELRNN_REQUEST_SECONDS", 60))
CONCURRENCY, QUEUE_SIZE = int(os.environ.get("PIXELRNN_CONCURRENCY", 4)), 64
THREADS = int(os.environ.get("PIXELRNN_THREADS", 1))  # per process; concurrent requests share them (README: threads)
FRAMES_PER_SECOND = 10  # streamed pictures; the first and the last row are always sent
PLOT_EVERY = 0.5  # seconds between curve updates
# Plots name their series by colour in their labels: the plot's own legend shows no labels in this Gradio.
TRAIN_COLORS, COMPARE_COLORS = {"train": "#4c78a8", "valid": "#e45756"}, {"A": "#4c78a8", "B": "#f58518"}

torch.set_num_threads(THREADS)
DEVICE = pick_device()
# Draws run the RNN step's products in bfloat16 where that is native: ~1.5x faster, 1e-4 nats off (README).
FAST_SAMPLING = bfloat16_is_fast(DEVICE)
HUB_CACHE_BYTES = int(float(os.environ.get("PIXELRNN_HUB_CACHE_MB", 1024)) * 10**6)  # visitors' Hub downloads on disk
MODELS = Models(DEVICE, hub_cache=HubCache(scratch.folder("hub"), HUB_CACHE_BYTES))
RUNS = TrainingRuns(on_forget=MODELS.forget_trained)
DEFAULT_KEY = default_key()


class UploadedImage(gr.Image):
    """gr.Image that hands handlers the uploaded file untouched: pixelrnn.load_image decodes and checks it,
    so corrupt, huge or odd files get the library's clear message instead of a decoding error in Gradio."""

    is_template = True  # rendered by the frontend as a plain gr.Image

    def preprocess(self, payload):
        if payload is None or payload.path is None:
            return super().preprocess(payload)
        return payload.path


# -- handlers -----------------------------------------------------------------------------------------
def model_choices(session_models):
    presets = [(name, f"preset:{name}") for name in hub_presets()]
    return [(name, f"local:{name}") for name in local_checkpoints()] + presets + [tuple(m) for m in session_models]


def model_updates(model_key):
    """What changes with the model in use: its description, the rows sliders, its samples, the canvas."""
    model = MODELS.get(model_key)
    height, width = model.config["height"], model.config["width"]
    return (
        _describe(model, model_key),
        gr.update(maximum=height, value=height // 2),
        MODELS.samples(model_key, REQUEST_SECONDS),  # model work: the request's time limit applies
        gr.update(canvas_size=_canvas_size(width, height), value=_blank_canvas(width, height)),
        gr.update(maximum=height, value=height // 2),
    )


def _describe(model, model_key):
    """The model line, its card's metrics said as the README's tables say them (after the line on its shape)."""
    shape, *rest = describe(model, model_key).split("\n\n", 1)
    figures = measured(MODELS.metrics(model_key))
    return "\n\n".join([shape, *([figures] if figures else []), *rest])


def _canvas_size(width, height):
    scale = max(1, 320 // max(width, height))
    return (width * scale, height * scale)


def _blank_canvas(width, height):
    """White paper to draw on in black (or in colour): gray models read it inverted, as MNIST digits."""
    return {"background": Image.new("RGBA", _canvas_size(width, height), "white"), "layers": [], "composite": None}


def _checked_link(name, revision):
    """A `?model=` link's name and revision, or a message: the closest checkpoint folder for a misspelt one,
    and a revision, which only a Hub repo has, refused for a folder of this server rather than ignored."""
    import difflib

    name, revision, folders = str(name).strip(), str(revision or "").strip(), local_checkpoints()
    if name in folders and revision:
        raise pixelrnn.PixelRNNError(f"{name} is a checkpoint folder of this server, which has no revisions: "
                                     f"open ?model={name} without &revision=")  # fmt: skip
    if "/" not in name and name not in folders and name not in hub_presets():
        close = difflib.get_close_matches(name, folders + hub_presets(), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise pixelrnn.PixelRNNError(f"there is no checkpoint {name} here and it is not a Hub model id (owner/name): {hint}"
                                     f"the checkpoints here are {', '.join(folders) or 'none'}")  # fmt: skip
    return name, revision


@friendly_errors
def page_load(model_key, session_models, request: gr.Request):
    """A new page: the model of a `?model=owner/name&revision=` link, else the session's, else the default."""
    choices = model_choices(session_models)
    link = dict(request.query_params) if request is not None else {}
    notice = ""
    if link.get("model"):
        try:
            linked = key_for_link(*_checked_link(link["model"], link.get("revision", "")))
            MODELS.get(linked)
            model_key = linked
            if linked not in {key for _, key in choices}:
                session_models = [*session_models, [label(linked), linked]]
                choices = model_choices(session_models)
        except pixelrnn.PixelRNNError as error:
            notice = f"\n\n**The linked model could not be loaded:** {plain(error, 600)}"
    model_key = model_key or default_key()
    if not model_key:
        empty = (gr.update(), None, gr.update(), gr.update())
        return "", gr.update(choices=choices, value=None), f"**{no_checkpoint_message()}**", *empty, session_models
    info, *updates = model_updates(model_key)
    return model_key, gr.update(choices=choices, value=model_key), info + notice, *updates, session_models


@friendly_errors
def choose_model(model_key):
    if not isinstance(model_key, str) or not model_key:
        raise pixelrnn.PixelRNNError("choose a model in the model list")
    return model_key, *model_updates(model_key)


@friendly_errors
def load_from_hub(repo_id, revision, session_models):
    model_key = hub_key(repo_id, revision)
    MODELS.get(model_key)  # a failure raises: the current model stays
    session_models = [m for m in session_models if m[1] != model_key] + [[label(model_key), model_key]]
    dropdown = gr.update(choices=model_choices(session_models), value=model_key)
    return model_key, dropdown, *model_updates(model_key), session_models


@friendly_errors
def preview(image, invert, model_key):
    if image is None:
        return None
    model = MODELS.get(model_key)
    return pictures.picture(pixelrnn.load_image(image, model, invert="auto" if invert else False), model)


def _steps(model, original, how, keep_rows, sampling, temperature, seed, n=1):
    if how == COMPLETE:
        return pixelrnn.complete(
            model, original, keep_rows=int(keep_rows), temperature=float(temperature), n=n,
            seed=None if seed is None else int(seed), greedy=sampling == "greedy", fast=FAST_SAMPLING,
        )  # fmt: skip
    return pixelrnn.reconstruct(model, original)


def _figures(step):
    return tuple(f"{value:.{digits}f}" for value, digits in ((step.loss, 4), (step.nll, 2), (step.bits_per_dim, 4), (step.error_rate, 4)))


@gpu()
@friendly_errors
def reconstruct(image, invert, how, keep_rows, sampling, temperature, seed, model_key):
    model = MODELS.get(model_key)
    if image is None:
        raise pixelrnn.PixelRNNError("upload an image first, or pick an example")
    original = pixelrnn.load_image(image, model, invert="auto" if invert else False)
    steps = _steps(model, original, how, keep_rows, sampling, temperature, seed)
    # The image as the model sees it is already on the page (the preview), and a curve of one row says nothing.
    # The error map and the curve read the whole result: they follow at the curve's pace, with the last row
    # (the first frame clears the previous request's map).
    unique, plotted_at = pictures.UniqueFrames(), time.monotonic()
    for index, step in enumerate(pictures.paced(steps, FRAMES_PER_SECOND, REQUEST_SECONDS)):
        plot, error_map = gr.skip(), None if index == 0 else gr.skip()
        if step.done or time.monotonic() - plotted_at > PLOT_EVERY:
            plot, plotted_at = pictures.row_loss_frame(step.row_losses), time.monotonic()
            error_map = unique(pictures.error_map(original, step.image, step.row, model))
        yield (unique(pictures.picture(step.image, model)), error_map, *_figures(step), plot)


@gpu()
@friendly_errors
def complete_drawing(drawing, keep_rows, completions, temperature, seed, model_key):
    """Keep the rows drawn (or left after erasing) and draw the rest several ways, side by side."""
    model = MODELS.get(model_key)
    composite = (drawing or {}).get("composite") if isinstance(drawing, dict) else drawing
    if composite is None:
        raise pixelrnn.PixelRNNError("draw something first (or upload an image and erase its lower part)")
    original = pixelrnn.load_image(composite, model, invert="auto" if model.config["channels"] == 1 else False)
    steps = pixelrnn.complete(model, original, keep_rows=int(keep_rows), n=int(completions), temperature=float(temperature),
                              seed=None if seed is None else int(seed), fast=FAST_SAMPLING)  # fmt: skip
    unique = pictures.UniqueFrames()
    for step in pictures.paced(steps, FRAMES_PER_SECOND, REQUEST_SECONDS):
        losses = step.losses if getattr(step, "losses", None) else [step.loss]
        table = [[index + 1, round(loss, 4)] for index, loss in enumerate(losses)]
        yield unique(pictures.picture(step.image, model)), table


def _said(model) -> str:
    c = model.config
    return f"{c['height']}x{c['width']} {'gray' if c['channels'] == 1 else 'RGB'}, {'binary' if c['values'] == 'binary' else '8-bit'} values"


@friendly_errors
def compare_models(first_key, second_key, keep_rows):
    """What the two models have in common (units, image size), and the rows slider bounded by their heights."""
    if not first_key or not second_key:
        return "Choose two models to compare.", gr.update()
    first, second = MODELS.get(first_key), MODELS.get(second_key)
    heights = [first.config["height"], second.config["height"]]
    note = f"A: {plain(label(first_key))}, {_said(first)}. B: {plain(label(second_key))}, {_said(second)}."
    if first.config["values"] != second.config["values"]:
        note += (" Their losses are not comparable: both are nats per value, but a binary value has 2 levels and "
                 "an 8-bit one 256, so the 8-bit model's figures are larger by nature.")  # fmt: skip
    if (first.config["height"], first.config["width"]) != (second.config["height"], second.config["width"]):
        note += (f" The image is resized to each model's size, so the two curves have {heights[0]} and {heights[1]} rows; "
                 "a model with fewer rows keeps all of its rows when more are asked.")  # fmt: skip
    top = max(heights)
    return note, gr.update(maximum=top, value=min(int(keep_rows or 0), top))


def compare_ready(image, invert, how, keep_rows, seed, first_key, second_key):
    """Checked on the page before Compare runs: a missing image is said once, by the image, not on every output."""
    return [gr.validate(image is not None, "upload an image first, or pick an example"), *[gr.validate(True, "")] * 4,
            gr.validate(bool(first_key), "choose model A"), gr.validate(bool(second_key), "choose model B")]  # fmt: skip


@gpu()
@friendly_errors
def compare(image, invert, how, keep_rows, seed, first_key, second_key):
    """The same image through two models: both results and both per-row loss curves."""
    if image is None:
        raise pixelrnn.PixelRNNError("upload an image first, or pick an example")
    if not first_key or not second_key:
        raise pixelrnn.PixelRNNError("choose two models to compare")
    models = [MODELS.get(first_key), MODELS.get(second_key)]
    originals = [pixelrnn.load_image(image, m, invert="auto" if invert else False) for m in models]
    runs = [_steps(m, x, how, min(int(keep_rows), m.config["height"]), "sample", 1.0, seed) for m, x in zip(models, originals)]
    names = list(COMPARE_COLORS)
    unique, sent = pictures.UniqueFrames(), [None, None]
    for pair in pictures.paced(_side_by_side(runs), FRAMES_PER_SECOND, REQUEST_SECONDS):
        shown = [gr.skip() if step is old else unique(pictures.picture(step.image, m)) for step, old, m in zip(pair, sent, models)]
        sent = list(pair)
        curves = pictures.row_loss_curves({name: step.row_losses for step, name in zip(pair, names)})
        yield (*shown, *[f"{step.loss:.4f}" for step in pair], curves)


def _side_by_side(runs):
    """Advance two sampling runs together: the latest step of each (a run with fewer rows keeps its last)."""
    iterators, latest = [iter(r) for r in runs], [None, None]
    while True:
        advanced = False
        for index, iterator in enumerate(iterators):
            step = next(iterator, None)
            if step is not None:
                latest[index], advanced = step, True
        if not advanced:
            return
        yield tuple(latest)


@gpu()
@friendly_errors
def generate(n, temperature, seed, random_seed, model_key):
    model = MODELS.get(model_key)
    seed = secrets.randbelow(2**31) if random_seed or seed is None else int(seed)
    unique = pictures.UniqueFrames()
    steps = pixelrnn.generate(model, n=int(n), temperature=float(temperature), seed=seed, fast=FAST_SAMPLING)
    for step in pictures.paced(steps, FRAMES_PER_SECOND, REQUEST_SECONDS):
        yield unique(pictures.picture(step.image, model)), seed


@gpu(duration=TRAIN_SECONDS + 60)
@friendly_errors
def train(files, data, steps, session_models, request: gr.Request, **options):
    model_config = {name: int(value) if name in ("height", "hidden_size", "num_layers", "window") else value for name, value in options.items()}
    model_config.update(width=model_config["height"], head_size=model_config["hidden_size"])
    # at once: the panel and the status say what happens while the data is read and the model built
    yield {loss_plot: pictures.loss_frame([]), train_status: "Reading the data and building the model..."}
    shown_at = 0.0
    for update in RUNS.train(request.session_hash, files, data, int(steps), model_config, TRAIN_SECONDS):
        if update.checkpoint is None:
            if time.monotonic() - shown_at > PLOT_EVERY:
                shown_at = time.monotonic()
                yield {loss_plot: pictures.loss_frame(update.history), train_status: update.status}
            continue
        model_key = MODELS.add_trained(update.run_id, update.checkpoint)
        session_models = [m for m in session_models if not m[1].startswith("trained:")] + [[label(model_key), model_key]]
        info, rows, samples, canvas, draw_rows = model_updates(model_key)
        yield {
            loss_plot: pictures.loss_frame(update.history), train_status: update.status, model_key_state: model_key,
            model_list: gr.update(choices=model_choices(session_models), value=model_key), model_info: info,
            session_models_state: session_models, keep_rows: rows, card_samples: samples, drawing: canvas,
            draw_keep_rows: draw_rows, download: str(RUNS.download(request.session_hash)),
        }  # fmt: skip


def stop_training(request: gr.Request):
    RUNS.stop(request.session_hash)


@friendly_errors
def push_to_hub(repo_id, private, token, request: gr.Request):
    from pixelrnn.publish import push

    folder = RUNS.checkpoint(request.session_hash)
    repo_id = (repo_id or "").strip()
    check_repo_id(repo_id, loading=False)
    if not (token or "").strip():
        raise pixelrnn.PixelRNNError("paste a Hugging Face token with write access (it is used once and not kept)")
    if not all(" " < c < "\x7f" for c in token.strip()):
        raise pixelrnn.PixelRNNError("that token holds spaces, line breaks or other characters a Hugging Face token never has: paste it again")
    try:
        push(folder, repo_id, private=bool(private), token=token.strip())
    except Exception as error:  # noqa: BLE001 - the message, never the token, goes to the page and the log
        message = scrub(str(error), token.strip())
        log.warning("push to %s failed: %s: %s", repo_id, type(error).__name__, message)
        raise gr.Error(f"Pushing to the Hub failed: {plain_html(message)}", print_exception=False) from None
    return f"Pushed to [{plain(repo_id)}](https://huggingface.co/{url_part(repo_id, '/')})."


def end_session(request: gr.Request):
    RUNS.end(request.session_hash)


# -- layout -------------------------------------------------------------------------------------------
CSS = """
.pixels img, .pixels canvas { image-rendering: pixelated; }
.pixels img { width: 100%; height: 100%; object-fit: contain; }
#upload img { width: 100%; height: 100%; object-fit: contain; }
/* Pictures are shown whole: the label and the buttons sit in a strip above the picture, never on its rows. */
.pixels .image-container { padding-top: 2.4rem; box-sizing: border-box; }
.pixels .image-container .image-frame { width: 100%; }
.pixels .image-container .image-frame img { object-fit: contain; }
.pixels label[data-testid="block-label"] { max-width: calc(100% - 2 * var(--block-label-margin)); white-space: nowrap; overflow: hidden; }
/* Transparency is shown on black, as the model reads it (a white digit on a transparent sheet stays visible). */
.gallery img, .gallery-item img, #upload img, #compare-upload img { background: #000; }
"""


def _result_numbers():
    with gr.Row():
        return (
            gr.Textbox(label="sampling loss (nats per value)", max_lines=1, interactive=False, elem_id="loss"),
            gr.Textbox(label="NLL (nats per image)", max_lines=1, interactive=False, elem_id="nll"),
            gr.Textbox(label="bits per dim", max_lines=1, interactive=False, elem_id="bits"),
            gr.Textbox(label="values wrong", max_lines=1, interactive=False, elem_id="error-rate"),
        )


def _image_input(elem_id):
    upload = UploadedImage(label="Image", type="filepath", image_mode=None, sources=["upload", "clipboard"], height=240, elem_classes="pixels", elem_id=elem_id)
    invert = gr.Checkbox(True, label="invert dark drawings on light paper (auto)")
    gr.Examples(EXAMPLES, inputs=[upload], label="Examples: digits (for the MNIST models)")
    if COLOUR_EXAMPLES:
        gr.Examples(COLOUR_EXAMPLES, inputs=[upload], label="Examples: CIFAR-10 test images (for the colour model)")
    return upload, invert


def _compare_defaults():
    """The original design's two checkpoints when they are shipped, else the first two models."""
    names = local_checkpoints()
    preferred = [n for n in ("original-many-to-one", "original-many-to-many") if n in names]
    chosen = preferred if len(preferred) == 2 else names[:2]
    return [f"local:{n}" for n in chosen] + [None] * (2 - len(chosen))


with gr.Blocks(title="pixelrnn", delete_cache=(900, 1800)) as demo:
    model_key_state = gr.State(DEFAULT_KEY)
    session_models_state = gr.State([])
    with gr.Row(equal_height=True):
        with gr.Column(scale=3):
            gr.Markdown("# pixelrnn: images made row by row\nAn RNN reads the rows above and draws the next one. "
                        "Restore or complete an image, draw and let the model finish, compare two models, "
                        "generate, or train your own.")  # fmt: skip
            model_list = gr.Dropdown(model_choices([]), value=DEFAULT_KEY or None, label="Model", elem_id="model-list")
        card_samples = gr.Image(label="samples from this model", interactive=False, height=160, elem_classes="pixels",
                                elem_id="card-samples", scale=1, min_width=140)  # fmt: skip
    model_info = gr.Markdown("" if DEFAULT_KEY else f"**{no_checkpoint_message()}**", elem_id="model-info", latex_delimiters=[])
    with gr.Accordion("Load a model from the Hub", open=False, elem_id="hub-loader"):
        with gr.Row():
            hub_repo = gr.Textbox(label="Hub model", placeholder="user/pixelrnn-model", scale=2, elem_id="hub-repo")
            hub_revision = gr.Textbox(label="revision", placeholder="main", scale=1)
            hub_button = gr.Button("Load from the Hub", scale=1, elem_id="hub-button")

    with gr.Tabs(overflow_behavior="wrap"):
        with gr.Tab("Reconstruct", id="reconstruct"):
            with gr.Row():
                with gr.Column(scale=1):
                    image, invert = _image_input("upload")
                    how = gr.Radio([RESTORE, COMPLETE], value=RESTORE, label="How")
                    keep_rows = gr.Slider(0, 28, value=14, step=1, label="keep the first rows (completion)", elem_id="keep-rows")
                    sampling = gr.Radio(["greedy", "sample"], value="sample", label="completion draws")
                    with gr.Row():
                        temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
                        seed = gr.Number(0, precision=0, label="seed", elem_id="seed")
                    reconstruct_button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-button")
                with gr.Column(scale=2):
                    with gr.Row():
                        model_view = gr.Image(label="as the model sees it", format="png", type="pil", height=240, elem_classes="pixels", elem_id="model-view")
                        result = gr.Image(label="result", format="png", type="pil", height=240, elem_classes="pixels", elem_id="result")
                        errors = gr.Image(label="error map", format="png", type="pil", height=240, elem_classes="pixels", elem_id="error-map")
                    gr.Markdown("Error map: blue where the result misses a value that is on, red where it adds one; "
                                "for 8-bit models, brighter is further off. Rows not drawn yet stay black.")
                    sampling_loss, nll, bits, error_rate = _result_numbers()
                    row_plot = gr.LinePlot(x="row", y="loss", label="loss per row (nats per value)", height=220, elem_id="row-plot")

        with gr.Tab("Draw and complete", id="draw"):
            with gr.Row():
                with gr.Column(scale=1):
                    gr.Markdown("Draw the top rows, or upload an image and erase its lower part; the model draws the rest.")
                    drawing = gr.ImageEditor(
                        label="your drawing", type="pil", image_mode="RGBA",
                        sources=["upload", "clipboard"], canvas_size=(280, 280), fixed_canvas=True, layers=False, transforms=(),
                        brush=gr.Brush(colors=["#000000", "#ff0000", "#00c000", "#0060ff", "#ffffff"], default_size=14),
                        elem_classes="pixels", elem_id="drawing",
                    )  # fmt: skip
                    draw_keep_rows = gr.Slider(0, 28, value=14, step=1, label="keep the first rows", elem_id="draw-keep-rows")
                    with gr.Row():
                        completions = gr.Slider(4, MAX_COMPLETIONS, value=9, step=1, label="completions", elem_id="completions")
                        draw_temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
                        draw_seed = gr.Number(0, precision=0, label="seed", elem_id="draw-seed")
                    draw_button = gr.Button("Complete", variant="primary", elem_id="draw-button")
                with gr.Column(scale=2):
                    completion_grid = gr.Image(label="completions", format="png", type="pil", height=380, elem_classes="pixels", elem_id="completion-grid")
                    completion_losses = gr.Dataframe(headers=["completion", "sampling loss (nats per value)"], interactive=False, elem_id="completion-losses")

        with gr.Tab("Compare", id="compare"):
            first_default, second_default = _compare_defaults()
            with gr.Row():
                with gr.Column(scale=1):
                    first_model = gr.Dropdown(model_choices([]), value=first_default, label="model A", elem_id="model-a")
                    second_model = gr.Dropdown(model_choices([]), value=second_default, label="model B", elem_id="model-b")
                    compare_image, compare_invert = _image_input("compare-upload")
                    compare_how = gr.Radio([RESTORE, COMPLETE], value=RESTORE, label="How")
                    compare_note = gr.Markdown(elem_id="compare-note")
                    compare_keep_rows = gr.Slider(0, 64, value=14, step=1, label="keep the first rows (completion)", elem_id="compare-keep-rows")
                    compare_seed = gr.Number(0, precision=0, label="seed")
                    compare_button = gr.Button("Compare", variant="primary", elem_id="compare-button")
                with gr.Column(scale=2):
                    with gr.Row():
                        first_result = gr.Image(label="model A", format="png", type="pil", height=300, elem_classes="pixels", elem_id="result-a")
                        second_result = gr.Image(label="model B", format="png", type="pil", height=300, elem_classes="pixels", elem_id="result-b")
                    with gr.Row():
                        first_loss = gr.Textbox(label="sampling loss, A", max_lines=1, interactive=False, elem_id="loss-a")
                        second_loss = gr.Textbox(label="sampling loss, B", max_lines=1, interactive=False, elem_id="loss-b")
                    compare_plot = gr.LinePlot(x="row", y="loss", color="model", color_map=COMPARE_COLORS, colors_in_legend=[],
                                              label="loss per row (nats per value): A (blue), B (orange)", height=340, elem_id="compare-plot")

        with gr.Tab("Generate", id="generate"):
            with gr.Row():
                samples = gr.Slider(1, MAX_SAMPLES, value=16, step=1, label="images")
                generate_temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
                generate_seed = gr.Number(0, precision=0, label="seed", elem_id="generate-seed")
                random_seed = gr.Checkbox(False, label="random seed")
            generate_button = gr.Button("Generate", variant="primary", elem_id="generate-button")
            with gr.Row():
                grid = gr.Image(label="samples", format="png", type="pil", height=420, elem_classes="pixels", elem_id="samples", scale=3)
                seed_used = gr.Number(None, label="seed used", precision=0, interactive=False, scale=1, elem_id="seed-used")

        with gr.Tab("Train", id="train"):
            with gr.Row():
                with gr.Column():
                    train_files = gr.File(label="images to train on", file_count="multiple", file_types=["image"], elem_id="train-files")
                    data = gr.Radio(DATA_SOURCES, value="digits", label="data")
                    with gr.Row():
                        size = gr.Slider(4, MAX_SIDE, value=16, step=1, label="size", info="pixels per side", elem_id="train-size")
                        channels = gr.Radio([("gray", 1), ("RGB", 3)], value=1, label="color")
                        values = gr.Radio(["binary", "8bit"], value="binary", label="values")
                    with gr.Row():
                        cell = gr.Radio(["rnn", "gru", "lstm"], value="gru", label="cell")
                        hidden_size = gr.Slider(8, MAX_HIDDEN, value=64, step=8, label="hidden size", elem_id="train-hidden")
                        num_layers = gr.Slider(1, MAX_LAYERS, value=1, step=1, label="layers")
                    with gr.Row():
                        mode = gr.Radio(["many-to-many", "many-to-one"], value="many-to-many", label="mode")
                        window = gr.Slider(1, MAX_WINDOW, value=4, step=1, label="window", info="rows read (many-to-one)")
                        bidirectional = gr.Checkbox(False, label="bidirectional", info="many-to-one only")
                    with gr.Row():
                        batch_norm = gr.Checkbox(True, label="batch norm")
                        row_head = gr.Radio(["autoregressive", "independent"], value="autoregressive", label="row head", min_width=200)
                        steps = gr.Slider(1, MAX_STEPS, value=200, step=1, label="steps", info=f"{TRAIN_SECONDS} s at most", elem_id="train-steps")
                    with gr.Row():
                        train_button = gr.Button("Train", variant="primary", elem_id="train-button")
                        stop_button = gr.Button("Stop", variant="stop")
                with gr.Column():
                    loss_plot = gr.LinePlot(x="step", y="nll", color="series", color_map=TRAIN_COLORS, colors_in_legend=[],
                                            label="NLL (nats per image): train (blue), valid (red)", height=380, elem_id="loss-plot")  # fmt: skip
                    train_status = gr.Markdown(elem_id="train-status", latex_delimiters=[])
                    download = gr.File(label="download the model (safetensors)", interactive=False)
                    with gr.Accordion("Push to the Hugging Face Hub", open=False):
                        push_repo = gr.Textbox(label="repo id", placeholder="user/pixelrnn-model")
                        push_private = gr.Checkbox(True, label="private")
                        push_token = gr.Textbox(label="token (write access; used once, never kept)", type="password")
                        push_button = gr.Button("Push")
                        push_status = gr.Markdown(latex_delimiters=[])

    # -- wiring -------------------------------------------------------------------------------------------
    sampling_events = dict(concurrency_id="sampling", concurrency_limit=CONCURRENCY)
    model_outputs = [model_info, keep_rows, card_samples, drawing, draw_keep_rows]
    # Every event that loads a model or draws with one (the model line's samples too) shares the sampling slots.
    refresh_preview = dict(fn=preview, inputs=[image, invert, model_key_state], outputs=model_view, api_visibility="private", **sampling_events)
    demo.load(page_load, [model_key_state, session_models_state], [model_key_state, model_list, *model_outputs, session_models_state],
              api_visibility="private", **sampling_events)  # fmt: skip
    gr.on([image.change, invert.change], preview, [image, invert, model_key_state], model_view, api_name="preview", **sampling_events)  # first: the refreshes below share its function
    model_list.input(choose_model, model_list, [model_key_state, *model_outputs], api_name="choose_model", **sampling_events).success(**refresh_preview)
    hub_button.click(load_from_hub, [hub_repo, hub_revision, session_models_state], [model_key_state, model_list, *model_outputs, session_models_state],
                     api_name="load_from_hub", **sampling_events).success(**refresh_preview)  # fmt: skip
    reconstruct_button.click(
        reconstruct, [image, invert, how, keep_rows, sampling, temperature, seed, model_key_state],
        [result, errors, sampling_loss, nll, bits, error_rate, row_plot], api_name="reconstruct", **sampling_events,
    )  # fmt: skip
    draw_button.click(complete_drawing, [drawing, draw_keep_rows, completions, draw_temperature, draw_seed, model_key_state],
                      [completion_grid, completion_losses], api_name="complete_drawing", **sampling_events)  # fmt: skip
    compare_button.click(
        compare, [compare_image, compare_invert, compare_how, compare_keep_rows, compare_seed, first_model, second_model],
        [first_result, second_result, first_loss, second_loss, compare_plot], api_name="compare", validator=compare_ready,
        **sampling_events,
    )  # fmt: skip
    gr.on([demo.load, first_model.change, second_model.change], compare_models, [first_model, second_model, compare_keep_rows],
          [compare_note, compare_keep_rows], api_visibility="private")  # fmt: skip
    generate_button.click(generate, [samples, generate_temperature, generate_seed, random_seed, model_key_state], [grid, seed_used], api_name="generate", **sampling_events)
    train_files.upload(lambda: "uploads", None, data, api_visibility="private")
    train_button.click(
        train, [train_files, data, steps, session_models_state],
        [loss_plot, train_status, model_key_state, model_list, model_info, session_models_state, download, keep_rows,
         card_samples, drawing, draw_keep_rows],
        inputs_kwargs=dict(height=size, channels=channels, values=values, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                           bidirectional=bidirectional, mode=mode, window=window, batch_norm=batch_norm, row_head=row_head),
        api_name="train", concurrency_id="train", concurrency_limit=1,
        show_progress_on=[train_status],  # one timer, by the status: the model menu, samples and line stay usable
    )  # fmt: skip
    stop_button.click(stop_training, None, None, api_name="stop_training", concurrency_limit=None)
    push_button.click(push_to_hub, [push_repo, push_private, push_token], push_status, api_name="push_to_hub", **sampling_events)  # loads the model
    demo.unload(end_session)

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
fairness.bound(demo._queue)  # one session or address cannot fill the queue for everyone
LAUNCH_OPTIONS = dict(theme=gr.themes.Soft(), css=CSS, max_file_size=uploads.MAX_FILE_BYTES, show_error=False, run_history=False,
                      app_kwargs=dict(middleware=[Middleware(uploads.UploadLimit)]))  # fmt: skip

if __name__ == "__main__":
    scratch.exit_on_terminate()  # a plain stop removes this process's folders too
    demo.launch(**LAUNCH_OPTIONS)
