"""The explorer: its JSON endpoints over real HTTP, its answers to bad requests, the fit runs of a user's own
autoencoder, and the page in headless Chromium."""

import base64
import http.server
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

from jaxae import models, pretrained
from jaxae.data import from_arrays
from jaxae.errors import InputError
from jaxae.explore import INTERPOLATIONS, PLANES, LatentSpaces, running
from jaxae.explore.spaces import to_uint8
from jaxae.train import TrainConfig, fit, restore_state


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


@pytest.fixture(scope="module")
def own_runs(tmp_path_factory):
    """Work dirs of ``fit`` runs of a user's own autoencoder with BatchNorm (``tests/_explore_models.py``), whose
    codes have 2, 3 and 8 numbers: one epoch each on the 300 shipped MNIST test images, by code size."""
    from _explore_models import NAME, register

    register()  # again, where a test before unregistered it
    images, _ = pretrained.test_images("mnist")
    runs = {}
    for code in (2, 3, 8):
        runs[code] = tmp_path_factory.mktemp(f"own_code{code}")
        fit(own_config(code), from_arrays(images, batch_spec=own_config(code).batch_spec()), runs[code], progress=False)
    yield runs
    if NAME in models.names():
        models.unregister(NAME)


def own_config(code):
    """The config of the run of the user's own autoencoder whose codes have ``code`` numbers."""
    from _explore_models import NAME

    return TrainConfig(NAME, "mse", "adam", 1e-2, epochs=1, batch_size=50, model_args=(("code", code),))


def own_decode(workdir, codes):
    """What the run's own model, restored by ``restore_state``, decodes ``codes`` to, as the page shows it."""
    config = own_config(len(codes[0]))
    decoded = config.create_model().apply(restore_state(config, workdir).variables, np.asarray(codes, np.float32),
                                          method="decode")
    return to_uint8(decoded, (0.0, 1.0))


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


def test_a_fit_run_of_your_own_model_shows_its_plane_and_decodes_as_the_model_does(own_runs):
    from _explore_models import NAME

    images, labels = pretrained.test_images("mnist")
    spaces = LatentSpaces(workdir=own_runs[2], dataset="mnist")
    with running(spaces) as address:
        status, catalogue = get(address, "/api/catalogue")
        assert status == 200 and catalogue["own_run"]
        for kind in ("planes", "interpolations"):
            listed = [(entry["name"], entry["title"], entry["latent_shape"]) for entry in catalogue[kind]]
            assert listed == [(NAME, f"{NAME}: 2-D code", [2])]
        assert catalogue["planes"][0]["source"] == f"{own_runs[2]}, epoch 1 of 1"
        assert catalogue["class_names"] == [str(d) for d in range(10)]
        variables = restore_state(own_config(2), own_runs[2]).variables
        assert sorted(variables) == ["batch_stats", "params"]
        _, plane = get(address, f"/api/plane?model={NAME}")
        codes = own_config(2).create_model().apply(variables, images.astype(np.float32) / 255, method="encode")
        np.testing.assert_allclose(plane["codes"], codes, atol=2e-4)
        assert plane["labels"] == labels.tolist() and "depth" not in plane
        status, answer = get(address, f"/api/decode?model={NAME}&z=0.5,-1.25")
        assert status == 200
        np.testing.assert_array_equal(pixels(answer["image"]), own_decode(own_runs[2], [(0.5, -1.25)])[0])
        _, start = get(address, f"/api/interpolate?model={NAME}&a=3&b=7&alpha=0")
        np.testing.assert_array_equal(pixels(start["pixel"]), images[3])
        np.testing.assert_array_equal(pixels(start["latent"]), pixels(start["a"]))
    # Without test images: the plane alone, framed by ±3, decoding the same.
    bare = LatentSpaces(workdir=own_runs[2])
    assert bare.interpolations == () and bare.catalogue()["images_source"] == "no test images"
    assert bare.plane(NAME) == {"codes": [], "labels": [], "bounds": [-3.0, -3.0, 3.0, 3.0]}
    np.testing.assert_array_equal(bare.decode(NAME, (0.5, -1.25)), own_decode(own_runs[2], [(0.5, -1.25)])[0])


def test_a_code_of_three_numbers_gets_a_plane_with_a_depth_and_a_larger_one_blends_your_images(own_runs):
    from _explore_models import NAME

    images, labels = pretrained.test_images("mnist")
    with running(LatentSpaces(workdir=own_runs[3], dataset="mnist")) as address:
        _, plane = get(address, f"/api/plane?model={NAME}")
        low, high = plane["depth"]
        assert np.shape(plane["codes"]) == (300, 3) and low < np.median(np.asarray(plane["codes"])[:, 2]) < high
        status, answer = get(address, f"/api/decode?model={NAME}&z=0.5,-1.25,0.75")
        assert status == 200 and answer["z"] == [0.5, -1.25, 0.75]
        np.testing.assert_array_equal(pixels(answer["image"]), own_decode(own_runs[3], [(0.5, -1.25, 0.75)])[0])
        status, answer = get(address, f"/api/decode?model={NAME}&z=0.5,-1.25")
        assert status == 400 and answer["error"].startswith("z must be three numbers 'z1,z2,z3'")
    spaces = LatentSpaces(workdir=own_runs[8], images=images[:20, ..., 0], labels=labels[:20])
    catalogue = spaces.catalogue()
    assert catalogue["planes"] == [] and catalogue["interpolations"][0]["dataset_title"] == "your test images"
    assert catalogue["class_names"] == [str(d) for d in range(labels[:20].max() + 1)]
    blends = spaces.interpolate(NAME, 0, 19, 1.0)
    np.testing.assert_array_equal(blends["pixel"], images[19])
    np.testing.assert_array_equal(blends["latent"], blends["b"])


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(), ("the codes of model 'explore_own_ae' are of shape (8,), which the explorer blends between test images: "
              "give their dataset (--dataset NAME) or images")),
    (dict(dataset="cifar10"), "the cifar10 test images must be uint8 pixels of the model's images, (N, 28, 28, 1)"),
    (dict(images=np.zeros((4, 28, 28, 1), np.float32)), "images must be uint8 pixels of the model's images"),
    (dict(images=np.zeros((4, 28, 28), np.uint8), labels=[0, 1]),
     "labels must be one whole number >= 0 per image, shape (4,)"),
    (dict(dataset="mnist", images=np.zeros((4, 28, 28), np.uint8)), "as a dataset or as images, not both"),
])
def test_a_fit_run_refuses_test_images_that_do_not_fit_in_one_line(own_runs, kwargs, message):
    with pytest.raises(InputError) as refused:
        LatentSpaces(workdir=own_runs[8], **kwargs)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_run_of_a_model_not_registered_and_a_folder_without_a_run_are_refused_in_one_line(own_runs, tmp_path,
                                                                                            monkeypatch, capsys, request):
    from _explore_models import NAME, register
    from _own_models import LinenAutoencoder

    from jaxae import cli

    def explore(*args):
        with pytest.raises(SystemExit) as ended:
            cli.main(["explore", "--no-browser", "--port", "0", *args])
        return ended.value.code, capsys.readouterr().err.strip().splitlines()

    models.unregister(NAME)
    request.addfinalizer(register)  # for the tests after this one, should it fail before --import registers it
    with pytest.raises(InputError, match=f"{own_runs[2]} is a run of model '{NAME}', which is not registered in this "
                                         r"process: import the module that registers it first \(jaxae explore --import"):
        LatentSpaces(workdir=own_runs[2])
    assert explore("--workdir", str(own_runs[2]))[0] == 2
    models.register(NAME, LinenAutoencoder, image_shape=(28, 28, 1))  # another class under the run's model name
    with pytest.raises(InputError, match=f"model '{NAME}' is no autoencoder with encode and decode methods"):
        LatentSpaces(workdir=own_runs[2])
    models.unregister(NAME)
    assert explore("--import", "_no_such_module", "--workdir", str(own_runs[2])) == (
        2, ["jaxae: error: --import _no_such_module: ModuleNotFoundError: No module named '_no_such_module'"])
    with pytest.raises(InputError, match="holds no finished jaxae run: neither a fit run"):
        LatentSpaces(workdir=tmp_path)
    (tmp_path / "checkpoints").mkdir()
    assert explore("--workdir", str(tmp_path)) == (
        2, [f"jaxae: error: {tmp_path} holds no finished jaxae run: its checkpoints/ folder holds no checkpoint"])
    with pytest.raises(InputError, match="are the test images of a fit run"):
        LatentSpaces(dataset="mnist")

    # --import registers the model as the user's module does, and the command serves the run (stopped at once).
    def stop(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "_explore_models")
    monkeypatch.setattr(http.server.ThreadingHTTPServer, "serve_forever", stop)
    cli.main(["explore", "--no-browser", "--port", "0", "--import", "_explore_models", "--workdir", str(own_runs[2])])
    assert "jaxae explore: 1 models ready" in capsys.readouterr().out and NAME in models.names()


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
def test_in_chromium_the_pointer_on_a_plane_decodes_the_point_under_it(url, own_runs):
    """E3's plane and the plane of a user's own run with codes of three numbers, whose slider sets the third."""
    from _explore_models import NAME

    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1400"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))

    def open_page(address):
        browser.get(address + "/")
        WebDriverWait(browser, 60).until(
            lambda b: b.execute_script("return document.body.dataset.ready === 'true'")
            or b.find_element(By.ID, "status").is_displayed()
        )
        assert not browser.find_element(By.ID, "status").is_displayed(), browser.find_element(By.ID, "status").text

    def shown_after(decoded, change):
        """Runs ``change`` (which makes the page decode anew); the point it decoded and the canvas's pixels."""
        before = decoded.get_attribute("data-z")
        change()
        WebDriverWait(browser, 30).until(
            lambda _: decoded.get_attribute("data-z") != before and decoded.get_attribute("data-state") == "idle"
        )
        rgba = browser.execute_script(
            "const c = arguments[0];"
            "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);", decoded)
        z = [float(v) for v in decoded.get_attribute("data-z").split(",")]
        return z, np.asarray(rgba, np.uint8).reshape(28, 28, 4)

    def point_at(name, offsets):
        """Moves the pointer to each (dx, dy) from plane ``name``'s centre; checks that the decoded point is the one
        under it, to a pixel. The points and the canvas's pixels."""
        overlay = browser.find_element(By.CSS_SELECTOR, f"#plane-{name} .overlay")
        decoded = browser.find_element(By.ID, f"decoded-{name}")
        left, top, width, height = (float(v) for v in overlay.get_attribute("data-box").split(","))
        x_low, y_low, x_high, y_high = (float(v) for v in overlay.get_attribute("data-bounds").split(","))
        size = overlay.size["width"]
        points = []
        for dx, dy in offsets:
            move = webdriver.ActionChains(browser).move_to_element_with_offset(overlay, dx, dy).perform
            z, shown = shown_after(decoded, move)
            px, py = size / 2 + dx, size / 2 + dy
            expected = (x_low + (px - left) / width * (x_high - x_low), y_high - (py - top) / height * (y_high - y_low))
            np.testing.assert_allclose(z[:2], expected, atol=1.5 * max((x_high - x_low) / width, (y_high - y_low) / height))
            np.testing.assert_array_equal(shown[..., 3], 255)
            points.append((z, shown[..., 0].astype(int)))
        return points

    try:
        open_page(url)
        (z_left, shown_left), (z_right, shown_right) = point_at("E3", [(-60, 40), (60, -40)])
        for z, shown in ((z_left, shown_left), (z_right, shown_right)):
            assert np.abs(shown - expected_decode("E3", z)[..., 0]).max() <= 1
        assert np.abs(shown_left - shown_right).max() > 50

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

        # A user's own run with codes of three numbers: the pointer sets z1 and z2, the slider z3.
        with running(LatentSpaces(workdir=own_runs[3], dataset="mnist")) as own_url:
            open_page(own_url)
            assert browser.find_element(By.CSS_SELECTOR, "[data-shown='run']").is_displayed()
            assert not browser.find_element(By.CSS_SELECTOR, "[data-shown='seeds']").is_displayed()
            depth = browser.find_element(By.ID, f"depth-{NAME}")
            [(z, shown)] = point_at(NAME, [(50, -30)])
            assert z[2] == pytest.approx(float(depth.get_attribute("value")), abs=1e-6)
            assert np.abs(shown - own_decode(own_runs[3], [z])[0, ..., 0]).max() <= 1
            def slide():
                browser.execute_script("const s = arguments[0]; s.value = s.min; s.dispatchEvent(new Event('input'));",
                                       depth)

            deeper, shown = shown_after(browser.find_element(By.ID, f"decoded-{NAME}"), slide)
            assert deeper[:2] == z[:2] and deeper[2] == pytest.approx(float(depth.get_attribute("min")), abs=1e-6)
            assert np.abs(shown[..., 0].astype(int) - own_decode(own_runs[3], [deeper])[0, ..., 0]).max() <= 1
        logs = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert logs == []
    finally:
        browser.quit()
