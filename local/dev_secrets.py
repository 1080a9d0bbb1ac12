"""python -m local.dev_secrets [DIR]: fresh secrets for the dev overlay, one file per service.

Writes DIR (default deploy/k8s/overlays/dev/secrets, ignored by git) with only
what each service needs, and prints the development caller's API key: no key
material is ever committed.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from hwotp.client import key_hash
from hwotp.sealing import new_key_entry
from hwotp.subjects import new_key

DEFAULT = Path(__file__).resolve().parent.parent / "deploy" / "k8s" / "overlays" / "dev" / "secrets"


def write(directory: Path) -> str:
    """The files, and the caller key whose hash the gateway's file holds."""
    directory.mkdir(parents=True, exist_ok=True)
    caller_key, password = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    redis_url = f"redis://:{password}@redis.hwotp.svc.cluster.local:6379/0"
    files = {
        "gateway.env": {"HWOTP_API_KEYS": f"dev:{key_hash(caller_key)}", "HWOTP_SUBJECT_KEY": new_key()},
        "verifier.env": {"HWOTP_TEMPLATE_KEYS": new_key_entry("dev"), "HWOTP_REDIS_URL": redis_url},
        "challenge.env": {"HWOTP_REDIS_URL": redis_url},
        "redis.env": {"REDIS_PASSWORD": password},
    }
    for name, values in files.items():
        path = directory / name
        path.touch(mode=0o600)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return caller_key


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    key = write(directory)
    print(f"secrets written to {directory}; the dev caller's API key (x-api-key): {key}")


if __name__ == "__main__":
    main()
