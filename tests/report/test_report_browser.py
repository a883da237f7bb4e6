"""The report opened in a real headless Chromium (Debian's ``chromium`` package).

Checks that the page loads offline, every image decodes, nothing is fetched from outside the file and
nothing is logged as an error, then saves a screenshot. ``AEROTUNE_SCREENSHOT_DIR=DIR`` also copies the
screenshot to ``DIR/report-screenshot.png``; ``AEROTUNE_BROWSER_REPORTS=a/report.html:b/report.html`` checks
those reports too (for reports of real runs, such as a Dubai one).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from browser_check import assert_clean, check_in_browser, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_report_renders_in_chromium(chromium, tuning_report, tmp_path):
    from PIL import Image

    found = check_in_browser(chromium, tuning_report.html, tmp_path)
    assert_clean(found, len(tuning_report.data["figures"]))
    assert found["title"] == tuning_report.data["title"]

    png = screenshot(chromium, tuning_report.html, tmp_path / "report-screenshot.png", height=2000)
    with Image.open(png) as im:
        assert im.size == (1280, 2000)
        colours = im.convert("RGB").resize((64, 100)).getcolors(64 * 100)
        assert colours is not None and len(colours) > 20  # not a blank page
    target = os.environ.get("AEROTUNE_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(target) / "report-screenshot.png")


def test_given_reports_render_in_chromium(chromium, tmp_path):
    """Reports named in AEROTUNE_BROWSER_REPORTS (for example one of a Dubai run) load cleanly too."""
    given = [Path(p) for p in os.environ.get("AEROTUNE_BROWSER_REPORTS", "").split(os.pathsep) if p]
    if not given:
        pytest.skip("set AEROTUNE_BROWSER_REPORTS=path/report.html[:...] to check reports of real runs")
    for index, html in enumerate(given):
        work = tmp_path / str(index)
        work.mkdir()
        figures = json.loads((html.parent / "report.json").read_text())["figures"]
        assert_clean(check_in_browser(chromium, html, work), len(figures))
        png = screenshot(chromium, html, work / "report-screenshot.png", height=2000)
        target = os.environ.get("AEROTUNE_SCREENSHOT_DIR")
        if target and index == 0:  # the first given report makes the README's screenshot
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(png, Path(target) / "report-screenshot.png")
