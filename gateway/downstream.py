"""Channels to the internal services, the time budget of a call, and their errors as domain errors."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from hwotp import tls
from hwotp.config import Settings
from hwotp.errors import (DeadlineExceeded, FailedPrecondition, HwotpError, InvalidInput, NotFound,
                          ResourceExhausted, Unavailable)
from hwotp.server import RETRY_AFTER
from hwotp.v1 import challenge_pb2_grpc, recognizer_pb2_grpc, verifier_pb2_grpc


class Downstream:
    """One long-lived channel per service, reused by every call."""

    def __init__(self, settings: Settings):
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # With dns:/// targets this spreads calls over every replica.
            ("grpc.lb_policy_name", "round_robin"),
            ("grpc.keepalive_time_ms", 30000),
        ]
        credentials = tls.internal_credentials(settings)
        addresses = (settings.recognizer_addr, settings.verifier_addr, settings.challenge_addr)
        self.channels = [grpc.secure_channel(a, credentials, options=options) if credentials
                         else grpc.insecure_channel(a, options=options) for a in addresses]
        self.recognizer = recognizer_pb2_grpc.RecognizerStub(self.channels[0])
        self.verifier = verifier_pb2_grpc.VerifierStub(self.channels[1])
        self.challenge = challenge_pb2_grpc.ChallengeStub(self.channels[2])
        # For a call made beside another: a blocking call on a long-lived thread costs
        # less than a gRPC future, which starts a thread to drive it whenever none is in flight.
        self.beside = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="downstream")

    def close(self) -> None:
        self.beside.shutdown(wait=False, cancel_futures=True)
        for channel in self.channels:
            channel.close()


class Budget:
    """What is left of one public call's time; every downstream call gets the rest as its deadline."""

    def __init__(self, budget_s: float, context: grpc.ServicerContext):
        client_left = context.time_remaining()
        limit = min(budget_s, client_left if client_left is not None else math.inf)
        self.deadline = time.monotonic() + limit

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the call ran out of its time budget")
        return left


def translate(error: grpc.RpcError, service: str) -> HwotpError:
    code = error.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInput(error.details())
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(error.details())
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(error.details())
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        retry = dict(error.trailing_metadata() or ()).get(RETRY_AFTER, "1")
        return ResourceExhausted(error.details(), int(retry))
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"{service} did not answer in time")
    return Unavailable(f"{service} is unavailable")
