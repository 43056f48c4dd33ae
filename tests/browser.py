"""Headless Chromium for the tests (and the docs' screenshots): a page's DOM after its scripts
ran, its console errors, and a screenshot, with no network, no GPU and a fresh profile.

``python -m tests.browser PAGE.html SHOT.png`` takes a screenshot of a page."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",  # let the page's scripts run to their end before the dump
)


def find() -> str | None:
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(page: Path, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    browser = find()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH")
    with tempfile.TemporaryDirectory(prefix="pf-chromium-") as profile:
        return subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def dump_dom(page: Path) -> tuple[str, str]:
    """The page's DOM after its scripts ran, and the browser's log (console errors included)."""
    done = _run(page, "--enable-logging=stderr", "--v=0", "--dump-dom")
    return done.stdout, done.stderr


def screenshot(page: Path, out: Path, width: int = 1280, height: int = 1500) -> Path:
    done = _run(page, f"--window-size={width},{height}", f"--screenshot={out.resolve()}")
    if not out.is_file():
        raise RuntimeError(f"chromium wrote no screenshot: {done.stderr[-2000:]}")
    return out


if __name__ == "__main__":
    print(screenshot(Path(sys.argv[1]), Path(sys.argv[2])))
