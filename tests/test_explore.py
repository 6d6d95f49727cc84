"""The explorer: its JSON endpoints over real HTTP, its answers to bad requests, and the page in headless Chromium."""

import base64
import json
import select
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from jaxae import pretrained
from jaxae.errors import InputError
from jaxae.explore import INTERPOLATIONS, PLANES, LatentSpaces, running
from jaxae.explore.spaces import to_uint8


@pytest.fixture(scope="module")
def spaces():
    return LatentSpaces()


@pytest.fixture(scope="module")
def url(spaces):
    with running(spaces) as address:
        yield address


def get(url, path, method="GET"):
    """``(status, JSON body)`` of a request."""
    request = urllib.request.Request(url + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body else None


def pixels(image):
    return np.frombuffer(base64.b64decode(image["pixels"]), np.uint8).reshape(image["shape"])


def expected_decode(name, z):
    """What ``model.apply(..., method="decode")`` gives for the point ``z``, as the page shows it."""
    model = pretrained.model(name)
    decoded = model.apply({"params": pretrained.load(name)}, np.asarray([z], np.float32), method="decode")
    return to_uint8(decoded[0], (0.0, 1.0))


def test_the_catalogue_lists_both_planes_and_the_interpolation_models(url):
    status, catalogue = get(url, "/api/catalogue")
    assert status == 200
    assert [entry["name"] for entry in catalogue["planes"]] == list(PLANES)
    assert [entry["name"] for entry in catalogue["interpolations"]] == list(INTERPOLATIONS)
    assert [entry["variational"] for entry in catalogue["planes"]] == [False, True]
    assert {entry["dataset"] for entry in catalogue["interpolations"]} == {"mnist", "cifar10"}
    assert catalogue["class_names"] == [str(d) for d in range(10)]


def test_a_plane_holds_every_shipped_test_code_and_frames_them(url):
    status, plane = get(url, "/api/plane?model=E3")
    assert status == 200
    codes = np.asarray(plane["codes"])
    shipped, labels = pretrained.test_codes("E3")
    np.testing.assert_allclose(codes, shipped, atol=1e-4)
    assert plane["labels"] == labels.tolist()
    x_low, y_low, x_high, y_high = plane["bounds"]
    inside = (codes[:, 0] >= x_low) & (codes[:, 0] <= x_high) & (codes[:, 1] >= y_low) & (codes[:, 1] <= y_high)
    assert inside.mean() >= 0.99


@pytest.mark.parametrize("name", PLANES)
def test_a_decoded_point_is_the_models_decode(url, name):
    status, answer = get(url, f"/api/decode?model={name}&z=0.5,-1.25")
    assert status == 200 and answer["z"] == [0.5, -1.25]
    np.testing.assert_array_equal(pixels(answer["image"]), expected_decode(name, (0.5, -1.25)))


def test_interpolation_blends_pixels_and_codes(url, spaces):
    images, _ = spaces.images("cifar10")
    status, start = get(url, "/api/interpolate?model=E2&a=3&b=7&alpha=0")
    assert status == 200
    np.testing.assert_array_equal(pixels(start["pixel"]), images[3])
    np.testing.assert_array_equal(pixels(start["latent"]), pixels(start["a"]))
    _, end = get(url, "/api/interpolate?model=E2&a=3&b=7&alpha=1")
    np.testing.assert_array_equal(pixels(end["pixel"]), images[7])
    np.testing.assert_array_equal(pixels(end["latent"]), pixels(end["b"]))
    _, middle = get(url, "/api/interpolate?model=E4/ae2&a=0&b=1&alpha=0.5")
    assert pixels(middle["latent"]).shape == (28, 28, 1)
    assert not np.array_equal(pixels(middle["latent"]), pixels(middle["a"]))


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/api/decode?model=E3", 400, "missing query parameter 'z'"),
    ("/api/decode?model=E3&z=1", 400, "z must be two numbers"),
    ("/api/decode?model=E3&z=nan,0", 400, "z must be two finite numbers"),
    ("/api/decode?model=E3&z=1e9,0", 400, "within ±1000"),
    ("/api/decode?model=E3&model=E3-VAE&z=0,0", 400, "given 2 times"),
    ("/api/decode?model=E2&z=0,0", 400, "unknown model 'E2'; choose from E3, E3-VAE"),
    ("/api/plane?model=../../etc/passwd", 400, "unknown model"),
    ("/api/interpolate?model=E2&a=0&b=5000&alpha=0.5", 400, "b must be an image index in [0, 200)"),
    ("/api/interpolate?model=E2&a=x&b=1&alpha=0.5", 400, "a must be an integer"),
    ("/api/interpolate?model=E2&a=0&b=1&alpha=1.5", 400, "alpha must lie in [0, 1]"),
    ("/api/interpolate?model=E2&a=0&b=1&alpha=inf", 400, "alpha must be finite"),
    ("/api/images?dataset=svhn", 400, "unknown dataset 'svhn'"),
    ("/../jaxae/pretrained/manifest.json", 404, "no such page"),
    ("/api/nothing", 404, "no such page"),
])
def test_bad_requests_get_a_4xx_with_one_line_and_the_server_goes_on(url, path, status, message):
    answer_status, answer = get(url, path)
    assert answer_status == status
    assert message in answer["error"] and "\n" not in answer["error"]
    assert get(url, "/api/decode?model=E3&z=0,0")[0] == 200


def test_a_bug_answers_500_prints_its_traceback_and_the_server_goes_on(url, spaces, monkeypatch, capsys):
    def broken(name):
        raise RuntimeError("a bug in plane")

    monkeypatch.setattr(spaces, "plane", broken)
    status, answer = get(url, "/api/plane?model=E3")
    assert status == 500 and answer == {"error": "internal error; its traceback is on the server's console"}
    assert "RuntimeError: a bug in plane" in capsys.readouterr().err
    assert get(url, "/api/decode?model=E3&z=0,0")[0] == 200


def test_requests_for_another_host_are_refused(url):
    port = url.rsplit(":", 1)[1]
    for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1:1"):
        request = urllib.request.Request(url + "/api/catalogue", headers={"Host": host})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 403
    assert get(url.replace("127.0.0.1", "localhost"), "/api/catalogue")[0] == 200


def test_only_get_is_answered(url):
    assert get(url, "/api/decode?model=E3&z=0,0", method="POST")[0] == 405
    assert get(url, "/", method="DELETE")[0] == 405


def test_the_explorer_shows_a_data_dirs_test_set_and_a_work_dirs_runs(data_dir, tmp_path):
    from jaxae import cli

    cli.main(["reproduce", "E3", "--quick", "--workdir", str(tmp_path), "--data-dir", str(data_dir), "--seeds", "7"])
    spaces = LatentSpaces(workdir=tmp_path, data_dir=str(data_dir))
    assert list(spaces.spaces) == ["E3"]
    assert spaces.spaces["E3"].source.endswith("E3/jax/seed7/autoencoder (--quick)")
    codes, labels = spaces.codes["E3"]
    assert codes.shape == (100, 2) and len(labels) == 100
    assert spaces.catalogue()["images_source"] == f"TFDS data dir {data_dir}"
    with pytest.raises(InputError, match="holds no finished jaxae run"):
        LatentSpaces(workdir=tmp_path / "E3")


def test_the_command_answers_bad_options_in_one_line(tmp_path):
    def explore(*args):
        return subprocess.run([sys.executable, "-m", "jaxae", "explore", "--no-browser", *args],
                              check=False, capture_output=True, text=True, timeout=120)

    result = explore("--port", "70000")
    assert result.returncode == 2 and "expected a port number in [0, 65535]" in result.stderr
    result = explore("--workdir", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"jaxae: error: --workdir {tmp_path / 'missing'}: no such folder"]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_command_stops_on_sigint_or_sigterm_even_started_with_sigint_ignored(stop):
    """As a non-interactive shell starts a background job: SIGINT ignored from the start."""
    command = 'trap "" INT; exec "$0" -m jaxae explore --port 0 --no-browser'
    explorer = subprocess.Popen(["bash", "-c", command, sys.executable], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([explorer.stdout], [], [], 120)
        assert ready and "serving http://127.0.0.1:" in explorer.stdout.readline()
        explorer.send_signal(stop)
        assert explorer.wait(timeout=60) == 0 and explorer.stdout.read().strip() == "jaxae explore: stopped"
    finally:
        if explorer.poll() is None:
            explorer.kill()
            explorer.wait()


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_in_chromium_the_pointer_on_e3s_plane_decodes_the_point_under_it(url):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1400"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        browser.get(url + "/")
        WebDriverWait(browser, 60).until(
            lambda b: b.execute_script("return document.body.dataset.ready === 'true'")
            or b.find_element(By.ID, "status").is_displayed()
        )
        assert not browser.find_element(By.ID, "status").is_displayed(), browser.find_element(By.ID, "status").text
        overlay = browser.find_element(By.CSS_SELECTOR, "#plane-E3 .overlay")
        decoded = browser.find_element(By.ID, "decoded-E3")

        def point_at(dx, dy):
            """Moves the pointer to (dx, dy) from the plane's centre; the decoded point and the canvas's pixels."""
            before = decoded.get_attribute("data-z")
            webdriver.ActionChains(browser).move_to_element_with_offset(overlay, dx, dy).perform()
            WebDriverWait(browser, 30).until(
                lambda _: decoded.get_attribute("data-z") != before and decoded.get_attribute("data-state") == "idle"
            )
            rgba = browser.execute_script(
                "const c = arguments[0];"
                "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);", decoded)
            z = [float(v) for v in decoded.get_attribute("data-z").split(",")]
            return z, np.asarray(rgba, np.uint8).reshape(28, 28, 4)

        z_left, shown_left = point_at(-60, 40)
        z_right, shown_right = point_at(60, -40)
        left, top, width, height = (float(v) for v in overlay.get_attribute("data-box").split(","))
        x_low, y_low, x_high, y_high = (float(v) for v in overlay.get_attribute("data-bounds").split(","))
        size = overlay.size["width"]
        for z, (dx, dy) in ((z_left, (-60, 40)), (z_right, (60, -40))):  # the point under the pointer, to a pixel
            px, py = size / 2 + dx, size / 2 + dy
            expected = (x_low + (px - left) / width * (x_high - x_low), y_high - (py - top) / height * (y_high - y_low))
            np.testing.assert_allclose(z, expected, atol=1.5 * max((x_high - x_low) / width, (y_high - y_low) / height))
        for z, shown in ((z_left, shown_left), (z_right, shown_right)):
            expected = expected_decode("E3", z)[..., 0]
            assert np.abs(shown[..., 0].astype(int) - expected).max() <= 1
            np.testing.assert_array_equal(shown[..., 3], 255)
        assert np.abs(shown_left[..., 0].astype(int) - shown_right[..., 0]).max() > 50

        # The slider at α = 0: the latent blend is A's reconstruction.
        browser.execute_script("const s = document.getElementById('alpha'); s.value = '0';"
                               "s.dispatchEvent(new Event('input'));")
        WebDriverWait(browser, 30).until(
            lambda b: b.find_element(By.ID, "blend-latent").get_attribute("data-alpha") == "0"
        )
        canvases = browser.execute_script(
            "return ['blend-latent', 'reconstruction-a'].map((id) => { const c = document.getElementById(id);"
            "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); });")
        assert len(canvases[0]) == 32 * 32 * 4 and canvases[0] == canvases[1]
        logs = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert logs == []
    finally:
        browser.quit()
