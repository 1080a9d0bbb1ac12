"""The demo of `make run`: enrol a held-out writer, log in as them, then as an impostor.

Both writers are test writers of models/split.json: the models never saw them.
"""

from __future__ import annotations

import secrets

import numpy as np

from hwotp.client import Answer, gateway_channel, gateway_stub
from hwotp.v1 import gateway_pb2
from local.handwriting import Writer
from training import data

# Test writers (series * 10000 + NIST id: census employees 238 and 113). The
# demo user is one all of whose probes the models accept and the impostor one
# none of whose probes pass as the demo user, so that the demo shows both paths
# every time; models/MODEL_CARD.md gives the rates over all test writers.
DEMO_WRITER = 238
IMPOSTOR_WRITER = 113


def load_writers(data_dir=None) -> tuple[Writer, Writer]:
    digits = data.load(data_dir)
    out = []
    for key in (DEMO_WRITER, IMPOSTOR_WRITER):
        mine = digits.writers == key
        out.append(Writer(digits.images[mine], digits.digits[mine]))
    return out[0], out[1]


def login(stub, user_id: str, writer: Writer, rng) -> tuple[str, Answer]:
    challenge = stub.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=user_id), timeout=10)
    answer = stub.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(
        challenge_id=challenge.challenge_id, user_id=user_id, boxes=writer.write(challenge.digits, rng)), timeout=10)
    return challenge.digits, Answer.of(answer)


def run(gateway_address: str, api_key: str, data_dir=None) -> None:
    user, impostor = load_writers(data_dir)
    rng = np.random.default_rng()
    with gateway_channel(gateway_address, api_key) as channel:
        stub = gateway_stub(channel)
        # a new demo user each run: re-enrolling an enrolled user needs the owner's proof
        user_id = f"demo-user-{secrets.token_hex(3)}"
        enrolled = stub.Enroll(user.enrolment(user_id), timeout=30)
        print(f"enrolled {user_id}: {enrolled.samples_enrolled} samples, verifier {enrolled.model_version}")
        for who, writer in (("genuine user", user), ("impostor (right digits, another hand)", impostor)):
            digits, answer = login(stub, user_id, writer, rng)
            print(f"{who}: challenge {digits} -> {'ACCEPT' if answer.accepted else 'REJECT'} ({answer.reason})",
                  flush=True)
