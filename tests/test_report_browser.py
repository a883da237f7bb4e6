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
import subprocess
from pathlib import Path

import pytest
from test_report import shared_tuning_report

pytestmark = pytest.mark.browser

#: Runs before anything else on the page: records errors, blocked requests and console.error calls, and
#: after "load" writes what it found into a <pre id="aerotune-check"> that --dump-dom prints.
PROBE = """<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; \
style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  __errors.push("error: " + (e.message || (e.target && (e.target.src || e.target.href)) || "?").slice(0, 200));
}, true);
document.addEventListener("securitypolicyviolation", function (e) { __errors.push("blocked: " + e.blockedURI); });
var __consoleError = console.error;
console.error = function () { __errors.push("console.error: " + Array.from(arguments).join(" ")); };
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  var out = {images: imgs.length, title: document.title,
             broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) {
               return i.alt; }),
             sizes: imgs.map(function (i) { return [i.naturalWidth, i.naturalHeight]; }),
             height: document.documentElement.scrollHeight, errors: __errors};
  var pre = document.createElement("pre");
  pre.id = "aerotune-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--disable-extensions",
    "--mute-audio",
]


@pytest.fixture(scope="session")
def tuning_report(tiny_cache, tmp_path_factory):
    return shared_tuning_report(tiny_cache, tmp_path_factory)[1]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed by ``scripts/system-deps.sh`` (``make test`` runs it), never by a test."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "Debian's chromium is not installed; run `make system-deps` as root (or: sudo apt-get install chromium)"
    )


def _run(chromium: str, args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


def check_in_browser(chromium: str, html: Path, tmp: Path) -> dict:
    """Load a copy of ``html`` with the probe injected; return what the probe found."""
    page = html.read_text(encoding="utf-8")
    assert "<head>" in page
    probe = tmp / "probe.html"
    probe.write_text(page.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
    done = _run(
        chromium,
        ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        tmp / "profile",
    )
    marker = '<pre id="aerotune-check">'
    assert marker in done.stdout, f"chromium did not load the page (exit {done.returncode}): {done.stderr[-2000:]}"
    found = json.loads(
        done.stdout.split(marker, 1)[1]
        .split("</pre>", 1)[0]
        .replace("&quot;", '"')
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
    )
    found["console"] = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return found


def screenshot(chromium: str, html: Path, png: Path, *, height: int) -> Path:
    done = _run(
        chromium,
        [f"--screenshot={png}", f"--window-size=1280,{height}", "--virtual-time-budget=10000", html.as_uri()],
        png.parent / "profile-shot",
    )
    assert png.is_file(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    return png


def _assert_clean(found: dict, expected_images: int) -> None:
    assert found["images"] == expected_images
    assert found["broken"] == [], f"images that did not decode: {found['broken']}"
    assert found["errors"] == [], found["errors"]
    assert found["console"] == [], found["console"]
    assert all(w > 100 and h > 50 for w, h in found["sizes"])


def test_report_renders_in_chromium(chromium, tuning_report, tmp_path):
    from PIL import Image

    found = check_in_browser(chromium, tuning_report.html, tmp_path)
    _assert_clean(found, len(tuning_report.data["figures"]))
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
        _assert_clean(check_in_browser(chromium, html, work), len(figures))
        png = screenshot(chromium, html, work / "report-screenshot.png", height=2000)
        target = os.environ.get("AEROTUNE_SCREENSHOT_DIR")
        if target and index == 0:  # the first given report makes the README's screenshot
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(png, Path(target) / "report-screenshot.png")
