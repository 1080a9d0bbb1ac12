"""python -m gateway.admin reset-lockout USER [--target HOST:PORT] [--api-key KEY]

Re-enable a user's handwriting factor after lockout. The key must belong to a
caller named in the gateway's HWOTP_ADMIN_CALLERS (default key: $HWOTP_API_KEY,
else the local stack's run/stack.json).
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc

from hwotp.v1 import gateway_pb2
from local.client import gateway_channel, gateway_stub, local_api_key
from local.stack import STATE_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["reset-lockout"])
    parser.add_argument("user_id")
    parser.add_argument("--target", default=f"127.0.0.1:{os.environ.get('HWOTP_GATEWAY_PORT', '50051')}")
    parser.add_argument("--api-key", default=os.environ.get("HWOTP_API_KEY"))
    args = parser.parse_args()
    key = args.api_key or local_api_key(STATE_FILE)
    with gateway_channel(args.target, key) as channel:
        try:
            reset = gateway_stub(channel).ResetLockout(gateway_pb2.ResetLockoutRequest(user_id=args.user_id), timeout=10)
        except grpc.RpcError as error:
            sys.exit(f"refused: {error.code().name}: {error.details()}")
    print(f"{args.user_id}: cleared {reset.failures_cleared} consecutive failures"
          + (", factor re-enabled" if reset.was_disabled else ""))


if __name__ == "__main__":
    main()
