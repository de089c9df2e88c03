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


def choose_model(page, name):
    page.locator("#model-list input").click()
    page.get_by_role("option", name=name, exact=True).click()
    expect(page.locator("#model-info")).to_contain_text(name)


def pick(page, elem_id, choice):
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=choice, exact=True).click()
    expect(page.locator(f"#{elem_id} input")).to_have_value(choice)


def draw_a_stroke(page):
    canvas = page.locator("#drawing canvas").first
    expect(canvas).to_be_visible()
    page.locator("#drawing button[aria-label*='Brush' i], #drawing button[title*='Brush' i], #drawing button[aria-label*='Draw' i]").first.click()
    box = canvas.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.3 * w, y0 + 0.15 * h)  # a stroke across the top of the canvas
    page.mouse.down()
    page.mouse.move(x0 + 0.7 * w, y0 + 0.4 * h, steps=12)
    page.mouse.up()


def test_draw_then_let_the_model_complete_it_several_ways(page):
    page.get_by_role("tab", name="Draw and complete").click()
    draw_a_stroke(page)
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


def test_pick_a_class_to_generate_and_complete_a_drawing_as_each_class(page):
    """tiny-classes: 8x8, classes a, b and <i>c</i> (a name shown as these characters, never as markup)."""
    page.get_by_role("tab", name="Generate").click()
    expect(page.locator("#generate-class")).to_be_hidden()  # binarized-mnist has no classes
    choose_model(page, "tiny-classes")
    expect(page.locator("#generate-class input")).to_have_value("any")
    page.locator("#generate-class input").click()
    expect(page.get_by_role("option", name="<i>c</i>", exact=True)).to_be_visible()  # the name as its characters
    page.get_by_role("option", name="b", exact=True).click()
    expect(page.locator("#generate-class input")).to_have_value("b")
    page.fill("#generate-seed input", "3")
    page.click("#generate-button")
    expect(page.locator("#generate-caption textarea")).to_have_value("All 16 drawn as b.")
    wait_until_streamed(page, "#samples")
    model = library_model("tiny-classes")
    *_, last = pixelrnn.generate(model, fast=app_fast(), n=16, seed=3, labels=1)
    assert_same_picture(shown_image(page, "#samples"), last.image, model)
    screenshot(page, "generate-class")

    page.get_by_role("tab", name="Draw and complete").click()
    draw_a_stroke(page)
    pick(page, "draw-class", "each class")
    page.click("#draw-button")
    expect(page.locator("#draw-caption textarea")).to_have_value("row 1: a, b\nrow 2: <i>c</i>")
    wait_until_streamed(page, "#completion-grid")
    table = page.locator("#completion-losses")
    expect(table.get_by_role("row")).to_have_count(4)  # a header and one row per class
    expect(table).to_contain_text("<i>c</i>")
    assert page.locator("#completion-losses i, #draw-caption i, #generate-class i").count() == 0  # no markup made of a name
    grid = shown_image(page, "#completion-grid")
    assert grid.size == (2 * 9 + 1, 2 * 9 + 1)  # 3 completions of 8x8 in a 2x2 grid with 1-pixel gaps
    screenshot(page, "draw-each-class")


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


# -- layout at phone and desktop sizes ----------------------------------------------------------------------
SIZES = {"phone": dict(viewport={"width": 390, "height": 844}, is_mobile=True), "desktop": dict(viewport={"width": 1280, "height": 1000})}
TABS = ["Reconstruct", "Draw and complete", "Compare", "Generate", "Train"]

# Options (radio buttons, checkboxes) whose label box reaches out of its card's padded inside.
OPTIONS_OUTSIDE_CARDS = """() => [...document.querySelectorAll("input[type=radio], input[type=checkbox]")].flatMap(input => {
    const label = input.closest("label"), block = input.closest(".block");
    if (!label || !block || !label.offsetParent) return [];
    const r = label.getBoundingClientRect(), b = block.getBoundingClientRect(), style = getComputedStyle(block);
    const left = b.left + parseFloat(style.paddingLeft) - 1, right = b.right - parseFloat(style.paddingRight) + 1;
    return r.left < left || r.right > right ? [label.textContent.trim()] : [];
})"""

# Where each picture is drawn (its <img> box with object-fit applied), and what of it is hidden: labels or
# buttons of its card drawn over it, or parts cut off by the card.
PICTURES_COVERED = """(selector) => [...document.querySelectorAll(selector + " img")].filter(img => img.offsetParent && img.naturalWidth).flatMap(img => {
    const box = img.getBoundingClientRect(), fit = getComputedStyle(img).objectFit;
    let scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
    if (fit === "scale-down") scale = Math.min(scale, 1); else if (fit === "none") scale = 1;
    else if (fit === "cover") scale = Math.max(box.width / img.naturalWidth, box.height / img.naturalHeight);
    const w = fit === "fill" ? box.width : img.naturalWidth * scale, h = fit === "fill" ? box.height : img.naturalHeight * scale;
    const drawn = {left: box.left + (box.width - w) / 2, top: box.top + (box.height - h) / 2};
    drawn.right = drawn.left + w; drawn.bottom = drawn.top + h;
    const block = img.closest(".block"), card = block.getBoundingClientRect(), problems = [];
    if (drawn.left < card.left - 1 || drawn.top < card.top - 1 || drawn.right > card.right + 1 || drawn.bottom > card.bottom + 1)
        problems.push(`${selector}: the picture is cut off by its card`);
    for (const over of block.querySelectorAll("label, button, a, .icon-button-wrapper")) {
        if (over.contains(img) || !over.offsetParent) continue;
        const r = over.getBoundingClientRect();
        if (r.width && r.height && r.left < drawn.right - 1 && r.right > drawn.left + 1 && r.top < drawn.bottom - 1 && r.bottom > drawn.top + 1)
            problems.push(`${selector}: "${over.textContent.trim() || over.getAttribute("aria-label") || over.className}" covers the picture`);
    }
    return problems;
})"""


def open_page(browser, size, query=""):
    _, url, _ = served()
    page = browser.new_page(**SIZES[size])
    page.set_default_timeout(WAIT_MS)
    page.goto(url + query, wait_until="domcontentloaded")
    expect(page.locator("#model-info")).to_contain_text("parameters")
    return page


@pytest.mark.parametrize("size", SIZES)
def test_every_tab_is_in_sight_and_every_option_stays_in_its_card(browser, size):
    page = open_page(browser, size)
    width = SIZES[size]["viewport"]["width"]
    for name in TABS:
        tab = page.get_by_role("tab", name=name, exact=True)
        expect(tab).to_be_visible()  # not folded behind a "⋯" menu
        box = tab.bounding_box()
        assert 0 <= box["x"] and box["x"] + box["width"] <= width, f"the {name} tab is off the screen"
        tab.click()
        expect(tab).to_have_attribute("aria-selected", "true")
        assert page.evaluate(OPTIONS_OUTSIDE_CARDS) == [], f"options reach out of their cards on the {name} tab"
    page.close()


@pytest.mark.parametrize("size", SIZES)
def test_pictures_are_shown_whole_with_their_labels_and_buttons_outside(browser, size):
    page = open_page(browser, size)
    expect(page.locator("#card-samples img")).to_be_visible()
    page.set_input_files("#upload input[type=file]", str(EXAMPLES / "digit-3.png"))
    page.click("#reconstruct-button")
    wait_until_streamed(page, "#result")
    for selector in ("#model-view", "#result", "#error-map"):  # pictures load when they come into sight
        page.locator(selector).scroll_into_view_if_needed()
        expect(page.locator(f"{selector} img")).to_be_visible()
    page.wait_for_function("() => [...document.querySelectorAll('#result img, #model-view img, #error-map img')].every(i => i.complete && i.naturalWidth)")
    problems = [p for selector in ("#card-samples", "#upload", "#model-view", "#result", "#error-map") for p in page.evaluate(PICTURES_COVERED, selector)]
    page.get_by_role("tab", name="Generate", exact=True).click()
    page.click("#generate-button")
    wait_until_streamed(page, "#samples")
    page.locator("#samples").scroll_into_view_if_needed()
    expect(page.locator("#samples img")).to_be_visible()
    page.wait_for_function("() => document.querySelector('#samples img').complete")
    problems += page.evaluate(PICTURES_COVERED, "#samples")
    assert problems == []
    page.close()


@pytest.mark.parametrize("size", SIZES)
def test_the_transparent_example_shows_its_digit(browser, size):
    """digit-0-transparent.png is a white 0 on a transparent sheet: its thumbnail shows it on black, as the model reads it."""
    page = open_page(browser, size)
    thumbnail = page.locator("#upload").locator("xpath=..").locator("img[src*='digit-0-transparent']").first
    if not thumbnail.count():
        thumbnail = page.locator("img[src*='digit-0-transparent']").first
    thumbnail.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll(\"img[src*='digit-0-transparent']\")].every(i => i.complete)")
    shot = np.asarray(Image.open(io.BytesIO(thumbnail.screenshot())).convert("L"))
    assert (shot > 200).mean() > 0.02 and (shot < 60).mean() > 0.3, "the white 0 is not visible on its thumbnail"
    page.close()


# A progress overlay (with its timer) on an element: Gradio's status tracker when it is not hidden.
BUSY = "[data-testid=status-tracker]:not(.hide)"


@pytest.mark.parametrize("size", SIZES)
def test_training_leaves_the_header_usable_with_one_timer(browser, size):
    page = open_page(browser, size)
    page.get_by_role("tab", name="Train", exact=True).click()
    set_slider(page, "train-size", 8)
    set_slider(page, "train-hidden", 16)
    set_slider(page, "train-steps", 2000)  # long enough to look at the page while it runs; Stop ends it
    page.click("#train-button")
    expect(page.locator("#train-status")).to_contain_text("Step")
    for header in ("#model-list", "#card-samples", "#model-info"):
        expect(page.locator(f"{header} {BUSY}, {header}{BUSY}")).to_have_count(0)
    assert page.locator(f"{BUSY} .progress-text, {BUSY} .timer").count() <= 1
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator("#train-status")).to_contain_text("Stopped after")
    expect(page.locator("#model-info")).to_contain_text("trained in this session")
    page.close()


@pytest.mark.parametrize("size", SIZES)
def test_compare_says_how_its_two_models_differ_and_asks_for_an_image_once(browser, size):
    page = open_page(browser, size)
    page.get_by_role("tab", name="Compare", exact=True).click()
    note = page.locator("#compare-note")  # the test server's two models: 28x28 binary and 8x8 RGB 8-bit
    expect(note).to_contain_text("28x28 gray, binary values")
    expect(note).to_contain_text("8x8 RGB, 8-bit values")
    expect(note).to_contain_text("not comparable")
    expect(note).to_contain_text("28 and 8 rows")
    expect(page.locator("#compare-keep-rows input[type=range]")).to_have_attribute("max", "28")  # not 64
    page.click("#compare-button")
    expect(page.get_by_text("upload an image first, or pick an example").first).to_be_visible()
    assert page.get_by_text("Error", exact=True).count() == 0  # no red badge on each output
    page.close()
