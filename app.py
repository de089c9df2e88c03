"""The pixelrnn app: reconstruct, complete, draw, compare, generate and train, row by row, in the browser.

Handlers first (thin adapters: their arguments and returns match the UI's inputs and outputs one for one,
and they call the public pixelrnn API and app_support), then the layout, then the wiring. `python app.py`
serves it; tests import `demo` and launch it themselves. Every limit is in app_support/limits.py and the README.
"""
import os
import secrets
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from app_support.needs import exit_if_missing  # noqa: E402

exit_if_missing(Path(__file__).parent / "requirements.txt")  # one line naming what is missing, not a ModuleNotFoundError
import gradio as gr  # noqa: E402
import torch  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

import pixelrnn  # noqa: E402
from app_support import classes, fairness, labels, limits, models, pictures, scratch, training, uploads  # noqa: E402
from app_support.errors import friendly_errors, gpu  # noqa: E402
from app_support.hubcache import HubCache  # noqa: E402
from app_support.labels import COMPLETE, RESTORE  # noqa: E402
from app_support.limits import CONCURRENCY, TRAIN_SECONDS  # noqa: E402
from app_support.streams import Stream, side_by_side  # noqa: E402
from app_support.text import plain  # noqa: E402
from pixelrnn.devices import bfloat16_is_fast, pick_device  # noqa: E402

EXAMPLES = sorted(str(p) for p in (Path(__file__).parent / "examples").glob("*.png"))  # digits and a drawing
COLOUR_EXAMPLES = sorted(str(p) for p in (Path(__file__).parent / "examples" / "cifar10").glob("*.png"))
DATA_SOURCES = [("my uploaded images", "uploads"), ("digits (scikit-learn, 8x8)", "digits"), ("photos (crops)", "photos")]
# Plots name their series by colour in their labels: the plot's own legend shows no labels in this Gradio.
TRAIN_COLORS, COMPARE_COLORS = {"train": "#4c78a8", "valid": "#e45756"}, {"A": "#4c78a8", "B": "#f58518"}

torch.set_num_threads(limits.THREADS)
DEVICE = pick_device()
# Draws run the RNN step's products in bfloat16 where that is native: 1.48x faster, 1e-4 nats off (README).
FAST_SAMPLING = bfloat16_is_fast(DEVICE)
MODELS = models.Models(DEVICE, hub_cache=HubCache(scratch.folder("hub"), limits.HUB_CACHE_BYTES))
RUNS = training.TrainingRuns(on_forget=MODELS.forget_trained)
DEFAULT_KEY = models.default_key()


class UploadedImage(gr.Image):
    """gr.Image that hands handlers the uploaded file untouched: pixelrnn.load_image decodes and checks it,
    so corrupt, huge or odd files get the library's clear message instead of a decoding error in Gradio."""

    is_template = True  # rendered by the frontend as a plain gr.Image

    def preprocess(self, payload):
        if payload is None or payload.path is None:
            return super().preprocess(payload)
        return payload.path


# -- handlers -----------------------------------------------------------------------------------------
def model_updates(model_key):
    """What changes with the model in use: its description, the rows sliders, its samples, the canvas, the class pickers."""
    model, metrics = MODELS.load(model_key)
    height, width = model.config["height"], model.config["width"]
    return (
        labels.describe(model, model_key, metrics),
        gr.update(maximum=height, value=height // 2),
        MODELS.samples(model_key, limits.REQUEST_SECONDS),  # model work: the request's time limit applies
        gr.update(canvas_size=pictures.canvas_size(width, height), value=pictures.blank_canvas(width, height)),
        gr.update(maximum=height, value=height // 2),
        *classes.updates(model),
    )


def _model_list(session_models, model_key):
    return gr.update(choices=models.choices(session_models), value=model_key)


@friendly_errors
def page_load(model_key, session_models, request: gr.Request):
    """A new page: the model of a `?model=owner/name&revision=` link, else the session's, else the default."""
    link, notice = dict(request.query_params) if request is not None else {}, ""
    if link.get("model"):
        try:
            linked = models.key_for_link(link["model"], link.get("revision", ""))
            MODELS.get(linked)
            model_key = linked
            if linked not in {key for _, key in models.choices(session_models)}:
                session_models = models.with_session_model(session_models, linked)
        except pixelrnn.PixelRNNError as error:
            notice = f"\n\n**The linked model could not be loaded:** {plain(error, 600)}"
    model_key = model_key or models.default_key()
    if not model_key:
        empty = (gr.update(), None, gr.update(), gr.update(), *classes.updates(None))
        return "", _model_list(session_models, None), f"**{models.no_checkpoint_message()}**", *empty, session_models
    info, *updates = model_updates(model_key)
    return model_key, _model_list(session_models, model_key), info + notice, *updates, session_models


@friendly_errors
def choose_model(model_key):
    if not isinstance(model_key, str) or not model_key:
        raise pixelrnn.PixelRNNError("choose a model in the model list")
    return model_key, *model_updates(model_key)


@friendly_errors
def load_from_hub(repo_id, revision, session_models):
    model_key = models.hub_key(repo_id, revision)
    MODELS.get(model_key)  # a failure raises: the current model stays
    session_models = models.with_session_model(session_models, model_key)
    return model_key, _model_list(session_models, model_key), *model_updates(model_key), session_models


def _as_seen(image, invert, model):
    """The image as `model` sees it (cropped, resized, binarized; dark drawings on paper inverted if asked)."""
    if image is None:
        raise pixelrnn.PixelRNNError("upload an image first, or pick an example")
    return pixelrnn.load_image(image, model, invert="auto" if invert else False)


@friendly_errors
def preview(image, invert, model_key):
    if image is None:
        return None
    model = MODELS.get(model_key)
    return pixelrnn.to_pil(_as_seen(image, invert, model), model)


def _draws(model, original, how, keep_rows, sampling, temperature, seed, labels=None):
    """Teacher-forced restoration, or a completion of the first `keep_rows` rows (as class `labels`): the library's steps."""
    if how != COMPLETE:
        return pixelrnn.reconstruct(model, original, labels=labels)
    return pixelrnn.complete(model, original, keep_rows=int(keep_rows), temperature=float(temperature), n=1, labels=labels,
                             seed=None if seed is None else int(seed), greedy=sampling == "greedy", fast=FAST_SAMPLING)  # fmt: skip


@gpu()
@friendly_errors
def restore_or_complete(image, invert, how, keep_rows, sampling, temperature, seed, class_name, model_key):
    model = MODELS.get(model_key)
    asked = classes.chosen(class_name, model)
    original = _as_seen(image, invert, model)
    # The image as the model sees it is already on the page (the preview), and a curve of one row says nothing.
    # The error map and the curve read the whole result: they follow at the curve's pace, with the last row
    # (the first frame clears the previous request's map).
    stream = Stream()
    for index, step in enumerate(stream.paced(_draws(model, original, how, keep_rows, sampling, temperature, seed, asked))):
        plot, error_map = gr.skip(), None if index == 0 else gr.skip()
        if stream.plot_due(last=step.done):
            plot = pictures.row_loss_frame(step.row_losses)
            error_map = stream.unique(pictures.error_map(original, step.image, step.row, model))
        figures = [f"{value:.{digits}f}" for value, digits in ((step.loss, 4), (step.nll, 2), (step.bits_per_dim, 4), (step.error_rate, 4))]
        yield stream.picture(step.image, model), error_map, *figures, plot


@gpu()
@friendly_errors
def complete_drawing(drawing, keep_rows, completions, temperature, seed, class_name, model_key):
    """Keep the rows drawn (or left after erasing) and draw the rest several ways (or as each class), side by side."""
    model = MODELS.get(model_key)
    asked = classes.chosen(class_name, model, each=True)
    completions = len(asked) if isinstance(asked, list) else int(completions)
    composite = (drawing or {}).get("composite") if isinstance(drawing, dict) else drawing
    if composite is None:
        raise pixelrnn.PixelRNNError("draw something first (or upload an image and erase its lower part)")
    original = pixelrnn.load_image(composite, model, invert="auto" if model.config["channels"] == 1 else False)
    stream = Stream()
    steps = pixelrnn.complete(model, original, keep_rows=int(keep_rows), n=completions, temperature=float(temperature),
                              seed=None if seed is None else int(seed), fast=FAST_SAMPLING, labels=asked)  # fmt: skip
    for index, step in enumerate(stream.paced(steps)):
        losses = step.losses if getattr(step, "losses", None) else [step.loss]
        said = classes.said(step.labels, model, asked) if index == 0 else gr.skip()  # the classes are drawn first
        yield stream.picture(step.image, model), classes.completion_table(losses, step.labels, model), said


@friendly_errors
def compare_models(first_key, second_key, keep_rows):
    """What the two models have in common (units, image size), and the rows slider bounded by their heights."""
    if not first_key or not second_key:
        return "Choose two models to compare.", gr.update()
    first, second = MODELS.get(first_key), MODELS.get(second_key)
    top = max(first.config["height"], second.config["height"])
    return labels.compare_note(first_key, first, second_key, second), gr.update(maximum=top, value=min(int(keep_rows or 0), top))


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
    pair = [MODELS.get(first_key), MODELS.get(second_key)]
    runs = [_draws(m, _as_seen(image, invert, m), how, min(int(keep_rows), m.config["height"]), "sample", 1.0, seed) for m in pair]
    stream, sent = Stream(), [None, None]
    for steps in stream.paced(side_by_side(runs)):
        shown = [gr.skip() if step is old else stream.picture(step.image, m) for step, old, m in zip(steps, sent, pair)]
        sent = list(steps)
        curves = pictures.row_loss_curves({name: step.row_losses for step, name in zip(steps, COMPARE_COLORS)})
        yield (*shown, *[f"{step.loss:.4f}" for step in steps], curves)


@gpu()
@friendly_errors
def generate(n, temperature, seed, random_seed, class_name, model_key):
    model = MODELS.get(model_key)
    asked = classes.chosen(class_name, model)
    seed = secrets.randbelow(2**31) if random_seed or seed is None else int(seed)
    stream = Stream()
    steps = pixelrnn.generate(model, n=int(n), temperature=float(temperature), seed=seed, fast=FAST_SAMPLING, labels=asked)
    for index, step in enumerate(stream.paced(steps)):
        yield stream.picture(step.image, model), seed, classes.said(step.labels, model, asked) if index == 0 else gr.skip()


@gpu(duration=TRAIN_SECONDS + 60)
@friendly_errors
def train(files, data, steps, session_models, request: gr.Request, **settings):
    stream = Stream(plot_first=True)  # the curve: the first update at once (it says the data is being read), then paced
    for update in RUNS.train(request.session_hash, files, data, int(steps), settings, TRAIN_SECONDS):
        if update.checkpoint is None:
            if not update.started or stream.plot_due():
                yield {loss_plot: pictures.loss_frame(update.history), train_status: update.status}
            continue
        model_key = MODELS.add_trained(update.run_id, update.checkpoint)
        session_models = models.with_session_model(session_models, model_key, replacing="trained")
        yield {
            loss_plot: pictures.loss_frame(update.history), train_status: update.status, model_key_state: model_key,
            model_list: _model_list(session_models, model_key), session_models_state: session_models,
            download: str(RUNS.download(request.session_hash)), **dict(zip(model_outputs, model_updates(model_key))),
        }  # fmt: skip


def stop_training(request: gr.Request):
    RUNS.stop(request.session_hash)


@friendly_errors
def push_to_hub(repo_id, private, token, request: gr.Request):
    return training.push(RUNS.checkpoint(request.session_hash), repo_id, private, token)


def end_session(request: gr.Request):
    RUNS.end(request.session_hash)


# -- layout -------------------------------------------------------------------------------------------
CSS = (Path(__file__).parent / "app_support" / "page.css").read_text()  # pictures whole and pixelated


def _result_numbers():
    names = {"loss": "sampling loss (nats per value)", "nll": "NLL (nats per image)", "bits": "bits per dim", "error-rate": "values wrong"}
    with gr.Row():
        return tuple(gr.Textbox(label=label, max_lines=1, interactive=False, elem_id=elem_id) for elem_id, label in names.items())


def _image_input(elem_id):
    upload = UploadedImage(label="Image", type="filepath", image_mode=None, sources=["upload", "clipboard"], height=240, elem_classes="pixels", elem_id=elem_id)
    invert = gr.Checkbox(True, label="invert dark drawings on light paper (auto)")
    gr.Examples(EXAMPLES, inputs=[upload], label="Examples: digits (for the MNIST models)")
    if COLOUR_EXAMPLES:
        gr.Examples(COLOUR_EXAMPLES, inputs=[upload], label="Examples: CIFAR-10 test images (for the colour model)")
    return upload, invert


with gr.Blocks(title="pixelrnn", delete_cache=(900, 1800)) as demo:
    model_key_state = gr.State(DEFAULT_KEY)
    session_models_state = gr.State([])
    with gr.Row(equal_height=True):
        with gr.Column(scale=3):
            gr.Markdown("# pixelrnn: images made row by row\nAn RNN reads the rows above and draws the next one. "
                        "Restore or complete an image, draw and let the model finish, compare two models, "
                        "generate, or train your own.")  # fmt: skip
            model_list = gr.Dropdown(models.choices([]), value=DEFAULT_KEY or None, label="Model", elem_id="model-list")
        card_samples = gr.Image(label="samples from this model", interactive=False, height=160, elem_classes="pixels",
                                elem_id="card-samples", scale=1, min_width=140)  # fmt: skip
    model_info = gr.Markdown("" if DEFAULT_KEY else f"**{models.no_checkpoint_message()}**", elem_id="model-info", latex_delimiters=[])
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
                    restore_class = classes.picker("class", "restore-class", info=f"{classes.ANY}: the likeliest class given the image (restore), "
                                                                                 "or one drawn given the rows kept (complete)")  # fmt: skip
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
                        completions = gr.Slider(4, limits.MAX_COMPLETIONS, value=9, step=1, label="completions", elem_id="completions")
                        draw_temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
                        draw_seed = gr.Number(0, precision=0, label="seed", elem_id="draw-seed")
                    draw_class = classes.picker("class", "draw-class")
                    draw_button = gr.Button("Complete", variant="primary", elem_id="draw-button")
                with gr.Column(scale=2):
                    completion_grid = gr.Image(label="completions", format="png", type="pil", height=380, elem_classes="pixels", elem_id="completion-grid")
                    draw_caption = classes.caption("classes, by rows of the grid", "draw-caption")
                    completion_losses = gr.Dataframe(headers=["completion", "sampling loss (nats per value)"], interactive=False, elem_id="completion-losses")

        with gr.Tab("Compare", id="compare"):
            first_default, second_default = models.compare_defaults()
            with gr.Row():
                with gr.Column(scale=1):
                    first_model = gr.Dropdown(models.choices([]), value=first_default, label="model A", elem_id="model-a")
                    second_model = gr.Dropdown(models.choices([]), value=second_default, label="model B", elem_id="model-b")
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
                samples = gr.Slider(1, limits.MAX_SAMPLES, value=16, step=1, label="images")
                generate_temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
                generate_seed = gr.Number(0, precision=0, label="seed", elem_id="generate-seed")
                random_seed = gr.Checkbox(False, label="random seed")
                generate_class = classes.picker("class", "generate-class", info=f"{classes.ANY}: each image's class drawn by the model")
            generate_button = gr.Button("Generate", variant="primary", elem_id="generate-button")
            with gr.Row():
                grid = gr.Image(label="samples", format="png", type="pil", height=420, elem_classes="pixels", elem_id="samples", scale=3)
                with gr.Column(scale=1):
                    seed_used = gr.Number(None, label="seed used", precision=0, interactive=False, elem_id="seed-used")
                    generate_caption = classes.caption("classes drawn, by rows of the grid", "generate-caption")

        with gr.Tab("Train", id="train"):
            with gr.Row():
                with gr.Column():
                    train_files = gr.File(label="images to train on", file_count="multiple", file_types=["image"], elem_id="train-files")
                    data = gr.Radio(DATA_SOURCES, value="digits", label="data")
                    with gr.Row():
                        size = gr.Slider(4, limits.MAX_SIDE, value=16, step=1, label="size", info="pixels per side", elem_id="train-size")
                        channels = gr.Radio([("gray", 1), ("RGB", 3)], value=1, label="color")
                        values = gr.Radio(["binary", "8bit"], value="binary", label="values")
                    with gr.Row():
                        cell = gr.Radio(["rnn", "gru", "lstm"], value="gru", label="cell")
                        hidden_size = gr.Slider(8, limits.MAX_HIDDEN, value=64, step=8, label="hidden size", elem_id="train-hidden")
                        num_layers = gr.Slider(1, limits.MAX_LAYERS, value=1, step=1, label="layers")
                    with gr.Row():
                        mode = gr.Radio(["many-to-many", "many-to-one"], value="many-to-many", label="mode")
                        window = gr.Slider(1, limits.MAX_WINDOW, value=4, step=1, label="window", info="rows read (many-to-one)")
                        bidirectional = gr.Checkbox(False, label="bidirectional", info="many-to-one only")
                    with gr.Row():
                        batch_norm = gr.Checkbox(True, label="batch norm")
                        row_head = gr.Radio(["autoregressive", "independent"], value="autoregressive", label="row head", min_width=200)
                        steps = gr.Slider(1, limits.MAX_TRAIN_STEPS, value=200, step=1, label="steps", info=f"{TRAIN_SECONDS} s at most", elem_id="train-steps")
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
    model_outputs = [model_info, keep_rows, card_samples, drawing, draw_keep_rows, restore_class, draw_class, generate_class,
                     draw_caption, generate_caption]  # the order of model_updates and classes.updates
    # Every event that loads a model or draws with one (the model line's samples too) shares the sampling slots.
    refresh_preview = dict(fn=preview, inputs=[image, invert, model_key_state], outputs=model_view, api_visibility="private", **sampling_events)
    demo.load(page_load, [model_key_state, session_models_state], [model_key_state, model_list, *model_outputs, session_models_state],
              api_visibility="private", **sampling_events)  # fmt: skip
    gr.on([image.change, invert.change], preview, [image, invert, model_key_state], model_view, api_name="preview", **sampling_events)  # first: the refreshes below share its function
    model_list.input(choose_model, model_list, [model_key_state, *model_outputs], api_name="choose_model", **sampling_events).success(**refresh_preview)
    hub_button.click(load_from_hub, [hub_repo, hub_revision, session_models_state], [model_key_state, model_list, *model_outputs, session_models_state],
                     api_name="load_from_hub", **sampling_events).success(**refresh_preview)  # fmt: skip
    reconstruct_button.click(
        restore_or_complete, [image, invert, how, keep_rows, sampling, temperature, seed, restore_class, model_key_state],
        [result, errors, sampling_loss, nll, bits, error_rate, row_plot], api_name="reconstruct", **sampling_events,
    )  # fmt: skip
    draw_button.click(complete_drawing, [drawing, draw_keep_rows, completions, draw_temperature, draw_seed, draw_class, model_key_state],
                      [completion_grid, completion_losses, draw_caption], api_name="complete_drawing", **sampling_events)  # fmt: skip
    compare_button.click(
        compare, [compare_image, compare_invert, compare_how, compare_keep_rows, compare_seed, first_model, second_model],
        [first_result, second_result, first_loss, second_loss, compare_plot], api_name="compare", validator=compare_ready,
        **sampling_events,
    )  # fmt: skip
    gr.on([demo.load, first_model.change, second_model.change], compare_models, [first_model, second_model, compare_keep_rows],
          [compare_note, compare_keep_rows], api_visibility="private")  # fmt: skip
    generate_button.click(generate, [samples, generate_temperature, generate_seed, random_seed, generate_class, model_key_state],
                          [grid, seed_used, generate_caption], api_name="generate", **sampling_events)  # fmt: skip
    train_files.upload(lambda: "uploads", None, data, api_visibility="private")
    train_button.click(
        train, [train_files, data, steps, session_models_state],
        [loss_plot, train_status, model_key_state, model_list, model_info, session_models_state, download, keep_rows,
         card_samples, drawing, draw_keep_rows, *model_outputs[5:]],
        inputs_kwargs=dict(height=size, channels=channels, values=values, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                           bidirectional=bidirectional, mode=mode, window=window, batch_norm=batch_norm, row_head=row_head),
        api_name="train", concurrency_id="train", concurrency_limit=1,
        show_progress_on=[train_status],  # one timer, by the status: the model menu, samples and line stay usable
    )  # fmt: skip
    stop_button.click(stop_training, None, None, api_name="stop_training", concurrency_limit=None)
    push_button.click(push_to_hub, [push_repo, push_private, push_token], push_status, api_name="push_to_hub", **sampling_events)  # loads the model
    demo.unload(end_session)

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=limits.QUEUE_SIZE)
fairness.bound(demo._queue)  # one session or address cannot fill the queue for everyone
LAUNCH_OPTIONS = dict(theme=gr.themes.Soft(), css=CSS, max_file_size=uploads.MAX_FILE_BYTES, show_error=False, run_history=False,
                      app_kwargs=dict(middleware=[Middleware(uploads.UploadLimit)]))  # fmt: skip

if __name__ == "__main__":
    scratch.exit_on_terminate()  # a plain stop removes this process's folders too
    demo.launch(**LAUNCH_OPTIONS)
