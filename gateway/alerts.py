"""Alerts to the real user through the relying party: a signed JSON webhook, sent from a
background thread with retries, so that a slow or failing receiver never delays a login."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.request

from hwotp import logs

log = logging.getLogger("hwotp.alerts")
SIGNATURE_HEADER = "X-Hwotp-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    def __init__(self, url: str, secret: str, attempts: int = 4, first_backoff_s: float = 0.5,
                 timeout_s: float = 2.0, capacity: int = 1000):
        self.url, self.secret = url, secret
        self.attempts, self.first_backoff_s, self.timeout_s = attempts, first_backoff_s, timeout_s
        self.pending: queue.Queue = queue.Queue(maxsize=capacity)
        threading.Thread(target=self._work, name="alerts", daemon=True).start()

    def notify(self, event: dict) -> None:
        """Queue an alert and return at once."""
        try:
            self.pending.put_nowait(event)
        except queue.Full:
            logs.audit("alert_dropped", caller=event.get("caller"), user=event.get("user_id"), reason="queue full")

    def _work(self) -> None:
        while True:
            event = self.pending.get()
            body = json.dumps(event, sort_keys=True).encode()
            request = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, body)})
            for attempt in range(self.attempts):
                try:
                    with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                        if 200 <= response.status < 300:
                            logs.audit("alert_delivered", caller=event.get("caller"), user=event.get("user_id"),
                                       attempts=attempt + 1)
                            break
                except Exception as exc:  # network errors and HTTP error statuses alike
                    log.warning("alert delivery attempt %d failed: %s", attempt + 1, exc.__class__.__name__)
                time.sleep(self.first_backoff_s * 2 ** attempt)
            else:
                logs.audit("alert_failed", caller=event.get("caller"), user=event.get("user_id"), attempts=self.attempts)
