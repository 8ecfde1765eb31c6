"""report.html: self-contained, deterministic, and rendered by a real browser (Debian's
chromium-headless-shell, installed by scripts/setup.sh) with no console messages and a screenshot that
is not blank."""

import shutil
import subprocess

import numpy as np
import pytest

from lbc.driver import compile_model

CHROME = shutil.which("chromium-headless-shell")
need_chrome = pytest.mark.skipif(CHROME is None, reason="chromium-headless-shell not installed "
                                                       "(apt install chromium-headless-shell; make test does this)")


def png_pixels(path):
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int64)


def browse(html, png, size="1000,1500"):
    """Load a page in headless Chromium, screenshot it; returns the console lines it logged."""
    r = subprocess.run([CHROME, "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                        f"--window-size={size}", f"--screenshot={png}", html.resolve().as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and png.exists(), r.stderr[-2000:]
    return [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]


@pytest.fixture(scope="module")
def reports(tmp_path_factory, digits):
    tmp = tmp_path_factory.mktemp("html")
    out = {}
    for name, target in (("rv32ec", "rv32ec"), ("rv32ec_again", "rv32ec"), ("host", "host")):
        c = compile_model(digits["model"], tmp / name, target, "ternary", digits["calib_path"], build=False)
        out[name] = (c, tmp / name / "report.html")
    return out


def test_report_html_is_self_contained_and_deterministic(reports):
    c, path = reports["rv32ec"]
    text = path.read_text()
    assert path.read_bytes() == reports["rv32ec_again"][1].read_bytes()
    for bad in ("http:", "https:", "<link", "src=", "url(", "@import"):
        assert bad not in text
    assert text.count("<svg") >= 5  # bytes, cycles, RAM timeline, 3 weight histograms, SQNR
    assert "part's RAM: 2048 B" in text and "estimated instructions" in text
    for r in c.report["layers"]:
        assert f"<td>{r['sqnr_db']}</td>" in text
    assert "part's RAM" not in reports["host"][1].read_text()  # the host has no RAM limit


def test_model_names_are_escaped(tmp_path, digits):
    from lbc.frontends import load_model
    g = load_model(digits["model"])
    g.name = "<script>alert(1)</script>"
    compile_model(g, tmp_path / "o", "host", "ternary", digits["calib_path"], build=False)
    text = (tmp_path / "o" / "report.html").read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text


@need_chrome
def test_report_renders_in_headless_chromium(tmp_path, reports):
    # the check can fail: a page with a console error is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>x</p><script>console.error('broken'); nope();</script></body></html>")
    assert any("broken" in ln for ln in browse(bad, tmp_path / "bad.png", "400,300"))
    png = tmp_path / "report.png"
    assert browse(reports["rv32ec"][1], png) == []
    px = png_pixels(png)
    assert px.shape[:2] == (1500, 1000)
    assert px.std() > 20  # not blank: text, bars and boxes on white
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 50  # many colours: the charts rendered
