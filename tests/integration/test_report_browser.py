"""The HTML report in real headless Chromium: renders, no console errors, every plot loads.

Uses the Debian ``chromium`` binary only (no downloads): one plain run with Chromium's own
logging to catch console errors and CSP violations (and take the screenshot), and one run of
an instrumented copy whose inline script writes what it saw into the DOM (``--dump-dom``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import report
from tests import synthetic as report_synthetic
from tests.engines import skip_or_fail

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
XSS = "<script>alert(1)</script>"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
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
]
PROBE = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const result = {
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    scripts: document.scripts.length,
    xssText: document.body.textContent.includes(%s),
    sections: Array.from(document.querySelectorAll("section")).map(s => s.id),
  };
  const out = document.createElement("pre");
  out.id = "isobench-probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>
"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        skip_or_fail("headless Chromium not installed (apt-get install chromium)")
    frame = report_synthetic.synthetic_frame(4000)
    # An attacker-controlled scenario name must come out as text, not as markup.
    frame["scenario"] = frame["scenario"].replace({"syscall-rate": XSS}).astype("string")
    env = report_synthetic.synthetic_environment()
    env["scenarios"][XSS] = env["scenarios"].pop("syscall-rate")
    env["scenarios"][XSS]["definition"]["name"] = XSS
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(report.render_html(frame, [env]), encoding="utf-8")
    return path


def test_renders_without_console_errors_and_takes_screenshot(page: Path, tmp_path: Path) -> None:
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "report-browser.png"
    shot.unlink(missing_ok=True)
    done = _chromium(
        tmp_path,
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,2400",
        f"--screenshot={shot}",
        page.as_uri(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [
        line
        for line in done.stderr.splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "Content Security Policy" in line
    ]
    assert console == []
    assert shot.stat().st_size > 10_000


def test_every_plot_loads_and_untrusted_text_stays_text(page: Path, tmp_path: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html.replace("&lt;script", "")  # the report itself has no script
    # Instrumented copy: allow only our probe script, keep every other CSP rule.
    probed = html.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
    needle = json.dumps(XSS).replace("<", "\\u003c")  # "</script>" would end the probe
    probed = probed.replace("</body>", PROBE % needle + "</body>")
    copy = tmp_path / "probed.html"
    copy.write_text(probed, encoding="utf-8")
    done = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", copy.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="isobench-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["images"] >= 10
    assert result["broken"] == []
    assert result["scripts"] == 1  # only the probe: the XSS name did not become a script
    assert result["xssText"] is True
    assert {"headline", "failures", "served", "method"} <= set(result["sections"])
