"""The demo relying party: sign-up with handwriting enrolment, login with a password then hwotp.

It calls hwotp only from its server, over gRPC with its API key: the browser
never sees the key, the challenge's answer or any score. Sessions are signed
cookies; every POST carries the session's CSRF token.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path

import grpc
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hwotp.client import Answer, gateway_channel, gateway_stub, retry_after_s
from hwotp.v1 import gateway_pb2, handwriting_pb2
from local.relying_party import pages
from local.relying_party.users import Users

REPO = Path(__file__).resolve().parent.parent.parent
WEB = REPO / "web"
# MediaPipe Hands for the pad's air mode, installed pinned from npm by `make run` / `make test`
MEDIAPIPE = REPO / "build" / "web" / "node_modules" / "@mediapipe" / "hands"
MAX_BODY = 4 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9._@-]{3,64}")

OUTCOMES = {
    "ACCEPTED": "Both factors passed: you are logged in.",
    "WRONG_DIGITS": "Some boxes did not hold the digits shown. Log in again for a new challenge.",
    "WRITER_MISMATCH": "The handwriting did not match yours. Log in again for a new challenge.",
    "EXPIRED": "Time ran out for this challenge. Log in again for a new one.",
    "ALREADY_USED": "This challenge was already answered: each one counts once. Log in again for a new one.",
    "UNKNOWN_CHALLENGE": "This challenge is not known. Log in again for a new one.",
    "LOCKED": "Your handwriting factor is locked after too many failed attempts: contact support.",
    "NOT_ENROLLED": "No handwriting is enrolled for you.",
    "REPLAY": "These boxes copy handwriting seen before: write the digits afresh. Log in again for a new challenge.",
}
WRITER_MISMATCH_SIGNED = "The handwriting or the signature did not match yours. Log in again for a new challenge."


def _boxes(value) -> list[handwriting_pb2.Handwriting]:
    """JSON boxes -> messages; a shape that is not strokes of points is a ValueError."""
    out = []
    for box in value:
        strokes = [handwriting_pb2.Stroke(points=[handwriting_pb2.Point(
            x=float(p["x"]), y=float(p["y"]), t_ms=float(p.get("t_ms", 0)), pressure=float(p.get("pressure", 0)),
            azimuth=float(p.get("azimuth", 0)), altitude=float(p.get("altitude", 0)))
            for p in stroke["points"]]) for stroke in box["strokes"]]
        out.append(handwriting_pb2.Handwriting(strokes=strokes))
    return out


def _explain(error: grpc.RpcError) -> str:
    """hwotp's refusals, said for a person (its box numbers count from 0, a person's from 1)."""
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return f"Too many attempts: try again in {retry_after_s(error) or 1} s."
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        details = re.sub(r"\b(box|sample) (\d+)", lambda m: f"{m.group(1)} {int(m.group(2)) + 1}", details)
        return f"What was written could not be used: {details}. Nothing was counted."
    if code == grpc.StatusCode.FAILED_PRECONDITION and "disabled" in details:
        return OUTCOMES["LOCKED"]
    if code == grpc.StatusCode.FAILED_PRECONDITION and "not enrolled" in details:
        return "No handwriting is enrolled for you yet."
    return "The second factor is unavailable just now; try again later."


class RelyingParty:
    def __init__(self, gateway: str, api_key: str, users: Users, credentials=None):
        self.channel = gateway_channel(gateway, api_key, credentials)
        self.hwotp, self.users = gateway_stub(self.channel), users

    # --- the session and its CSRF token -------------------------------------------------------

    @staticmethod
    def _csrf(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(24)
        return request.session["csrf"]

    def _checked(self, request: Request, presented: str | None) -> bool:
        return bool(presented) and secrets.compare_digest(presented, request.session.get("csrf", ""))

    async def _json(self, request: Request):
        """The JSON body of a POST with a valid CSRF header, or a refusal response."""
        if not self._checked(request, request.headers.get("x-csrf-token")):
            return JSONResponse({"message": "The page expired or the request was tampered with: reload it."}, 403)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"message": "Too much was sent."}, 413)
        try:
            return json.loads(body)
        except ValueError:
            return JSONResponse({"message": "The request was not understood."}, 400)

    async def _form(self, request: Request):
        form = await request.form()
        if not self._checked(request, form.get("csrf")):
            return None
        return form

    # --- pages --------------------------------------------------------------------------------

    def home(self, request: Request):
        return HTMLResponse(pages.home(request.session.get("user"), self._csrf(request),
                                       "owner_token" in request.session))

    async def _credentials(self, request: Request, page):
        """(name, password) of a posted form with a valid CSRF token, or the response to send:
        the form page itself for a GET, a refusal for a tampered POST."""
        csrf = self._csrf(request)
        if request.method == "GET":
            return HTMLResponse(page(csrf))
        form = await self._form(request)
        if form is None:
            return HTMLResponse(page(csrf, "The form expired or was tampered with: try again."), 403)
        return str(form.get("username", "")), str(form.get("password", "")), form

    async def signup(self, request: Request):
        found = await self._credentials(request, pages.signup)
        if isinstance(found, HTMLResponse):
            return found
        (name, password, _), csrf = found, self._csrf(request)
        if not _NAME.fullmatch(name) or len(password) < 8:
            return HTMLResponse(pages.signup(csrf, "A name of 3-64 letters, digits or ._@- and a password of 8 "
                                                  "or more characters, please."), 400)
        if not self.users.add(name, password):
            return HTMLResponse(pages.signup(csrf, "That name is taken."), 409)
        request.session["enrolling"] = name
        return RedirectResponse("/enrol", 303)

    def enrol(self, request: Request):
        name = request.session.get("enrolling")
        if not name:
            return RedirectResponse("/signup", 303)
        return HTMLResponse(pages.enrol(self._csrf(request), name))

    async def enrol_api(self, request: Request):
        body = await self._json(request)
        if isinstance(body, JSONResponse):
            return body
        name = request.session.get("enrolling")
        if not name:
            return JSONResponse({"message": "Sign up first."}, 403)
        try:
            samples = [handwriting_pb2.LabeledDigit(digit=int(s["digit"]), handwriting=_boxes([s["handwriting"]])[0])
                       for s in body["samples"]]
        except (KeyError, TypeError, ValueError):
            return JSONResponse({"message": "The request was not understood."}, 400)
        try:
            self.hwotp.Enroll(gateway_pb2.EnrollRequest(user_id=name, samples=samples), timeout=30)
        except grpc.RpcError as error:
            return JSONResponse({"message": _explain(error)}, 400)
        request.session.pop("enrolling", None)
        return JSONResponse({"message": "Enrolled. You can log in now.", "next": "/login"})

    async def login(self, request: Request):
        found = await self._credentials(request, pages.login)
        if isinstance(found, HTMLResponse):
            return found
        name, password, form = found
        if not self.users.check(name, password):
            return HTMLResponse(pages.login(self._csrf(request), "Wrong name or password."), 401)
        request.session.clear()
        request.session["pending"] = name
        request.session["high_risk"] = form.get("high_risk") == "1"
        return RedirectResponse("/challenge", 303)

    def challenge(self, request: Request):
        name = request.session.get("pending")
        if not name:
            return RedirectResponse("/login", 303)
        try:
            factor = gateway_pb2.FACTOR_DIGITS_AND_SIGNATURE if request.session.get("high_risk") \
                else gateway_pb2.FACTOR_DIGITS
            began = self.hwotp.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=name, factor=factor),
                                              timeout=5)
        except grpc.RpcError as error:
            return HTMLResponse(pages.plain("Second factor", _explain(error), "bad", link=("/login", "Log in")))
        request.session["challenge"] = began.challenge_id  # the answer's digits stay on the server
        return HTMLResponse(pages.challenge(
            self._csrf(request), began.digits, base64.b64encode(began.digits_image).decode() if began.digits_image
            else "", began.expires_at.ToMilliseconds(), len(began.digits) or len(began.display_templates) or 6,
            began.stepped_up, [base64.b64encode(t).decode() for t in began.display_templates], began.signature))

    async def answer(self, request: Request):
        body = await self._json(request)
        if isinstance(body, JSONResponse):
            return body
        name, challenge_id = request.session.get("pending"), request.session.get("challenge")
        if not name or not challenge_id:
            return JSONResponse({"message": "Log in first."}, 403)
        try:
            boxes = _boxes(body["boxes"])
        except (KeyError, TypeError, ValueError):
            return JSONResponse({"message": "The request was not understood."}, 400)
        try:
            answer = Answer.of(self.hwotp.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(
                challenge_id=challenge_id, user_id=name, boxes=boxes), timeout=10))
        except grpc.RpcError as error:
            return JSONResponse({"message": _explain(error), "accepted": False}, 400)
        if answer.accepted:
            # the owner token lets the user add a signature now (single use, short-lived; never sent to the page)
            request.session.update(user=name, owner_token=answer.owner_token)
        said = OUTCOMES.get(answer.reason, "Not accepted.")
        if answer.reason == "WRITER_MISMATCH" and request.session.get("high_risk"):
            said = WRITER_MISMATCH_SIGNED
        return JSONResponse({"accepted": answer.accepted, "outcome": answer.reason, "message": said,
                             "next": "/" if answer.accepted else None})

    def signature(self, request: Request):
        name = request.session.get("user")
        if not name or "owner_token" not in request.session:
            return RedirectResponse("/login", 303)
        return HTMLResponse(pages.signature(self._csrf(request), name))

    async def signature_api(self, request: Request):
        body = await self._json(request)
        if isinstance(body, JSONResponse):
            return body
        name, token = request.session.get("user"), request.session.get("owner_token")
        if not name or not token:
            return JSONResponse({"message": "Log in again first: adding a signature needs a fresh login."}, 403)
        try:
            signed = _boxes(body["signatures"])
        except (KeyError, TypeError, ValueError):
            return JSONResponse({"message": "The request was not understood."}, 400)
        request.session.pop("owner_token")  # single use, whatever the outcome
        try:
            self.hwotp.EnrollSignature(gateway_pb2.EnrollSignatureRequest(
                user_id=name, signatures=signed, proof=gateway_pb2.OwnerProof(owner_token=token)), timeout=30)
        except grpc.RpcError as error:
            return JSONResponse({"message": _explain(error) + " Log in again to retry.", "enrolled": False}, 400)
        return JSONResponse({"message": "Signature enrolled: high-risk logins ask for it.", "enrolled": True,
                             "next": "/"})

    async def logout(self, request: Request):
        form = await self._form(request)
        if form is not None:
            request.session.clear()
        return RedirectResponse("/", 303)


def make_app(gateway: str, api_key: str, users: Users, secret: str | None = None, credentials=None) -> Starlette:
    party = RelyingParty(gateway, api_key, users, credentials)
    app = Starlette(routes=[
        Route("/", party.home),
        Route("/signup", party.signup, methods=["GET", "POST"]),
        Route("/enrol", party.enrol),
        Route("/api/enrol", party.enrol_api, methods=["POST"]),
        Route("/login", party.login, methods=["GET", "POST"]),
        Route("/challenge", party.challenge),
        Route("/api/answer", party.answer, methods=["POST"]),
        Route("/logout", party.logout, methods=["POST"]),
        Route("/signature", party.signature),
        Route("/api/signature", party.signature_api, methods=["POST"]),
        Mount("/static/mediapipe", StaticFiles(directory=MEDIAPIPE, check_dir=False), name="mediapipe"),
        Mount("/static", StaticFiles(directory=WEB), name="static"),
    ], middleware=[Middleware(SessionMiddleware, secret_key=secret or secrets.token_urlsafe(32),
                              session_cookie="demo_session", same_site="strict", https_only=False)])
    app.state.party = party
    return app
