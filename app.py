"""The pixelrnn app: reconstruct, complete, generate and train, row by row, in the browser.

Handlers first (thin adapters: their arguments and returns match the UI's inputs and outputs one for one,
and they call only the public pixelrnn API), then the layout, then the wiring. `python app.py` serves it;
tests import `demo` and launch it themselves. PIXELRNN_WEIGHTS names the checkpoints folder (default weights/).
"""
import os
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

import pixelrnn  # noqa: E402
import pixelrnn.datasets  # noqa: E402
import pixelrnn.hub  # noqa: E402
from pixelrnn import app_support  # noqa: E402
from pixelrnn.app_support import friendly_errors  # noqa: E402
from pixelrnn.train import TrainConfig, run  # noqa: E402

EXAMPLES = sorted(str(p) for p in (Path(__file__).parent / "examples").glob("*.png"))
RESTORE, COMPLETE = "restore (teacher-forced)", "complete from the first rows"
DATA_SOURCES = [("my uploaded images", "uploads"), ("digits (scikit-learn, 8x8)", "digits"), ("photos (crops)", "photos")]
# Bounds that keep a public Space responsive.
MAX_SAMPLES, MAX_SIDE, MAX_HIDDEN, MAX_LAYERS, MAX_WINDOW, MAX_STEPS, MAX_FILES = 64, 64, 256, 3, 16, 2000, 8
TRAIN_SECONDS = int(os.environ.get("PIXELRNN_TRAIN_SECONDS", 180))
CONCURRENCY, QUEUE_SIZE = int(os.environ.get("PIXELRNN_CONCURRENCY", 4)), 64
PLOT_EVERY = 0.25  # seconds between live loss-curve updates

DEVICE = app_support.pick_device()
MODELS = app_support.Models(DEVICE)
RUNS = app_support.TrainingRuns(MODELS)
DEFAULT_KEY = app_support.default_key()
try:
    STARTUP_INFO = app_support.describe(MODELS.get(DEFAULT_KEY), DEFAULT_KEY)
except pixelrnn.PixelRNNError as error:
    STARTUP_INFO = f"**{error}**"


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
    return [(name, f"local:{name}") for name in app_support.local_checkpoints()] + [tuple(m) for m in session_models]


def keep_rows_slider(model):
    height = model.config["height"]
    return gr.update(maximum=height, value=height // 2)


@friendly_errors
def page_load(model_key, session_models):
    choices = model_choices(session_models)
    if not model_key:
        model_key = app_support.default_key()
    if not model_key:
        return "", gr.update(choices=choices, value=None), f"**{app_support.no_checkpoint_message()}**", gr.update()
    model = MODELS.get(model_key)
    return model_key, gr.update(choices=choices, value=model_key), app_support.describe(model, model_key), keep_rows_slider(model)


@friendly_errors
def choose_model(model_key):
    model = MODELS.get(model_key)
    return model_key, app_support.describe(model, model_key), keep_rows_slider(model)


@friendly_errors
def load_from_hub(repo_id, revision, session_models):
    model_key = app_support.hub_key(repo_id, revision)
    model = MODELS.get(model_key)  # a failure raises: the current model stays
    session_models = [m for m in session_models if m[1] != model_key] + [[app_support.label(model_key), model_key]]
    dropdown = gr.update(choices=model_choices(session_models), value=model_key)
    return model_key, dropdown, app_support.describe(model, model_key), keep_rows_slider(model), session_models


@friendly_errors
def preview(image, invert, model_key):
    if image is None:
        return None
    model = MODELS.get(model_key)
    return app_support.picture(pixelrnn.load_image(image, model, invert="auto" if invert else False), model)


@app_support.gpu()
@friendly_errors
def reconstruct(image, invert, how, keep_rows, sampling, temperature, seed, model_key):
    model = MODELS.get(model_key)
    if image is None:
        raise pixelrnn.PixelRNNError("upload an image first, or pick an example")
    original = pixelrnn.load_image(image, model, invert="auto" if invert else False)
    if how == COMPLETE:
        steps = pixelrnn.complete(
            model, original, keep_rows=int(keep_rows), temperature=float(temperature),
            seed=None if seed is None else int(seed), greedy=sampling == "greedy",
        )  # fmt: skip
    else:
        steps = pixelrnn.reconstruct(model, original)
    seen, unique = app_support.picture(original, model), app_support.UniqueFrames()
    for step in steps:
        yield (
            unique(seen), unique(app_support.picture(step.image, model)), unique(app_support.error_map(original, step.image, step.row, model)),
            step.loss, step.nll, step.bits_per_dim, step.error_rate, app_support.row_loss_frame(step.row_losses),
        )  # fmt: skip


@app_support.gpu()
@friendly_errors
def generate(n, temperature, seed, random_seed, model_key):
    model = MODELS.get(model_key)
    seed = app_support.fresh_seed() if random_seed or seed is None else int(seed)
    unique = app_support.UniqueFrames()
    for step in pixelrnn.generate(model, n=int(n), temperature=float(temperature), seed=seed):
        yield unique(app_support.picture(step.image, model)), seed


@app_support.gpu(duration=TRAIN_SECONDS + 60)
@friendly_errors
def train(files, data, size, color, values, cell, hidden_size, num_layers, bidirectional, mode, window, batch_norm, row_head, steps, session_models, request: gr.Request):
    model_config = dict(
        height=int(size), width=int(size), channels=1 if color == "gray" else 3, values=values, cell=cell,
        hidden_size=int(hidden_size), head_size=int(hidden_size), num_layers=int(num_layers),
        bidirectional=bool(bidirectional), mode=mode, window=int(window), batch_norm=bool(batch_norm), row_head=row_head,
    )  # fmt: skip
    _check_training_data(files, data)  # the sliders bound the sizes
    pixelrnn.PixelRNN(**model_config)  # a bad combination of options fails here, before the data is read
    splits = pixelrnn.datasets.load_splits([str(f) for f in files] if data == "uploads" else data, model_config, copies=256)
    run_id, folder, stop = RUNS.start(request.session_hash)  # replaces the session's previous run
    config = TrainConfig(
        out=str(folder), epochs=0, max_steps=int(steps), batch_size=32, lr=3e-3, warmup_steps=max(1, int(steps) // 10),
        save_every=10**9, log_every=10, eval_batch_size=256, max_valid=256, command="trained in the pixelrnn app",
    )  # fmt: skip
    history, shown_at, progress = [], 0.0, None
    for progress in app_support.steps_until_stopped(run(config, model_config, splits=splits), stop, TRAIN_SECONDS):
        history.append((progress.step, progress.loss, "train"))
        if progress.valid:
            history.append((progress.step, progress.valid["nll_nats"], "valid"))
        if time.monotonic() - shown_at > PLOT_EVERY:
            shown_at = time.monotonic()
            yield (app_support.loss_frame(history), app_support.training_status(progress), *[gr.skip()] * 6)
    checkpoint = RUNS.checkpoint(request.session_hash)
    model_key = MODELS.add_trained(run_id, checkpoint)
    model = MODELS.get(model_key)
    session_models = [m for m in session_models if not m[1].startswith("trained:")] + [[app_support.label(model_key), model_key]]
    status = app_support.training_status(progress, finished=True)
    yield (
        app_support.loss_frame(history), status, model_key, gr.update(choices=model_choices(session_models), value=model_key),
        app_support.describe(model, model_key), session_models, str(app_support.zip_checkpoint(checkpoint, folder / "pixelrnn-model.zip")),
        keep_rows_slider(model),
    )  # fmt: skip


def _check_training_data(files, data):
    if data == "uploads" and not files:
        raise pixelrnn.PixelRNNError("upload one or a few images to train on, or choose a bundled data set")
    if data == "uploads" and len(files) > MAX_FILES:
        raise pixelrnn.PixelRNNError(f"upload at most {MAX_FILES} images")


def stop_training(request: gr.Request):
    RUNS.stop(request.session_hash)


@friendly_errors
def push_to_hub(repo_id, private, token, request: gr.Request):
    folder = RUNS.checkpoint(request.session_hash)
    repo_id = (repo_id or "").strip()
    app_support.check_repo_id(repo_id, loading=False)
    if not (token or "").strip():
        raise pixelrnn.PixelRNNError("paste a Hugging Face token with write access (it is used once and not kept)")
    try:
        pixelrnn.hub.push(folder, repo_id, private=bool(private), token=token.strip())
    except Exception as error:  # noqa: BLE001 - the message, never the token, goes to the page and the log
        message = app_support.scrub(str(error), token.strip())
        app_support.log.warning("push to %s failed: %s: %s", repo_id, type(error).__name__, message)
        raise gr.Error(f"Pushing to the Hub failed: {message}", print_exception=False) from None
    return f"Pushed to [{repo_id}](https://huggingface.co/{repo_id})."


def end_session(request: gr.Request):
    RUNS.end(request.session_hash)


# -- layout -------------------------------------------------------------------------------------------
CSS = ".pixels img { image-rendering: pixelated; } #upload img { width: 100%; height: 100%; object-fit: contain; }"

with gr.Blocks(title="pixelrnn", delete_cache=(900, 1800)) as demo:
    model_key = gr.State(DEFAULT_KEY)
    session_models = gr.State([])
    gr.Markdown("# pixelrnn: images made row by row\nAn RNN reads the rows above and draws the next one.")
    with gr.Row():
        model_list = gr.Dropdown(model_choices([]), value=DEFAULT_KEY or None, label="Model", scale=2)
        hub_repo = gr.Textbox(label="or a Hub model", placeholder="user/pixelrnn-model", scale=2)
        hub_revision = gr.Textbox(label="revision", placeholder="main", scale=1)
        hub_button = gr.Button("Load from the Hub", scale=1)
    model_info = gr.Markdown(STARTUP_INFO, elem_id="model-info")

    with gr.Tabs():
        with gr.Tab("Reconstruct", id="reconstruct"):
            with gr.Row():
                with gr.Column(scale=1):
                    image = UploadedImage(label="Image", type="filepath", image_mode=None, sources=["upload", "clipboard"], height=240, elem_classes="pixels", elem_id="upload")
                    invert = gr.Checkbox(True, label="invert dark drawings on light paper (auto)")
                    gr.Examples(EXAMPLES, inputs=[image], label="Examples")
                    how = gr.Radio([RESTORE, COMPLETE], value=RESTORE, label="How")
                    keep_rows = gr.Slider(0, 28, value=14, step=1, label="keep the first rows (completion)", elem_id="keep-rows")
                    sampling = gr.Radio(["greedy", "sample"], value="sample", label="completion draws")
                    with gr.Row():
                        temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
                        seed = gr.Number(0, precision=0, label="seed", elem_id="seed")
                    reconstruct_button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-button")
                with gr.Column(scale=2):
                    with gr.Row():
                        model_view = gr.Image(label="as the model sees it", format="png", type="pil", elem_classes="pixels", elem_id="model-view")
                        result = gr.Image(label="result", format="png", type="pil", elem_classes="pixels", elem_id="result")
                        errors = gr.Image(label="error map", format="png", type="pil", elem_classes="pixels")
                    gr.Markdown("Error map: blue where the result misses a value that is on, red where it adds one; "
                                "for 8-bit models, brighter is further off. Rows not drawn yet stay black.")
                    with gr.Row():
                        sampling_loss = gr.Number(None, label="sampling loss (nats per value)", precision=4, interactive=False)
                        nll = gr.Number(None, label="NLL (nats per image)", precision=2, interactive=False)
                        bits = gr.Number(None, label="bits per dim", precision=4, interactive=False, elem_id="bits")
                        error_rate = gr.Number(None, label="values wrong", precision=4, interactive=False)
                    row_plot = gr.LinePlot(x="row", y="loss", label="loss per row (nats per value)", height=220)

        with gr.Tab("Generate", id="generate"):
            with gr.Row():
                samples = gr.Slider(1, MAX_SAMPLES, value=16, step=1, label="images")
                generate_temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
                generate_seed = gr.Number(0, precision=0, label="seed", elem_id="generate-seed")
                random_seed = gr.Checkbox(False, label="random seed")
            generate_button = gr.Button("Generate", variant="primary", elem_id="generate-button")
            with gr.Row():
                grid = gr.Image(label="samples", format="png", type="pil", elem_classes="pixels", elem_id="samples", scale=3)
                seed_used = gr.Number(None, label="seed used", precision=0, interactive=False, scale=1, elem_id="seed-used")

        with gr.Tab("Train", id="train"):
            with gr.Row():
                with gr.Column():
                    train_files = gr.File(label="images to train on", file_count="multiple", file_types=["image"], elem_id="train-files")
                    data = gr.Radio(DATA_SOURCES, value="digits", label="data")
                    with gr.Row():
                        size = gr.Slider(4, MAX_SIDE, value=16, step=1, label="size", info="pixels per side", elem_id="train-size")
                        color = gr.Radio(["gray", "RGB"], value="gray", label="color")
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
                        row_head = gr.Radio(["autoregressive", "independent"], value="autoregressive", label="row head")
                        steps = gr.Slider(1, MAX_STEPS, value=200, step=1, label="steps", info=f"{TRAIN_SECONDS} s at most", elem_id="train-steps")
                    with gr.Row():
                        train_button = gr.Button("Train", variant="primary", elem_id="train-button")
                        stop_button = gr.Button("Stop", variant="stop")
                with gr.Column():
                    loss_plot = gr.LinePlot(x="step", y="nll", color="series", label="NLL (nats per image)", height=300)
                    train_status = gr.Markdown(elem_id="train-status")
                    download = gr.File(label="download the model (safetensors)", interactive=False)
                    with gr.Accordion("Push to the Hugging Face Hub", open=False):
                        push_repo = gr.Textbox(label="repo id", placeholder="user/pixelrnn-model")
                        push_private = gr.Checkbox(True, label="private")
                        push_token = gr.Textbox(label="token (write access; used once, never kept)", type="password")
                        push_button = gr.Button("Push")
                        push_status = gr.Markdown()

    # -- wiring -------------------------------------------------------------------------------------------
    sampling_events = dict(concurrency_id="sampling", concurrency_limit=CONCURRENCY)
    demo.load(page_load, [model_key, session_models], [model_key, model_list, model_info, keep_rows], api_visibility="private")
    gr.on([image.change, invert.change], preview, [image, invert, model_key], model_view, api_name="preview")  # first: the refreshes below share its function
    model_list.input(choose_model, model_list, [model_key, model_info, keep_rows], api_name="choose_model").success(
        preview, [image, invert, model_key], model_view, api_visibility="private"
    )  # fmt: skip
    hub_button.click(load_from_hub, [hub_repo, hub_revision, session_models], [model_key, model_list, model_info, keep_rows, session_models], api_name="load_from_hub").success(
        preview, [image, invert, model_key], model_view, api_visibility="private"
    )  # fmt: skip
    reconstruct_button.click(
        reconstruct, [image, invert, how, keep_rows, sampling, temperature, seed, model_key],
        [model_view, result, errors, sampling_loss, nll, bits, error_rate, row_plot], api_name="reconstruct", **sampling_events,
    )  # fmt: skip
    generate_button.click(generate, [samples, generate_temperature, generate_seed, random_seed, model_key], [grid, seed_used], api_name="generate", **sampling_events)
    train_files.upload(lambda: "uploads", None, data, api_visibility="private")
    train_button.click(
        train, [train_files, data, size, color, values, cell, hidden_size, num_layers, bidirectional, mode, window, batch_norm, row_head, steps, session_models],
        [loss_plot, train_status, model_key, model_list, model_info, session_models, download, keep_rows],
        api_name="train", concurrency_id="train", concurrency_limit=1,
    )  # fmt: skip
    stop_button.click(stop_training, None, None, api_name="stop_training", concurrency_limit=None)
    push_button.click(push_to_hub, [push_repo, push_private, push_token], push_status, api_name="push_to_hub")
    demo.unload(end_session)

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
LAUNCH_OPTIONS = dict(theme=gr.themes.Soft(), css=CSS, max_file_size="50mb", show_error=False, run_history=False)

if __name__ == "__main__":
    demo.launch(**LAUNCH_OPTIONS)
