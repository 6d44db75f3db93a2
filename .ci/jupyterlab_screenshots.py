"""Open every notebook in a real JupyterLab in headless Chromium: save a screenshot of each to
figures/jupyterlab/, and fail if MathJax typeset anything inline (the placeholder "$" read as math); the only math
the notebooks mean is display math (\begin{equation*} ... \end{equation*}, so that no "$" pair appears at all).

    python .ci/jupyterlab_screenshots.py            # needs `chromium` (Debian: apt-get install chromium)

Not part of `make test` (it needs a browser); run it after `make reproduce`, and commit the screenshots.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {  # every cell rendered (no windowing), no news pop-up over the screenshot
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium(*args: str) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    out = subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                         capture_output=True, text=True, timeout=180)
    return out.stdout


def inline_math(dom: str) -> list[str]:
    """Text around every inline MathJax container (display math carries display="true")."""
    found = []
    for m in re.finditer(r"<mjx-container([^>]*)>", dom):
        if 'display="true"' not in m.group(1):
            found.append(re.sub(r"<[^>]+>", " ", dom[max(0, m.start() - 300):m.start()])[-120:])
    return found


def main() -> int:
    stems = [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    out_dir = ROOT / "figures" / "jupyterlab"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for rel, value in SETTINGS.items():
            path = Path(tmp, "settings", rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": f"{tmp}/settings", "JUPYTERLAB_WORKSPACES_DIR": f"{tmp}/ws"}
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
                                   "--ServerApp.token=", "--ServerApp.password=", "--allow-root",
                                   f"--ServerApp.root_dir={ROOT}"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(60):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=2)
                    break
                except OSError:
                    time.sleep(1)
            bad = {}
            for i, stem in enumerate(stems):
                url = f"http://127.0.0.1:{port}/lab/workspaces/shot{i}/tree/notebooks/{stem}.ipynb?reset"
                chromium("--window-size=1280,2000", "--virtual-time-budget=25000",
                         f"--screenshot={out_dir / (stem + '.png')}", url)
                dom = chromium("--window-size=1280,2000", "--virtual-time-budget=25000", "--dump-dom", url)
                if "jp-Notebook" not in dom:
                    bad[stem] = ["the notebook did not render"]
                elif inline_math(dom):
                    bad[stem] = inline_math(dom)
                print(f"{stem}: {'ok' if stem not in bad else 'TYPESET: ' + ' | '.join(bad[stem])}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
