"""Structured JSON logs, and the audit trail: one event per security-relevant act.

Audit events never hold digits, images or keys; scores go here and nowhere else.
"""

from __future__ import annotations

import json
import logging
import time

AUDIT = logging.getLogger("hwotp.audit")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": round(record.created, 3), "level": record.levelname, "logger": record.name,
                 "msg": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    AUDIT.setLevel(logging.INFO)  # the audit trail is kept whatever the log level


def audit(event: str, **fields) -> None:
    AUDIT.info(event, extra={"fields": {"event": event, "at": time.time(), **fields}})
