"""The web client in a real browser (Debian's Chromium, driven by Playwright): held-out UNIPEN
writers' pen trajectories replayed as pointer events into the pad, through the demo relying party,
to a real stack; the air mode's hand model on Chromium's fake camera, and its landmark-to-stroke
logic on landmark sequences made from real pen trajectories. Screenshots of every page go to
build/web-screenshots/."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import redis
from playwright.sync_api import sync_playwright

from hwotp.client import gateway_channel, gateway_stub
from hwotp.ink import prepare_strokes
from hwotp.sealing import Sealer
from hwotp.v1 import handwriting_pb2
from local.handwriting import box_strokes
from local.relying_party.server import Demo
from local.stack import REPO
from tests.conftest import key_of, start_stack, subject_of

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO / "build" / "web-screenshots"
PASSWORD = "correct horse battery"
rng = np.random.default_rng(41)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync",
            # the air mode: Chromium's own moving test pattern as the camera, no permission prompt
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A stack and the demo relying party in front of it."""
    stack = start_stack(tmp_path_factory.mktemp("web"))
    demo = Demo(stack.gateway, stack.api_key, port=0).start()
    yield stack, demo
    demo.stop()
    stack.stop()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def draw(page, box: int, strokes: list[handwriting_pb2.Stroke], touch: bool = False) -> None:
    """Replay one box's strokes as pointer events: mouse moves, or touch pointers for a phone."""
    canvas = page.locator(f'canvas[data-box="{box}"]').last
    area = canvas.bounding_box()
    scale = area["height"] / 280  # box pixels: 280 high (a signature's box is twice as wide)
    for stroke in strokes:
        points = [(area["x"] + p.x * scale, area["y"] + p.y * scale) for p in stroke.points]
        if touch:
            page.evaluate("""([box, points]) => {
                const canvas = [...document.querySelectorAll(`canvas[data-box="${box}"]`)].pop();
                const fire = (type, [x, y]) => canvas.dispatchEvent(new PointerEvent(type, {
                    clientX: x, clientY: y, pointerType: "touch", pointerId: 7, isPrimary: true, bubbles: true}));
                fire("pointerdown", points[0]);
                for (const point of points.slice(1)) fire("pointermove", point);
                fire("pointerup", points[points.length - 1]);
            }""", [box, points])
            continue
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def signup_and_enrol(page, url: str, name: str, writer) -> list[list[handwriting_pb2.Stroke]]:
    page.goto(f"{url}/signup")
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORD)
    shot(page, "1-signup")
    page.click('button[type="submit"]')
    page.wait_for_url(f"{url}/enrol")
    written = []
    for n, index in enumerate(writer.enrol_index):
        strokes = box_strokes(writer.strokes[index])
        draw(page, 0, strokes)
        written.append(strokes)
        if n == 0:
            shot(page, "2-enrol")
        page.click("#next")
    page.click("#send")
    page.wait_for_function("document.getElementById('message').textContent.includes('Enrolled')")
    return written


def log_in(page, url: str, name: str, password: str = PASSWORD, high_risk: bool = False) -> None:
    page.goto(f"{url}/login")
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', password)
    if high_risk:
        page.check('input[name="high_risk"]')
    page.click('button[type="submit"]')
    page.wait_for_url(f"{url}/challenge")


def signature_in_box(strokes: list[np.ndarray], width: float = 560, height: float = 280) -> list[list[dict]]:
    """A signature's strokes (x, y, t_ms, pressure, azimuth, altitude) fitted into a signature box,
    timing and pen as recorded, as the pad records them."""
    every = np.concatenate(strokes)
    low, span = every[:, :2].min(axis=0), np.ptp(every[:, :2], axis=0) + 1
    scale = 0.9 * min(width / span[0], height / span[1])
    return [[{"x": float((x - low[0]) * scale + 0.05 * width), "y": float((y - low[1]) * scale + 0.05 * height),
              "t_ms": float(t), "pressure": float(p), "azimuth": float(a), "altitude": float(b)}
             for x, y, t, p, a, b in stroke] for stroke in strokes]


def sign(page, box: int, strokes: list[np.ndarray]) -> None:
    """Put a signature into a pad's box through the pad's own API (as the air mode does): pointer
    events replayed by a test tool would not keep the pen's timing."""
    page.evaluate("([box, strokes]) => window.hwotpPad.write(box, strokes)", [box, signature_in_box(strokes)])


def answer(page, writer, touch: bool = False, signed: list[np.ndarray] | None = None) -> str:
    digits = page.text_content("#digits")
    for box, digit in enumerate(digits):
        draw(page, box, writer.write(digit, rng)[0].strokes, touch)
    if signed is not None:
        sign(page, len(digits), signed)
    page.evaluate("document.getElementById('message').textContent = ''")
    page.click("#submit")
    page.wait_for_function("document.getElementById('message').textContent.length > 0")
    return page.text_content("#message")


def test_sign_up_enrol_and_log_in_in_a_browser(browser, site, stroke_writers):
    stack, demo = site
    genuine, impostor = stroke_writers
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    written = signup_and_enrol(page, demo.url, "ada", genuine)
    # what the gateway kept of the enrolment is exactly what was drawn
    subject = subject_of(stack, "ada")
    sealer = Sealer.from_settings(stack.env["HWOTP_TEMPLATE_KEYS"], "")
    kept = [handwriting_pb2.Handwriting.FromString(sealer.open(blob, f"trj:{subject}".encode())[1:])
            for blob in stack.redis.client().lrange(key_of(subject, "trj"), 0, -1)]
    assert len(kept) == len(written) == 30
    for got, sent in zip(kept, written):
        assert [[(round(p.x), round(p.y)) for p in s.points] for s in got.strokes] == \
            [[(p.x, p.y) for p in s.points] for s in sent]
    outcomes = {"genuine": [], "impostor": []}
    for who, writer in (("genuine", genuine), ("impostor", impostor)) * 2:
        log_in(page, demo.url, "ada")
        if not outcomes["genuine"]:
            shot(page, "3-challenge")
        outcomes[who].append(answer(page, writer))
        shot(page, f"4-{who}-answered")
    assert outcomes["genuine"] == ["Both factors passed: you are logged in."] * 2
    assert all("did not match" in text for text in outcomes["impostor"]), outcomes
    print(f"replayed writers: genuine accepted {len(outcomes['genuine'])}/2, impostor rejected "
          f"{sum('did not match' in t for t in outcomes['impostor'])}/2")
    # the same answer again: hwotp refuses a used challenge
    log_in(page, demo.url, "ada")
    assert answer(page, genuine) == "Both factors passed: you are logged in."
    page.click("#submit")
    page.wait_for_function("document.getElementById('message').textContent.includes('already answered')")
    page.close()


def test_a_phone_with_touch_and_bad_input_from_the_browser(browser, site, stroke_writers):
    stack, demo = site
    genuine, _ = stroke_writers
    phone = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = phone.new_page()
    signup_and_enrol(page, demo.url, "bea", genuine)
    log_in(page, demo.url, "bea")
    shot(page, "5-phone-challenge")
    # an empty box: said at once, nothing sent
    page.click("#submit")
    assert page.text_content("#message").startswith("Box 1 is empty")
    assert answer(page, genuine, touch=True) == "Both factors passed: you are logged in."
    shot(page, "6-phone-accepted")
    log_in(page, demo.url, "bea")
    # too many points in a box: the gateway's rule, said for a person, nothing counted
    reply = page.evaluate("""async () => {
        const { post } = await import("/static/client.js");
        const points = Array.from({length: 5000}, (_, i) => ({x: i % 200, y: i % 150, t_ms: i, pressure: 0}));
        const box = {strokes: [{points}]};
        return post("/api/answer", {boxes: Array(document.getElementById("digits").textContent.length).fill(box)});
    }""")
    assert "box 1" in reply["message"] and "at most 4096" in reply["message"] and "Nothing was counted" in reply["message"]
    assert answer(page, genuine, touch=True) == "Both factors passed: you are logged in."  # the challenge survived
    # a tampered request (no CSRF token) is refused and changes nothing
    status = page.evaluate("""async () => (await fetch("/api/answer", {method: "POST",
        headers: {"Content-Type": "application/json"}, body: JSON.stringify({boxes: []})})).status""")
    assert status == 403
    phone.close()


def test_a_signature_added_after_a_login_and_asked_for_on_high_risk_logins(browser, site, stroke_writers, signer):
    """The demo's signature flow: log in, add a signature (the login's owner token is the proof),
    then a high-risk login asks for the digits and the signature: the owner's passes, a skilled
    forgery of the data set does not."""
    stack, demo = site
    genuine = stroke_writers[0]
    signed, probes, forged = signer
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    signup_and_enrol(page, demo.url, "eve", genuine)
    log_in(page, demo.url, "eve")
    assert answer(page, genuine) == "Both factors passed: you are logged in."
    page.wait_for_url(f"{demo.url}/")
    page.click('a[href="/signature"]')
    page.wait_for_url(f"{demo.url}/signature")
    page.click("#send")
    assert page.text_content("#message").startswith("Box 1 is empty")
    for box in range(5):
        sign(page, box, signed[box + 1])
    shot(page, "9-signature-enrolment")
    page.click("#send")
    page.wait_for_function("document.getElementById('message').textContent.includes('Signature enrolled')")
    log_in(page, demo.url, "eve", high_risk=True)
    assert page.locator("canvas.hwotp-signature").count() == 1
    assert answer(page, genuine, signed=signed[probes[0]]) == "Both factors passed: you are logged in."
    shot(page, "10-high-risk-accepted")
    log_in(page, demo.url, "eve", high_risk=True)
    assert "signature did not match" in answer(page, genuine, signed=signed[forged[0]])
    page.close()


def test_an_answer_after_the_time_limit_is_expired(browser, tmp_path, stroke_writers):
    stack = start_stack(tmp_path / "stack", HWOTP_CHALLENGE_TIME_LIMIT_S="2")
    demo = Demo(stack.gateway, stack.api_key, port=0).start()
    try:
        page = browser.new_page()
        signup_and_enrol(page, demo.url, "cid", stroke_writers[0])
        log_in(page, demo.url, "cid")
        # the countdown rounds up: at 0 the limit has passed
        page.wait_for_function("document.getElementById('countdown').dataset.left === '0'", timeout=30000)
        assert "Time ran out" in answer(page, stroke_writers[0])
        shot(page, "7-expired")
    finally:
        demo.stop()
        stack.stop()


# --- writing in the air ---------------------------------------------------------------------

ASPECT, REGION, BOX = 4 / 3, 0.6, 280.0  # the camera image's proportions and the AirPen's defaults
HAND = 0.17  # wrist to middle finger's base, in units of the image's height
FRAME_MS = 33.0


def hand_at(x: float, y: float, pinched: bool) -> list[dict]:
    """The 21 landmarks of a hand whose index fingertip is at box pixel (x, y), as MediaPipe Hands
    gives them from a selfie camera (x and y in [0, 1] of the image, mirrored)."""
    across = min(ASPECT, REGION)
    ix, iy = x / BOX * across + (ASPECT - across) / 2, y / BOX * REGION + (1 - REGION) / 2

    def landmark(dx: float, dy: float) -> dict:
        return {"x": 1 - (ix + dx) / ASPECT, "y": iy + dy, "z": 0.0}

    hand = [landmark(0.0, 2 * HAND)] * 21  # the wrist, and what the pen ignores
    hand[9] = landmark(0.0, HAND)  # the middle finger's base
    hand[8] = landmark(0.0, 0.0)  # the index fingertip: the pen
    hand[4] = landmark(0.03 if pinched else 0.15, 0.0)  # the thumb's tip
    return hand


def along(stroke: np.ndarray, step: float) -> np.ndarray:
    """Points every `step` pixels along a stroke's path."""
    lengths = np.r_[0, np.cumsum(np.linalg.norm(np.diff(stroke, axis=0), axis=1))]
    at = np.arange(0, lengths[-1] + 1e-9, step) if lengths[-1] > 0 else np.zeros(1)
    return np.stack([np.interp(at, lengths, stroke[:, 0]), np.interp(at, lengths, stroke[:, 1])], axis=1)


def air_frames(strokes: list[np.ndarray], mode: str) -> list[dict]:
    """Camera frames of a hand writing these box-pixel strokes: the pen path as a camera samples a
    fingertip (a few pixels of the box a frame); between strokes the open hand (or, in dwell mode, a
    still fingertip) moves on."""
    frames, t = [], 0.0

    def frame(x, y, pinched):
        nonlocal t
        frames.append({"hand": hand_at(float(x), float(y), pinched), "t_ms": t})
        t += FRAME_MS

    for stroke in strokes:
        sampled = along(stroke, 5.0)
        if mode == "dwell":  # hold still to put the pen down...
            for _ in range(int(800 / FRAME_MS)):
                frame(*sampled[0], False)
        for _ in range(3):
            frame(*sampled[0], False)
        for x, y in sampled:
            frame(x, y, True)
        if mode == "dwell":  # ...and again to lift it
            for _ in range(int(800 / FRAME_MS)):
                frame(*sampled[-1], False)
        for _ in range(3):
            frame(*sampled[-1], False)
    frames.append({"hand": None, "t_ms": t})
    return frames


@pytest.mark.parametrize("mode", ["pinch", "dwell"])
def test_air_landmarks_of_real_pen_trajectories_become_the_same_strokes(browser, site, stroke_writers, bundle,
                                                                       mode):
    """UNIPEN test writers' digits, written as a hand would in the air: the strokes the pad would send
    follow the pen's path and still read as the digit."""
    _, demo = site
    page = browser.new_page()
    page.goto(f"{demo.url}/login")
    writer = stroke_writers[0]
    samples = [writer.probes[d][0] for d in range(10)]
    sent = [[np.array([(p.x, p.y) for p in s.points]) for s in box_strokes(writer.strokes[i])] for i in samples]
    got = page.evaluate("""async ([all, mode]) => {
        const { strokesOf } = await import("/static/air.js");
        return all.map((frames) => strokesOf(frames, { mode }));
    }""", [[air_frames(strokes, mode) for strokes in sent], mode])
    page.close()
    recognized = []
    for strokes, air in zip(sent, got):
        assert len(air) == len(strokes)  # every stroke, no more: pen lifts where the pen lifted
        for original, written in zip(strokes, air):
            points = np.array([(p["x"], p["y"]) for p in written])
            assert all(b["t_ms"] > a["t_ms"] for a, b in zip(written, written[1:]))
            # each point lies on the pen's path (within a few pixels of a 280-pixel box)
            path = along(original, 1.0)
            gaps = np.min(np.linalg.norm(points[:, None] - path[None], axis=2), axis=1)
            assert np.percentile(gaps, 90) < 6, gaps.max()
        recognized.append([np.array([(p["x"], p["y"]) for p in stroke], dtype=np.float32) for stroke in air])
    fields = np.stack([prepare_strokes(strokes)[0] for strokes in recognized])[:, None]
    originals = np.stack([prepare_strokes(strokes)[0] for strokes in sent])[:, None]
    read = bundle.recognizer(fields).argmax(axis=1)
    assert (read == bundle.recognizer(originals).argmax(axis=1)).mean() >= 0.9, read


def test_air_mode_runs_the_hand_model_on_the_fake_camera(browser, site, writers):
    """The air mode in the challenge page: MediaPipe Hands, served by the demo itself, loads and runs
    on Chromium's fake camera (a test pattern: no hand in it) and says so; no video leaves the page."""
    stack, demo = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{demo.url}/signup")
    page.fill('input[name="username"]', "dee")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{demo.url}/enrol")
    with gateway_channel(stack.gateway, stack.api_key) as channel:  # the relying party's own key
        gateway_stub(channel).Enroll(writers[0].enrolment("dee"), timeout=30)
    log_in(page, demo.url, "dee")
    page.click('[data-air="switch"]')
    page.wait_for_function("""() => {
        const status = document.querySelector('[data-air="status"]');
        return status.dataset.state === "error" || (status.dataset.state === "no-hand" && +status.dataset.frames >= 5);
    }""", timeout=60000)
    status = page.text_content('[data-air="status"]')
    shot(page, "8-air-no-hand")
    assert status.startswith("No hand seen"), status
    assert all(url.startswith(demo.url) or url.startswith("data:") or url.startswith("blob:") for url in requests), \
        [url for url in requests if not url.startswith(demo.url)]
    assert any("/static/mediapipe/" in url and url.endswith(".tflite") for url in requests)
    page.click('[data-air="switch"]')  # off again: the camera is released
    assert page.evaluate("document.querySelector('[data-air=\"camera\"]').srcObject") is None
    page.close()
