"""The web page in a real browser: headless Chromium (Debian's ``chromium``) loads ``/``, uploads the example MGF
(``examples/query.mgf``, its candidates imported) through the file input, and must show each spectrum's peaks and
its ranked candidates drawn by RDKit; a second upload with a broken spectrum must list it.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages ending in NUL
on file descriptors 3 and 4), so no driver or websocket package is needed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import live_server, server_env, serving_model

from models.featurize.mgf import Spectrum, read_spectra

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install -y chromium); the page is untested here"
)
TOP_K = 3
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class Chromium:
    """A headless Chromium and a minimal DevTools-protocol client over its debugging pipe."""

    def __init__(self, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes() -> None:  # in the child: fd 3 = commands in, fd 4 = answers out
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        args = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-extensions", "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, pass_fds=(3, 4), preexec_fn=wire_pipes, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session is not None and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)
        raise TimeoutError(method)

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its debugging pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(expression)

    def close(self) -> None:
        try:
            self.session = None
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture
def browser(tmp_path: Path):
    chromium = Chromium(tmp_path / "profile")
    try:
        target = chromium.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        chromium.session = chromium.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        chromium.send("Page.enable")
        # tall enough that every result card is near the viewport (the drawings load lazily)
        chromium.send("Emulation.setDeviceMetricsOverride", {"width": 1300, "height": 2400, "deviceScaleFactor": 1,
                                                              "mobile": False})  # fmt: skip
        yield chromium
    finally:
        chromium.close()


RESULTS_JS = """JSON.stringify({
  status: document.getElementById('status').textContent,
  cards: [...document.querySelectorAll('.spectrum-result')].map(card => ({
    index: Number(card.dataset.index),
    title: card.querySelector('h2').textContent,
    peaks: card.querySelectorAll('svg.peaks line.peak').length,
    candidates: [...card.querySelectorAll('tr.candidate')].map(row => ({
      smiles: row.querySelector('td.smiles').textContent,
      score: Number(row.querySelector('td.score').textContent),
      drawn: row.querySelector('img').complete && row.querySelector('img').naturalWidth > 0,
    })),
  })),
  rejected: [...document.querySelectorAll('#rejected-list li')].map(li => li.textContent),
})"""


def _api_answer_then_open_page(browser: Chromium, url: str, query: Path) -> dict[str, Any]:
    """The API's answer to ``query`` (what the page must show), then the page loaded with the service's status."""
    expected = httpx.post(
        f"{url}/v1/annotate", params={"top_k": TOP_K}, files={"file": ("q.mgf", query.read_bytes())}
    ).json()
    browser.send("Page.navigate", {"url": f"{url}/"})
    browser.wait_for("document.readyState === 'complete' && document.getElementById('service').textContent"
                     ".includes('molecules')")  # fmt: skip
    return expected


def _upload(browser: Chromium, path: Path) -> dict[str, Any]:
    """Choose ``path`` in the page's file input, press Annotate, wait for the answer and its drawings."""
    document = browser.send("DOM.getDocument")["root"]["nodeId"]
    file_input = browser.send("DOM.querySelector", {"nodeId": document, "selector": "#mgf"})["nodeId"]
    browser.send("DOM.setFileInputFiles", {"nodeId": file_input, "files": [str(path)]})
    return _press(browser, "submit")


def _press(browser: Chromium, button: str) -> dict[str, Any]:
    """Press the button with id ``button`` (top-k set to TOP_K), wait for the answer and its drawings."""
    browser.evaluate(f"document.getElementById('top-k').value = '{TOP_K}'")
    browser.evaluate(f"document.getElementById('{button}').click()")
    browser.wait_for("['done', 'error'].includes(document.getElementById('status').className)")
    # every structure drawing loaded (RDKit SVGs from /v1/depict)
    browser.wait_for("[...document.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)")
    return json.loads(browser.evaluate(RESULTS_JS))


def test_the_page_uploads_the_example_mgf_and_shows_spectra_and_structures(browser: Chromium, tmp_path: Path) -> None:
    query = EXAMPLES / "query.mgf"
    spectra = [s for s in read_spectra(query) if isinstance(s, Spectrum)]
    env = server_env(f"sqlite:///{tmp_path / 'web.sqlite'}", serving_model(tmp_path), tmp_path)
    with live_server(env, tmp_path) as server:
        for table in sorted((EXAMPLES / "candidates").glob("*.tsv")):
            httpx.post(
                f"{server.url}/v1/candidates", files={"file": (table.name, table.read_bytes())}
            ).raise_for_status()
        expected = _api_answer_then_open_page(browser, server.url, query)
        shown = _upload(browser, query)
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})

        broken = tmp_path / "broken.mgf"
        broken.write_bytes(query.read_bytes() + b"BEGIN IONS\nTITLE=broken one\nPEPMASS=300\n100 x\nEND IONS\n")
        with_rejection = _upload(browser, broken)
    png = base64.b64decode(shot["data"])
    Path(os.environ.get("MSVAE_SCREENSHOT", tmp_path / "page.png")).write_bytes(png)

    assert "annotated" in shown["status"], shown["status"]
    assert [c["index"] for c in shown["cards"]] == [s.index for s in spectra] and shown["rejected"] == []
    for card, spectrum, result in zip(shown["cards"], spectra, expected["results"], strict=True):
        assert card["title"] == spectrum.title
        assert card["peaks"] == spectrum.n_peaks  # one stick per peak line of the file
        assert [c["smiles"] for c in card["candidates"]] == [c["smiles"] for c in result["candidates"]]
        assert [c["score"] for c in card["candidates"]] == [round(c["score"], 2) for c in result["candidates"]]
        assert 1 <= len(card["candidates"]) <= TOP_K and all(c["drawn"] for c in card["candidates"])
    assert png.startswith(b"\x89PNG") and len(png) > 10_000

    assert len(with_rejection["cards"]) == len(spectra)
    assert len(with_rejection["rejected"]) == 1
    assert "broken one" in with_rejection["rejected"][0] and "line" in with_rejection["rejected"][0]


def test_a_fresh_service_answers_the_example_in_one_click_and_reads_mzml(browser: Chromium, tmp_path: Path) -> None:
    """A new database gets the default candidates: the page's example button shows real ranked structures for each
    example spectrum, and an mzML run of the same spectra uploads with its peaks drawn from the binary arrays."""
    import warnings

    from spectrum_files import NATIVE_ID, write_mzml

    query = EXAMPLES / "query.mgf"
    spectra = [s for s in read_spectra(query) if isinstance(s, Spectrum)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = write_mzml(tmp_path / "run.mzML", spectra)
    env = server_env(f"sqlite:///{tmp_path / 'web.sqlite'}", serving_model(tmp_path), tmp_path,
                     DEFAULT_CANDIDATES="true")  # fmt: skip
    with live_server(env, tmp_path) as server:
        assert (EXAMPLES / "query.mgf").read_bytes() == httpx.get(f"{server.url}/static/example.mgf").content
        expected = _api_answer_then_open_page(browser, server.url, query)
        service = browser.evaluate("document.getElementById('service').textContent")
        example = _press(browser, "example")
        from_mzml = _upload(browser, run)

    assert "4177 molecules" in service
    assert [c["title"] for c in example["cards"]] == [s.title for s in spectra] and example["rejected"] == []
    for card, result in zip(example["cards"], expected["results"], strict=True):
        assert len(card["candidates"]) >= 1 and all(c["drawn"] for c in card["candidates"])
        assert [c["smiles"] for c in card["candidates"]] == [c["smiles"] for c in result["candidates"]]

    assert [c["title"] for c in from_mzml["cards"]] == [NATIVE_ID.format(k) for k in range(2, len(spectra) + 2)]
    for card, spectrum, mgf_card in zip(from_mzml["cards"], spectra, example["cards"], strict=True):
        assert card["peaks"] == spectrum.n_peaks  # decoded from the zlib-compressed base64 arrays
        assert [c["smiles"] for c in card["candidates"]] == [c["smiles"] for c in mgf_card["candidates"]]
    (rejection,) = from_mzml["rejected"]
    assert NATIVE_ID.format(len(spectra) + 2) in rejection and "without a precursor" in rejection
