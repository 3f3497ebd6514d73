"""The published site in real headless Chromium: every page renders with no console error,
every link resolves, every trend plot loads (Debian's chromium, no downloads)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.report import site
from tests import synthetic
from tests.engines import skip_or_fail
from tests.integration.test_report_browser import CHROMIUM, OUTPUT, _chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PROBE = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const out = document.createElement("pre");
  out.id = "isobench-probe";
  out.textContent = JSON.stringify({
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    links: Array.from(document.links).map(a => a.getAttribute("href")),
    glances: document.querySelectorAll("table.glance").length,
  });
  document.body.appendChild(out);
});
</script>
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        skip_or_fail("headless Chromium not installed (apt-get install chromium)")
    root = tmp_path_factory.mktemp("runs")
    synthetic.write_history(root, 4, 400, hosts=("ci-a", "ci-a", "ci-a", "ci-b"))
    out = tmp_path_factory.mktemp("site")
    site.build_site([root], out)
    return out


def _probe(page: Path, tmp_path: Path) -> dict[str, object]:
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html  # the site itself runs no script
    probed = html.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
    copy = page.with_name(f"probed-{page.name}")
    copy.write_text(probed.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", copy.as_uri())
    copy.unlink()
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="isobench-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:]
    result: dict[str, object] = json.loads(
        found.group(1).replace("&quot;", '"').replace("&amp;", "&")
    )
    return result


def test_every_page_renders_without_console_errors(built: Path, tmp_path: Path) -> None:
    OUTPUT.mkdir(exist_ok=True)
    pages = sorted(built.glob("*.html")) + sorted((built / "runs").glob("*.html"))
    assert len(pages) >= 8
    for page in pages:
        shot = OUTPUT / f"site-{page.parent.name}-{page.stem}.png"
        done = _chromium(
            tmp_path, "--enable-logging=stderr", "--v=0", "--window-size=1300,1600",
            f"--screenshot={shot}", page.as_uri(),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        console = [
            line for line in done.stderr.splitlines()
            if "CONSOLE" in line or "Uncaught" in line or "Content Security Policy" in line
        ]  # fmt: skip
        assert console == [], page
        assert shot.stat().st_size > 5_000


def test_links_resolve_and_plots_load(built: Path, tmp_path: Path) -> None:
    index = _probe(built / "index.html", tmp_path)
    assert index["glances"] == 2  # one at-a-glance figure per host
    links = [str(h) for h in index["links"]]  # type: ignore[attr-defined]
    assert any(h.startswith("runs/") for h in links)
    assert any(h.startswith("trend-") for h in links)
    for href in links:
        assert (built / href.split("#")[0]).is_file(), href
    trend = _probe(built / "trend-syscall.html", tmp_path)
    assert trend["images"] == 4  # two hosts x two syscall metrics
    assert trend["broken"] == []
