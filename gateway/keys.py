"""python -m gateway.keys NAME: make an API key for a relying party.

Prints the key (give it to the caller, once) and the HWOTP_API_KEYS entry
(only its hash) for the gateway's Secret.
"""

import secrets
import sys

from hwotp.client import key_hash


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isidentifier():
        raise SystemExit("usage: python -m gateway.keys NAME   (NAME: letters, digits, _)")
    key = secrets.token_urlsafe(32)
    print(f"key for {sys.argv[1]}:        {key}")
    print(f"HWOTP_API_KEYS entry: {sys.argv[1]}:{key_hash(key)}")


if __name__ == "__main__":
    main()
