"""Headless Chromium for the tests that look at pages as a person would (reports, the visualiser)."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

INSTALL_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-browser.sh"


def find_chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def require_chromium() -> str:
    """The Chromium binary; the test skips, saying how to install it, when there is none (the tests never
    install it: `make browser` does, and `make test` runs it first)."""
    found = find_chromium()
    if not found:
        pytest.skip(f"headless Chromium is not installed (looked for $CHROMIUM, chromium, chromium-browser, "
                    f"google-chrome): run `make browser` (scripts/{INSTALL_SCRIPT.name}); "
                    "pages were not checked in a browser")
    return found


def chromium_args(binary: str, profile: Path, size: str = "1280,2400") -> list[str]:
    # the flags keep Chromium off the (closed) network and out of first-run dialogs
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--window-size={size}"]


def browse(binary: str, url: str, work: Path, size: str = "1280,2400", budget_ms: int | None = None) -> tuple[str, Path]:
    """(the DOM after load, a screenshot) of ``url`` in headless Chromium.

    ``budget_ms``: virtual time to let the page's scripts run (pages that fetch and render data).
    """
    work.mkdir(parents=True, exist_ok=True)
    extra = [f"--virtual-time-budget={budget_ms}"] if budget_ms else []
    dom = subprocess.run(chromium_args(binary, work / "profile-dom", size) + extra + ["--dump-dom", url],
                         capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    png = work / "screenshot.png"
    shot = subprocess.run(chromium_args(binary, work / "profile-shot", size) + extra + [f"--screenshot={png}", url],
                          capture_output=True, text=True, timeout=180)
    assert shot.returncode == 0, shot.stderr[-2000:]
    return dom.stdout, png


def png_rows(path: Path) -> tuple[int, int, set[bytes]]:
    """(width, height, the distinct filtered scanlines) of a PNG: a blank page has one or two."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", chunk[:10])
        elif kind == b"IDAT":
            idat.append(chunk)
        pos += 12 + length
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    stride = 1 + width * channels * depth // 8
    raw = zlib.decompress(b"".join(idat))
    return width, height, {raw[k:k + stride] for k in range(0, len(raw), stride)}
