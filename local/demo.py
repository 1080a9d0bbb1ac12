"""The demo of `make run`: enrol a held-out writer, log in as them, then as an impostor; then
add a signature (SVC2004) with the login's owner token and sign in with it, then forge it.

Both writers are test writers of models/split.json: the models never saw them. The signer is
one of the SVC2004 users the signature verifier was fitted on (a demo, not a measurement).
"""

from __future__ import annotations

import secrets

import numpy as np

from hwotp.client import Answer, gateway_channel, gateway_stub
from hwotp.v1 import gateway_pb2
from local.handwriting import Writer, signature_box
from local.signers import REFERENCES, load_signer
from training import data
from training.evaluate_signatures import default_data

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
        token = ""
        for who, writer in (("genuine user", user), ("impostor (right digits, another hand)", impostor)):
            digits, answer = login(stub, user_id, writer, rng)
            token = token or answer.owner_token
            print(f"{who}: challenge {digits} -> {'ACCEPT' if answer.accepted else 'REJECT'} ({answer.reason})",
                  flush=True)
        if token:
            signature_demo(stub, user_id, token)


def signature_demo(stub, user_id: str, owner_token: str) -> None:
    if not default_data().exists():
        print(f"signature demo skipped: no SVC2004 signatures at {default_data()} (see README, Data)")
        return
    signed, genuine, forged = load_signer()
    stub.EnrollSignature(gateway_pb2.EnrollSignatureRequest(
        user_id=user_id, signatures=[signature_box(signed[n]) for n in REFERENCES],
        proof=gateway_pb2.OwnerProof(owner_token=owner_token)), timeout=30)
    print(f"enrolled a signature for {user_id} with the login's owner token (SVC2004 signer, 5 signatures)")
    for who, number in (("the signer", genuine[0]), ("a skilled forger", forged[0])):
        challenge = stub.BeginChallenge(gateway_pb2.BeginChallengeRequest(
            user_id=user_id, factor=gateway_pb2.FACTOR_SIGNATURE), timeout=10)
        answer = Answer.of(stub.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(
            challenge_id=challenge.challenge_id, user_id=user_id, boxes=[signature_box(signed[number])]), timeout=10))
        print(f"signature by {who}: {'ACCEPT' if answer.accepted else 'REJECT'} ({answer.reason})", flush=True)
