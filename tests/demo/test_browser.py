"""End to end in a real browser: headless Debian Chromium driven by Playwright.

Uploads a clip, sets two support labels (one with the sliders, one with a click on the valence-arousal
circle), presses Label, waits for the plot, downloads the CSV and checks it, and saves a screenshot:
to docs/images/demo.png when MTCLAR_UPDATE_SCREENSHOT=1 (see docs/DEMO.md), else to the test's tmp folder.
"""

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "docs" / "images" / "demo.png"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the sandbox cannot start as root (CI containers)
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


def chromium_path() -> str:
    for candidate in (os.environ.get("MTCLAR_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("Chromium is not installed and `make browser` could not install it (apt-get install chromium)")


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile every run
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def set_slider(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def cell(page, row: int, column: int):
    """A body cell of the support table (Gradio 6 renders a virtual grid with these test ids)."""
    return page.locator(f"#support [data-testid='cell-{row}-{column}']")


@pytest.mark.browser
def test_label_a_video_in_the_browser(server, page, tmp_path):
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server.blocks.local_url)

    # Upload: a copy of the app's SynthAffect example, so the plot also shows the true labels.
    clip = tmp_path / "synthaffect_clip.mp4"
    shutil.copy(server.examples[0].path, clip)
    page.locator("#crops input[type=checkbox]").check()
    page.locator("#video input[type=file]").set_input_files(str(clip))
    # The status names the clip once it is encoded (the progress overlay also counts "n/60 frames").
    page.locator("#status").get_by_text(re.compile(r"synthaffect_clip\.mp4: 60 frames, 2\.4 s")).wait_for()

    # Support frame 1: move the frame browser, set valence and arousal with the sliders.
    set_slider(page, "frame", 5)
    set_slider(page, "valence", 0.6)
    set_slider(page, "arousal", -0.3)
    page.locator("#set-label").click()
    cell(page, 0, 1).get_by_text("0.6", exact=True).wait_for()
    assert cell(page, 0, 0).inner_text().strip() == "5" and cell(page, 0, 2).inner_text().strip() == "-0.3"

    # Support frame 2: a click on the valence-arousal circle sets both sliders.
    set_slider(page, "frame", 40)
    circle = page.locator("#va-circle img")
    box = circle.bounding_box()
    circle.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.5})
    page.wait_for_function("document.querySelector('#valence input[type=number]').value < -0.3")
    page.locator("#set-label").click()
    cell(page, 1, 0).get_by_text("40", exact=True).wait_for()

    page.locator("#label").click()
    page.locator("#timeline img").wait_for()
    page.locator("#scatter img").wait_for()
    page.locator("#summary").get_by_text("support frames").wait_for()
    assert "2 support frames" in page.locator("#summary").inner_text()

    with page.expect_download() as download_info:
        page.locator("#csv a[download]").first.click()
    csv_path = tmp_path / "downloaded.csv"
    download_info.value.save_as(csv_path)
    results = pd.read_csv(csv_path)
    assert len(results) == 60
    assert results.loc[results["is_support"], "frame"].tolist() == [5, 40]
    assert results.loc[5, ["valence", "arousal"]].tolist() == [0.6, -0.3]
    assert results.loc[40, "valence"] < -0.3
    assert results["valence"].notna().all()

    page.locator("#timeline").scroll_into_view_if_needed()
    shot = SCREENSHOT if os.environ.get("MTCLAR_UPDATE_SCREENSHOT") == "1" else tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # Offline: the page talked to our own server only.
    outside = [url for url in requests if not url.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert not outside, outside


@pytest.mark.browser
def test_hevc_upload_partial_labels_banner_and_reload(server, page, upload_clip, tmp_path):
    """A phone-style HEVC .mov plays through its VP9 preview; suggested frames left unlabelled are skipped with
    a note; a synthetic-only model shows its banner; a reload and a new upload bring the support labels back."""
    from mtclar_hf.labeling.video import iter_frames, write_video

    hevc = write_video((f.image for f in iter_frames(upload_clip)), tmp_path / "phone.mov", codec="libx265", fps=25)
    model, _ = server.models.load(None)
    model.config.provenance = {"dataset": "SynthAffect", "synthetic": True}
    try:
        page.goto(server.blocks.local_url)
        page.locator("#crops input[type=checkbox]").check()
        page.locator("#video input[type=file]").set_input_files(str(hevc))
        page.locator("#status").get_by_text(re.compile(r"phone\.mov: 48 frames")).wait_for()
        page.locator("#banner").get_by_text("real faces will not be labelled meaningfully").wait_for()
        page.wait_for_function("(document.querySelector('#playable video') || {}).videoWidth > 0")

        page.locator("#suggest").click()
        cell(page, 2, 0).wait_for()
        suggested = [int(cell(page, row, 0).inner_text()) for row in range(3)]
        set_slider(page, "frame", suggested[1])
        set_slider(page, "valence", 0.6)
        set_slider(page, "arousal", -0.3)
        page.locator("#set-label").click()
        cell(page, 1, 1).get_by_text("0.6", exact=True).wait_for()
        page.locator("#label").click()
        skipped = f"Frames {suggested[0]}, {suggested[2]} have no labels yet: skipped."
        page.locator("#message").get_by_text(skipped).wait_for()
        assert "1 support frames" in page.locator("#summary").inner_text()

        page.reload()
        page.locator("#crops input[type=checkbox]").check()
        page.locator("#video input[type=file]").set_input_files(str(hevc))
        page.locator("#status").get_by_text("restored from your earlier work").wait_for()
        cell(page, 1, 1).get_by_text("0.6", exact=True).wait_for()
        assert int(cell(page, 1, 0).inner_text()) == suggested[1]
    finally:
        model.config.provenance = None
