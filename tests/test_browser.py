"""End to end in a real headless browser (Debian's chromium, driven by playwright): upload and reconstruct,
generate, train a tiny model. Screenshots are kept in artifacts/screenshots/."""
import io
from pathlib import Path

import numpy as np
import pytest
from app_harness import EXAMPLES, app_fast, ROOT, assert_same_picture, library_model, served
from app_support.labels import COMPLETE
from PIL import Image

import pixelrnn

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
WAIT_MS = 60_000

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM}: install Debian's package (apt-get install chromium)"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (requirements-dev.txt)")
expect = sync_api.expect
expect.set_options(timeout=WAIT_MS)  # assertions wait as long as actions: CI machines are slow and shared


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    _, url, _ = served()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(url, wait_until="domcontentloaded")
    expect(page.locator("#model-info")).to_contain_text("binarized-mnist")
    yield page
    page.close()


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def shown_image(page, selector) -> Image.Image:
    """The picture an <img> shows, fetched from its own URL: what the browser got, as PNG."""
    source = page.locator(f"{selector} img").first.get_attribute("src")
    data = page.request.get(source).body()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).convert("RGB")


def wait_until_streamed(page, selector):
    """Gradio shows a progress overlay on an output while its event is queued or streaming."""
    expect(page.locator(f"{selector} .generating, {selector} .progress-text")).to_have_count(0)


def test_upload_an_image_and_reconstruct_it(page):
    path = EXAMPLES / "digit-7-on-paper.png"
    page.set_input_files("#upload input[type=file]", str(path))
    expect(page.locator("#model-view img")).to_be_visible()
    page.click("#reconstruct-button")
    expect(page.locator("#bits input")).not_to_have_value("")  # the first row has arrived
    wait_until_streamed(page, "#result")
    model = library_model()
    *_, last = pixelrnn.reconstruct(model, pixelrnn.load_image(path, model, invert="auto"))
    assert float(page.locator("#bits input").input_value()) == pytest.approx(last.bits_per_dim, abs=1e-3)
    assert_same_picture(shown_image(page, "#result"), last.image, model)
    screenshot(page, "reconstruct")


def test_complete_the_lower_rows_of_an_example(page):
    page.locator(".gallery button, .gallery-item").nth(2).click()  # the examples: colors, 0, 3, 7
    expect(page.locator("#model-view img")).to_be_visible()
    page.get_by_label(COMPLETE).check()
    set_slider(page, "keep-rows", 12)
    page.fill("#seed input", "1")
    page.click("#reconstruct-button")
    expect(page.locator("#bits input")).not_to_have_value("")
    wait_until_streamed(page, "#result")
    model = library_model()
    original = pixelrnn.load_image(EXAMPLES / "digit-3.png", model, invert="auto")
    *_, last = pixelrnn.complete(model, original, fast=app_fast(), keep_rows=12, seed=1)
    assert_same_picture(shown_image(page, "#result"), last.image, model)
    screenshot(page, "complete")


def test_a_bad_upload_shows_a_message_not_a_trace(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"these are notes, not pixels")
    page.set_input_files("#upload input[type=file]", str(bad))
    expect(page.get_by_text("not an image that can be read").first).to_be_visible()
    assert "Traceback" not in page.content()
    screenshot(page, "bad-upload")


def test_generate_a_grid(page):
    page.get_by_role("tab", name="Generate").click()
    page.fill("#generate-seed input", "3")
    page.click("#generate-button")
    expect(page.locator("#seed-used input")).to_have_value("3")
    model = library_model()
    *_, last = pixelrnn.generate(model, fast=app_fast(), n=16, seed=3)
    expect(page.locator("#samples img")).to_be_visible()
    wait_until_streamed(page, "#samples")
    assert_same_picture(shown_image(page, "#samples"), last.image, model)
    screenshot(page, "generate")


def set_slider(page, elem_id, value):
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_train_a_tiny_model_on_an_upload_and_use_it(page):
    page.get_by_role("tab", name="Train").click()
    page.set_input_files("#train-files input[type=file]", str(EXAMPLES / "digit-3.png"))
    expect(page.get_by_label("my uploaded images")).to_be_checked()
    set_slider(page, "train-size", 8)
    set_slider(page, "train-hidden", 16)
    set_slider(page, "train-steps", 30)
    page.click("#train-button")
    expect(page.locator("#train-status")).to_contain_text("Done")
    expect(page.locator("#model-info")).to_contain_text("trained in this session")
    expect(page.locator("#model-info")).to_contain_text("8x8 gray")
    screenshot(page, "train")
    page.get_by_role("tab", name="Generate").click()
    page.click("#generate-button")
    expect(page.locator("#seed-used input")).to_have_value("0")
    wait_until_streamed(page, "#samples")
    width = shown_image(page, "#samples").width
    assert width % (4 * 9 + 1) == 0  # 16 samples of 8x8 in a 4x4 grid with 1-pixel gaps, upscaled


def test_draw_then_let_the_model_complete_it_several_ways(page):
    page.get_by_role("tab", name="Draw and complete").click()
    canvas = page.locator("#drawing canvas").first
    expect(canvas).to_be_visible()
    page.locator("#drawing button[aria-label*='Brush' i], #drawing button[title*='Brush' i], #drawing button[aria-label*='Draw' i]").first.click()
    box = canvas.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.3 * w, y0 + 0.15 * h)  # a stroke across the top of the canvas
    page.mouse.down()
    page.mouse.move(x0 + 0.7 * w, y0 + 0.4 * h, steps=12)
    page.mouse.up()
    set_slider(page, "completions", 4)
    page.click("#draw-button")
    expect(page.locator("#completion-grid img")).to_be_visible()
    wait_until_streamed(page, "#completion-grid")
    expect(page.locator("#completion-losses").get_by_role("row")).to_have_count(5)  # a header and one row each
    grid = shown_image(page, "#completion-grid")
    assert grid.size == (2 * 29 + 1, 2 * 29 + 1)  # 4 completions of 28x28 in a 2x2 grid with 1-pixel gaps
    top_rows = np.asarray(grid)[1:15, 1:29]
    assert top_rows.max() > 0, "the stroke drawn on the canvas reached the model"
    screenshot(page, "draw")


def test_compare_two_models_on_one_example(page):
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-upload input[type=file]").set_input_files(str(EXAMPLES / "digit-7-on-paper.png"))
    page.click("#compare-button")
    expect(page.locator("#loss-a input")).not_to_have_value("")
    wait_until_streamed(page, "#result-b")
    model = library_model()
    *_, last = pixelrnn.reconstruct(model, pixelrnn.load_image(EXAMPLES / "digit-7-on-paper.png", model, invert="auto"))
    assert float(page.locator("#loss-a input").input_value()) == pytest.approx(last.loss, abs=1e-3)
    expect(page.locator("#compare-plot")).to_contain_text("A (blue), B (orange)")
    screenshot(page, "compare")


def test_a_link_with_a_model_opens_the_page_on_that_model(browser):
    _, url, _ = served()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url + "?model=rgb-8bit", wait_until="domcontentloaded")
    expect(page.locator("#model-info")).to_contain_text("8x8 RGB")
    expect(page.locator("#model-info a", has_text="share this model")).to_have_attribute("href", "?model=rgb-8bit")
    page.goto(url + "?model=nobody/missing-model", wait_until="domcontentloaded")
    expect(page.locator("#model-info")).to_contain_text("could not be loaded")
    expect(page.locator("#model-info")).to_contain_text("binarized-mnist")  # the default stays in use
    page.close()


def test_the_phone_view_shows_samples_first_and_folds_the_hub_loader(browser):
    _, url, _ = served()
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(url, wait_until="domcontentloaded")
    expect(page.locator("#model-info")).to_contain_text("binarized-mnist")
    expect(page.locator("#hub-repo")).to_be_hidden()
    samples = page.locator("#card-samples img")
    expect(samples).to_be_visible()
    assert samples.bounding_box()["y"] < 844  # on the first screen, without a click
    screenshot(page, "phone")
    page.close()
