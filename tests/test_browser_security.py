"""Markup from visitors and Hub repos, in a real browser (issue 21, item 1): none of it becomes an element of the
page, and the page asks no foreign host for anything. The app runs against the hostile Hub of hostile.py."""
from urllib.parse import quote, urlsplit

import pytest
from hostile import EVIL, HostileHub, checkpoint_files, serve_app, stop

import pixelrnn

CHROMIUM_PATH = "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = [
    pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM_PATH), reason="no /usr/bin/chromium"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
OVERLAY = f'<a href={EVIL} style="position:fixed;inset:0;background:red;z-index:9999">Your session expired, log in again</a>'
BRANCH = f"v1)<img/src={EVIL}/b.png>"
CARD = f"""---
model-index:
- results:
  - metrics:
    - {{type: test_nll_nats, value: 80.5}}
    - {{type: '<img src={EVIL}/m.png>', value: 1}}
    - {{type: '[x]({EVIL})', value: 2}}
---
![tracker]({EVIL}/card.png)
"""


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile-app")
    pixelrnn.PixelRNN(height=6, width=6, hidden_size=8, head_size=8).save_pretrained(home / "weights" / "binarized-mnist")
    hub = HostileHub().start()
    hub.add_repo("mallory/card", checkpoint_files(home / "card", card=CARD))
    repo = hub.repos["mallory/card"]
    repo.branches[BRANCH] = repo.branches["main"]
    server, url = serve_app(hub, home, PIXELRNN_WEIGHTS=str(home / "weights"))
    yield url
    stop(server)
    hub.stop()


@pytest.fixture
def page(hostile_app):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(60_000)
        sync_api.expect.set_options(timeout=60_000)
        page.hosts = set()
        page.on("request", lambda request: page.hosts.add(urlsplit(request.url).hostname))
        yield page
        browser.close()


def assert_no_injected_elements(page):
    for selector in ("img[src*='evil']", "[style*='position:fixed']", "[style*='position: fixed']"):
        assert page.locator(selector).count() == 0, selector
    links = page.eval_on_selector_all("a:not(footer a)", "links => links.map(link => link.href)")  # as resolved; the footer is Gradio's
    assert [link for link in links if urlsplit(link).hostname not in (None, "127.0.0.1")] == [], links
    assert page.hosts <= {"127.0.0.1"}, page.hosts


def test_a_link_with_markup_in_its_model_shows_it_as_text(page, hostile_app):
    page.goto(hostile_app + "?model=" + quote(OVERLAY), wait_until="domcontentloaded")
    info = page.locator("#model-info")
    sync_api.expect(info).to_contain_text("could not be loaded")
    sync_api.expect(info).to_contain_text(OVERLAY[:40])  # the characters themselves, as text
    assert_no_injected_elements(page)


def test_a_hub_model_with_a_hostile_revision_and_card_shows_both_as_text(page, hostile_app):
    page.goto(f"{hostile_app}?model=mallory/card&revision={quote(BRANCH)}", wait_until="domcontentloaded")
    info = page.locator("#model-info")
    sync_api.expect(info).to_contain_text("80.5")  # the card's one well-formed metric
    sync_api.expect(info).to_contain_text(f"mallory/card@{BRANCH}")
    card_link = info.locator("a", has_text="model card")
    assert card_link.get_attribute("href").endswith("/mallory/card/tree/" + quote(BRANCH, safe=""))
    assert "m.png" not in info.inner_text()  # a metric name with markup is no metric
    assert_no_injected_elements(page)


def test_markup_typed_into_the_hub_box_comes_back_as_text(page, hostile_app):
    page.goto(hostile_app, wait_until="domcontentloaded")
    sync_api.expect(page.locator("#model-info")).to_contain_text("binarized-mnist")
    page.locator("#hub-loader").get_by_text("Load a model from the Hub").click()
    page.fill("#hub-repo textarea, #hub-repo input", f"<img src={EVIL}/t.png>/x")
    page.click("#hub-button")
    sync_api.expect(page.get_by_text("is not a Hub model id").first).to_be_visible()
    assert_no_injected_elements(page)
