"""python -m gateway.admin reset-lockout USER [--target HOST:PORT] [--api-key KEY] [--ca PEM]

Re-enable one of the caller's users' handwriting factor after lockout. The key
(default: $HWOTP_API_KEY; for `make up`'s stack, the api_key in run/stack.json)
must belong to a caller named in the gateway's HWOTP_ADMIN_CALLERS. With --ca
(the CA of the gateway's certificate) it speaks TLS. Needs only what the
container image ships.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc

from hwotp import tls
from hwotp.client import gateway_channel, gateway_stub
from hwotp.v1 import gateway_pb2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["reset-lockout"])
    parser.add_argument("user_id")
    parser.add_argument("--target", default=f"127.0.0.1:{os.environ.get('HWOTP_GATEWAY_PORT', '50051')}")
    parser.add_argument("--api-key", default=os.environ.get("HWOTP_API_KEY"))
    parser.add_argument("--ca", help="PEM of the CA that signed the gateway's certificate: speak TLS")
    args = parser.parse_args()
    if not args.api_key:
        parser.error("no API key: pass --api-key or set HWOTP_API_KEY (an administrator caller's key)")
    credentials = tls.channel_credentials(args.ca) if args.ca else None
    with gateway_channel(args.target, args.api_key, credentials) as channel:
        try:
            reset = gateway_stub(channel).ResetLockout(gateway_pb2.ResetLockoutRequest(user_id=args.user_id), timeout=10)
        except grpc.RpcError as error:
            sys.exit(f"refused: {error.code().name}: {error.details()}")
    print(f"{args.user_id}: cleared {reset.failures_cleared} consecutive failures"
          + (", factor re-enabled" if reset.was_disabled else ""))


if __name__ == "__main__":
    main()
