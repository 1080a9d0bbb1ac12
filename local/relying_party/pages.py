"""The demo relying party's pages: plain HTML, every value escaped."""

from __future__ import annotations

import html
import json


AIR = '<div id="air"></div>'  # where web/air-camera.js puts its "Write in the air" controls


def page(title: str, body: str, csrf: str = "") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{html.escape(csrf)}">
<title>{html.escape(title)} - demo bank</title>
<link rel="stylesheet" href="/static/pad.css"></head>
<body><h1>{html.escape(title)}</h1>
{body}
</body></html>"""


def message(text: str, kind: str = "") -> str:
    return f'<div class="message {kind}" id="message" role="status">{html.escape(text)}</div>'


def form(action: str, csrf: str, fields: list[tuple[str, str, str]], button: str, extra: str = "") -> str:
    inputs = "".join(f'<label>{html.escape(label)}<br><input name="{name}" type="{kind}" required></label><br>'
                     for name, kind, label in fields)
    return (f'<form method="post" action="{action}"><input type="hidden" name="csrf" value="{html.escape(csrf)}">'
            f'{inputs}{extra}<button type="submit">{html.escape(button)}</button></form>')


def home(user: str | None, csrf: str, may_add_signature: bool = False) -> str:
    if user:
        signature = ('<p><a href="/signature">Add your signature</a>: high-risk logins then ask for it too '
                     '(within 5 minutes of logging in).</p>') if may_add_signature else ""
        return page("Demo bank", message(f"Logged in as {user}: both factors passed.", "good") + signature +
                    f'<form method="post" action="/logout"><input type="hidden" name="csrf" value="{csrf}">'
                    '<button type="submit">Log out</button></form>', csrf)
    return page("Demo bank", '<p>A relying party that asks for a password, then for handwritten digits '
                '(hwotp).</p><p><a href="/signup">Sign up</a> · <a href="/login">Log in</a></p>', csrf)


def signup(csrf: str, note: str = "") -> str:
    return page("Sign up", (message(note, "bad") if note else "") + form(
        "/signup", csrf, [("username", "text", "User name"), ("password", "password", "Password (8 or more characters)")],
        "Sign up"), csrf)


def login(csrf: str, note: str = "") -> str:
    return page("Log in", (message(note, "bad") if note else "") + form(
        "/login", csrf, [("username", "text", "User name"), ("password", "password", "Password")], "Continue",
        '<label><input type="checkbox" name="high_risk" value="1"> High-risk login: ask for my signature too'
        '</label><br>'), csrf)


def enrol(csrf: str, user: str) -> str:
    return page("Enrol your handwriting", f"""
<p>{html.escape(user)}, write each digit as you naturally do, one per box: three of every digit.</p>
<div id="progress"></div>
<div id="pad"></div>
<div class="actions"><button id="next" type="button">Next</button> <button id="redo" type="button">Redo the last</button>
<button id="send" type="button" disabled>Enrol</button></div>{AIR}
<div id="message" class="message" role="status"></div>
<script type="module">
import {{ EnrolmentWalk }} from "/static/pad.js";
import {{ airControls }} from "/static/air-camera.js";
import {{ post }} from "/static/client.js";
const walk = new EnrolmentWalk(document.getElementById("pad"), document.getElementById("progress"));
const air = airControls(document.getElementById("air"), () => walk.pad);
const note = document.getElementById("message");
const send = document.getElementById("send");
window.hwotpWalk = walk;
document.getElementById("next").onclick = () => {{
  note.textContent = walk.next() ? "" : "The box is empty: write the digit first.";
  send.disabled = !walk.done;
  air.follow(walk.pad);
}};
document.getElementById("redo").onclick = () => {{ walk.redo(); send.disabled = true; air.follow(walk.pad); }};
send.onclick = async () => {{
  const answer = await post("/api/enrol", {{ samples: walk.samples }});
  note.textContent = answer.message;
  if (answer.next) setTimeout(() => (location.href = answer.next), 1500);
}};
</script>""", csrf)


def challenge(csrf: str, digits: str, digits_image: str, expires_at_ms: int, length: int, stepped_up: bool,
              display_templates: list[str], signature: bool = False) -> str:
    shown = (f'<img alt="the digits to write" src="data:image/png;base64,{digits_image}">' if digits_image
             else f'<div class="digits" id="digits">{html.escape(digits)}</div>')
    stepped = message("We ask for more digits this time: a recent attempt came close.") if stepped_up else ""
    labels = json.dumps([f"data:image/png;base64,{t}" for t in display_templates])
    what = ("Write each digit shown, in order, one per box" if length else "") + \
        (", then sign in the last box" if length and signature else "Sign in the box" if signature else "")
    return page("Write the digits" if length else "Sign", f"""
<p>{what}, then submit once.</p>
{stepped}{shown if length else ""}
<p id="countdown"></p>
<div id="pad"></div>
<div class="actions"><button id="submit" type="button">Submit</button></div>{AIR}
<div id="message" class="message" role="status"></div>
<script type="module">
import {{ HandwritingPad, countdown }} from "/static/pad.js";
import {{ airControls }} from "/static/air-camera.js";
import {{ post }} from "/static/client.js";
const templates = {labels};
const labels = templates.map((src) => {{ const img = new Image(); img.src = src; img.height = 48; return img; }});
const pad = new HandwritingPad(document.getElementById("pad"),
                               {{ boxes: {length}, labels, signatures: {int(signature)} }});
airControls(document.getElementById("air"), () => pad);
window.hwotpPad = pad;
const note = document.getElementById("message");
countdown(document.getElementById("countdown"), {expires_at_ms});
document.getElementById("submit").onclick = async () => {{
  const empty = pad.empty();
  if (empty.length) {{ note.textContent = `Box ${{empty[0] + 1}} is empty: write every digit.`; return; }}
  const answer = await post("/api/answer", {{ boxes: pad.handwriting() }});
  note.textContent = answer.message;
  note.className = "message " + (answer.accepted ? "good" : "bad");
  if (answer.next) setTimeout(() => (location.href = answer.next), 1500);
}};
</script>""", csrf)


def signature(csrf: str, user: str) -> str:
    return page("Add your signature", f"""
<p>{html.escape(user)}, sign five times, once per box, as you sign on paper.</p>
<div id="pad"></div>
<div class="actions"><button id="send" type="button">Enrol the signature</button></div>{AIR}
<div id="message" class="message" role="status"></div>
<script type="module">
import {{ HandwritingPad }} from "/static/pad.js";
import {{ airControls }} from "/static/air-camera.js";
import {{ post }} from "/static/client.js";
const pad = new HandwritingPad(document.getElementById("pad"), {{ boxes: 0, signatures: 5 }});
window.hwotpPad = pad;
airControls(document.getElementById("air"), () => pad);
const note = document.getElementById("message");
document.getElementById("send").onclick = async () => {{
  const empty = pad.empty();
  if (empty.length) {{ note.textContent = `Box ${{empty[0] + 1}} is empty: sign in every box.`; return; }}
  const answer = await post("/api/signature", {{ signatures: pad.handwriting() }});
  note.textContent = answer.message;
  note.className = "message " + (answer.enrolled ? "good" : "bad");
  if (answer.next) setTimeout(() => (location.href = answer.next), 1500);
}};
</script>""", csrf)


def plain(title: str, text: str, kind: str = "", csrf: str = "", link: tuple[str, str] | None = None) -> str:
    extra = f'<p><a href="{link[0]}">{html.escape(link[1])}</a></p>' if link else ""
    return page(title, message(text, kind) + extra, csrf)
