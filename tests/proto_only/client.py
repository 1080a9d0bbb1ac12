"""A relying party's backend, written from the .proto files alone: no hwotp code is imported.

usage: client.py GATEWAY API_KEY SAMPLES_DIR   (SAMPLES_DIR/enrol/<digit>_<n>.png, SAMPLES_DIR/write/<digit>.png)
Prints the decision of one login.
"""

import sys
from pathlib import Path

import grpc

from hwotp.v1 import gateway_pb2, gateway_pb2_grpc, handwriting_pb2

assert "site-packages" not in gateway_pb2.__file__ and "proto_only" not in gateway_pb2.__file__

gateway, api_key, samples = sys.argv[1], sys.argv[2], Path(sys.argv[3])
stub = gateway_pb2_grpc.GatewayStub(grpc.insecure_channel(gateway))
key = (("x-api-key", api_key),)
enrolment = [
    handwriting_pb2.LabeledDigit(digit=int(png.stem.split("_")[0]),
                                 handwriting=handwriting_pb2.Handwriting(image=png.read_bytes()))
    for png in sorted((samples / "enrol").glob("*.png"))
]
stub.Enroll(gateway_pb2.EnrollRequest(user_id="proto-only", samples=enrolment), timeout=30, metadata=key)
challenge = stub.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id="proto-only"), timeout=10, metadata=key)
boxes = [handwriting_pb2.Handwriting(image=(samples / "write" / f"{d}.png").read_bytes()) for d in challenge.digits]
answer = stub.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(
    challenge_id=challenge.challenge_id, user_id="proto-only", boxes=boxes), timeout=10, metadata=key)
print(gateway_pb2.Decision.Name(answer.decision), gateway_pb2.Reason.Name(answer.reason))
