"""The explorers as a person uses them: JupyterLab on loopback, notebooks/explore.ipynb in
headless Chromium (Debian's ``chromium``, driven by Playwright), Run All, one slider moved.

The server (random free port, random token, a scratch root holding a copy of the notebook so
the repository's file is never saved over) is started and stopped by the test; every wait
has a deadline. Screenshots of the three explorers go to ``$FAIRSCHED_SCREENSHOTS`` if set
(else the test's tmp dir). Without Chromium or Playwright the test is skipped locally and
fails in CI (``CI`` set), where ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXPLORERS = ("Fairness explorer", "Hotspot explorer", "Cost explorer")


def _need(ok: bool, why: str):
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (.ci/run installs it)")
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, deadline: float, proc, log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer {url}: {log.read_text()[-3000:]}")


@pytest.fixture
def lab(tmp_path):
    """(base url, token, log path) of a JupyterLab serving a copy of explore.ipynb."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "explore.ipynb", root / "explore.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    log = tmp_path / "lab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", "--allow-root",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={tmp_path / 'ws'}",
           f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", time.monotonic() + 90, proc, log)
        yield f"http://127.0.0.1:{port}", token, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_explore_notebook_in_chromium(lab, tmp_path):
    _need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}")
    try:
        import playwright.sync_api as sync_api
    except ImportError:
        _need(False, "playwright is not installed")
    base, token, log = lab
    shots = Path(os.environ.get("FAIRSCHED_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page_errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.set_default_timeout(60_000)
            try:
                before, after, n_stderr, text = _drive(page, base, token, shots)
            except Exception:
                page.screenshot(path=str(shots / "failure.png"), full_page=True)
                raise
        finally:
            browser.close()
    assert not page_errors, page_errors
    assert after != before and "bound" in after
    assert n_stderr == 0, text[-2000:]
    for bad in ("Traceback", "Error displaying widget", "cannot compute", "Failed to load model"):
        assert bad not in text, f"{bad!r} in the page; server log: {log.read_text()[-2000:]}"


def _drive(page, base: str, token: str, shots: Path):
    """Open, run all, screenshot the explorers, move the Q^u slider, switch to seconds
    service; returns the fairness
    figure's title before and after, the number of stderr outputs and the notebook's text."""
    page.goto(f"{base}/lab/tree/explore.ipynb?token={token}")
    page.locator(".jp-NotebookPanel").first.wait_for()
    select = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
    try:  # JupyterLab may ask which kernel to start
        select.wait_for(timeout=15_000)
        select.click()
    except Exception:  # noqa: BLE001 - no dialog: the kernel starts by itself
        pass
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    news = page.locator(".jp-toast-button", has_text="No")
    if news.count():  # "get notified about Jupyter news?": no (it would cover the screenshots)
        news.first.click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    boxes = [page.locator(".widget-vbox", has_text=name).last for name in EXPLORERS]
    deadline = time.monotonic() + 300
    for box in boxes:  # in order: each appears when its cell ran
        box.wait_for(timeout=max(1.0, deadline - time.monotonic()) * 1000)
        box.scroll_into_view_if_needed()
        box.locator(".js-plotly-plot .gtitle").first.wait_for(timeout=60_000)
    page.set_viewport_size({"width": 1400, "height": 1900})  # room for a whole explorer per picture
    for name, box in zip(EXPLORERS, boxes, strict=True):
        box.scroll_into_view_if_needed()
        time.sleep(1.0)  # let plotly finish drawing before the picture
        box.screenshot(path=str(shots / f"{name.split()[0].lower()}_explorer.png"))
    title = boxes[0].locator(".js-plotly-plot .gtitle").first
    before = title.text_content()
    assert "bound" in before, before
    # move the Q^u slider of the fairness explorer by two steps with the keyboard
    handle = boxes[0].locator(".widget-slider", has_text="Qᵘ").locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    handle.press("ArrowRight")
    handle.press("ArrowRight")
    t_end = time.monotonic() + 60
    while (after := title.text_content()) == before and time.monotonic() < t_end:
        time.sleep(0.25)
    boxes[0].screenshot(path=str(shots / "fairness_explorer_after_slider.png"))
    # service in predicted seconds: the bound, the gap and the units change
    boxes[0].get_by_role("button", name="seconds", exact=True).click()
    t_end = time.monotonic() + 60
    while "seconds" not in (secs := title.text_content()) and time.monotonic() < t_end:
        time.sleep(0.25)
    assert "seconds" in secs and secs.endswith(" s"), secs
    boxes[0].screenshot(path=str(shots / "fairness_explorer_seconds.png"))
    n_stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count()
    text = page.locator(".jp-Notebook").inner_text()
    return before, after, n_stderr, text
