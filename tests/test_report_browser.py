"""The HTML report opened in a real browser (headless Chromium): every plot loads and is drawn on the page.

One report of the demo (eval on 8 samples), two Chromium runs: --dump-dom of a copy of the page with a probe script
(each <img>'s decoded size and place on the page), then --screenshot of the whole page at that size, whose plot
regions must not be blank.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qverify.cli import main
from tools import require

WIDTH = 1280  # px: the window both runs use, so the probe's rectangles are the screenshot's
PROBE = """<script>
window.addEventListener("load", () => {
  for (const im of document.images) {
    const r = im.getBoundingClientRect();
    im.dataset.probe = [im.complete, im.naturalWidth, im.naturalHeight,
                        r.left + scrollX, r.top + scrollY, r.width, r.height].join(",");
  }
  document.body.dataset.height = document.documentElement.scrollHeight;
});
</script>"""


def _chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start; the page is our own local file
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The demo's eval report (8 samples) and the PNG files it wrote."""
    dest = tmp_path_factory.mktemp("browser") / "report"
    assert main(["eval", "--samples", "8", "--html", str(dest)]) == 0
    return dest


def test_report_loads_and_shows_every_plot_in_chromium(report, tmp_path):
    """Every <img> is a relative file of the report that the browser decoded at its own size; in a screenshot of
    the whole page each plot's region holds a drawing (not blank, not a broken-image icon)."""
    import matplotlib.image as mpimg

    (chromium,) = require("chromium")
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert {"sqnr.png", "errors.png", "ranges.png", "scores.png", "pair.png", "footprint.png"} <= set(pngs)

    page = (report / "index.html").read_text(encoding="utf-8")
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(srcs) == pngs  # every plot on the page, each once, as a file next to it
    assert all("/" not in s and ":" not in s and (report / s).is_file() for s in srcs)
    probe = report / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        dom = _chromium(chromium, tmp_path / "profile", f"--window-size={WIDTH},1000", "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    assert dom.returncode == 0 and "qverify eval" in dom.stdout, dom.stderr[-2000:]
    found = re.findall(r'<img src="([^"]+)"[^>]*data-probe="([^"]+)"', dom.stdout)
    assert sorted(s for s, _ in found) == pngs, dom.stdout[:2000]
    rects = {}
    for src, values in found:
        complete, nat_w, nat_h, *rect = values.split(",")
        shape = mpimg.imread(report / src).shape  # the PNG's own size: the browser decoded the whole file
        assert complete == "true" and (int(nat_h), int(nat_w)) == shape[:2], (src, values, shape)
        rects[src] = [float(v) for v in rect]
    height = int(re.search(r'data-height="(\d+)"', dom.stdout).group(1))

    shot = tmp_path / "page.png"
    r = _chromium(
        chromium,
        tmp_path / "profile",
        f"--window-size={WIDTH},{height}",
        f"--screenshot={shot}",
        (report / "index.html").as_uri(),
    )
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (height, WIDTH)
    gray = pixels.mean(axis=2)
    for src, (left, top, w, h) in rects.items():
        assert w > 100 and h > 100 and left + w <= WIDTH + 1 and top + h <= height + 1, (src, left, top, w, h)
        region = gray[int(top) + 2 : int(top + h) - 2, int(left) + 2 : int(left + w) - 2]  # inside the border
        inked = float((region < 0.9).mean())  # share of pixels with something drawn on them
        assert region.std() > 0.05 and inked > 0.01, (src, float(region.std()), inked)
    colors = {tuple(np.round(p, 1)) for p in pixels[::7, ::7].reshape(-1, 3)}
    assert len(colors) > 20  # the plots' colours, not a page of text alone
