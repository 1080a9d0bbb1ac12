"""The web client in a real browser (Debian's Chromium, driven by Playwright): held-out UNIPEN
writers' pen trajectories replayed as pointer events into the pad, through the demo relying party,
to a real stack. Screenshots of every page go to build/web-screenshots/."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import redis
from playwright.sync_api import sync_playwright

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
            "--no-first-run", "--disable-sync"])
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
    scale = area["width"] / 280
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


def log_in(page, url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{url}/challenge")


def answer(page, writer, touch: bool = False) -> str:
    digits = page.text_content("#digits")
    for box, digit in enumerate(digits):
        draw(page, box, writer.write(digit, rng)[0].strokes, touch)
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
