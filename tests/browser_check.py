"""A report page loaded in headless Chromium (Debian's ``chromium``, the ``chromium`` fixture of conftest.py) with a
probe injected: what failed to load, what was fetched, what was logged; and screenshots."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

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


def assert_clean(found: dict, expected_images: int) -> None:
    assert found["images"] == expected_images
    assert found["broken"] == [], f"images that did not decode: {found['broken']}"
    assert found["errors"] == [], found["errors"]
    assert found["console"] == [], found["console"]
    assert all(w > 100 and h > 50 for w, h in found["sizes"])
