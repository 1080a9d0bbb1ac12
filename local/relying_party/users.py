"""The relying party's own user store: SQLite, passwords hashed with Argon2id."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

_hasher = PasswordHasher()


class Users:
    def __init__(self, path: Path | str = ":memory:"):
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.lock = threading.Lock()
        with self.lock:
            self.db.execute("CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, hash TEXT NOT NULL)")
            self.db.commit()

    def add(self, name: str, password: str) -> bool:
        """False when the name is taken."""
        with self.lock:
            try:
                self.db.execute("INSERT INTO users (name, hash) VALUES (?, ?)", (name, _hasher.hash(password)))
                self.db.commit()
                return True
            except sqlite3.IntegrityError:
                return False

    def check(self, name: str, password: str) -> bool:
        with self.lock:
            row = self.db.execute("SELECT hash FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            _hasher.hash(password)  # as slow as a real check: timing tells nothing about who exists
            return False
        try:
            return _hasher.verify(row[0], password)
        except VerificationError:
            return False
