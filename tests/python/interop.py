#!/usr/bin/env python3
"""An independent gRPC client and reconciler for the workqueue contract.

Its stubs are generated at run time from proto/workqueue.proto with grpcio-tools, so nothing
here comes from the Rust side. It serves a reconciler on --reconciler-port, enqueues keys
through the receiver at --receiver, and checks what a Go client and reconciler would rely on:
order, dedup, delays, snooze, floors, growing backoff, the dead letter after max retry, the
NoRetryDetails drop, queue_keys, GetKeyState values and argument validation.

`reconcilers dev` must run with --concurrency 1 --max-retry 3 --backoff-base 1s.
Exits 0 when every check passed.
"""

import argparse
import collections
import importlib
import os
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status
from grpc_tools import protoc


def log(message):
    print(f"interop: {message}", file=sys.stderr, flush=True)


def generate(proto_dir):
    out = tempfile.mkdtemp(prefix="wq-stubs-")
    args = ["protoc", f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}",
            os.path.join(proto_dir, "workqueue.proto")]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, out)
    return importlib.import_module("workqueue_pb2"), importlib.import_module("workqueue_pb2_grpc")


class Reconciler:
    """Answers by the key's first segment; records every call."""

    def __init__(self, pb2):
        self.pb2 = pb2
        self.lock = threading.Lock()
        self.calls = []  # (monotonic time, key, priority)
        self.counts = collections.Counter()
        self.release = threading.Event()

    def Process(self, request, context):
        pb2 = self.pb2
        key = request.key
        with self.lock:
            self.calls.append((time.monotonic(), key, request.priority))
            self.counts[key] += 1
            n = self.counts[key]
        kind = key.split("/")[0]
        if kind == "slow":
            self.release.wait(timeout=30)
        elif kind == "snooze" and n == 1:
            return pb2.ProcessResponse(requeue_after_seconds=1)
        elif kind == "floor" and n == 1:
            return pb2.ProcessResponse(requeue_after_seconds=3, requeue_floor=True)
        elif kind == "fail":
            context.abort(grpc.StatusCode.INTERNAL, "this key always fails")
        elif kind == "noretry":
            detail = any_pb2.Any()
            detail.Pack(pb2.NoRetryDetails(message="permanently broken"))
            status = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message="permanently broken",
                                       details=[detail])
            context.abort_with_status(rpc_status.to_status(status))
        elif key == "fanout/parent":
            return pb2.ProcessResponse(queue_keys=[pb2.QueueKeyRequest(key="fanout/child", priority=5)])
        return pb2.ProcessResponse()

    def GetKeyState(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not a queue")

    def times(self, key):
        with self.lock:
            return [t for t, k, _ in self.calls if k == key]

    def keys(self):
        with self.lock:
            return [k for _, k, _ in self.calls]


CHECKS = [0]


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    CHECKS[0] += 1


def wait_until(what, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--receiver", required=True)
    parser.add_argument("--reconciler-port", type=int, required=True)
    parser.add_argument("--proto-dir", required=True)
    args = parser.parse_args()

    pb2, pb2_grpc = generate(args.proto_dir)
    reconciler = Reconciler(pb2)
    servicer = type("Servicer", (pb2_grpc.WorkqueueServiceServicer,), {
        "Process": lambda self, request, context: reconciler.Process(request, context),
        "GetKeyState": lambda self, request, context: reconciler.GetKeyState(request, context),
    })()
    # No SO_REUSEPORT (gRPC's default): a port another process holds must fail here, not be
    # shared with it.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)]
    )
    pb2_grpc.add_WorkqueueServiceServicer_to_server(servicer, server)
    if server.add_insecure_port(f"127.0.0.1:{args.reconciler_port}") == 0:
        sys.exit(f"could not bind the reconciler to 127.0.0.1:{args.reconciler_port}")
    server.start()

    channel = grpc.insecure_channel(args.receiver)
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = pb2_grpc.WorkqueueServiceStub(channel)
    KeyState = pb2.KeyState

    def enqueue(key, priority=0, delay=0):
        stub.Process(pb2.ProcessRequest(key=key, priority=priority, delay_seconds=delay), timeout=10)

    def state(key):
        try:
            return stub.GetKeyState(pb2.GetKeyStateRequest(key=key), timeout=10)
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND, f"GetKeyState({key}) failed: {e}")
            return None

    def expect_code(code, call):
        try:
            call()
        except grpc.RpcError as e:
            check(e.code() == code, f"expected {code}, got {e.code()}: {e.details()}")
            return
        raise AssertionError(f"expected {code}, the call succeeded")

    log("validation")
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, lambda: stub.Process(pb2.ProcessRequest(key="")))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                lambda: stub.Process(pb2.ProcessRequest(key="k", delay_seconds=-1)))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                lambda: stub.Process(pb2.ProcessRequest(key="x" * 1025)))
    check(state("missing") is None, "a missing key is NOT_FOUND")

    log("in progress, twin, order and dedup")
    enqueue("slow/block")
    wait_until("slow/block to start", lambda: reconciler.times("slow/block"))
    check(state("slow/block").status == KeyState.IN_PROGRESS, "a running key is IN_PROGRESS")
    enqueue("slow/block", priority=3)
    check(state("slow/block").status == KeyState.IN_PROGRESS, "a running key with a twin is IN_PROGRESS")
    before = time.time()
    enqueue("order/low-1", priority=1)
    enqueue("order/high", priority=10)
    enqueue("order/low-2", priority=1)
    enqueue("order/mid", priority=5)
    enqueue("order/low-1", priority=1)
    queued = state("order/high")
    check(queued.status == KeyState.QUEUED and queued.priority == 10, f"queued state: {queued}")
    check(before - 1 <= queued.queued_time <= time.time() + 1, f"queued_time {queued.queued_time}")
    check(queued.not_before_time == 0 and queued.attempts == 0, f"queued state: {queued}")
    reconciler.release.set()
    wait_until("the queue to drain", lambda: reconciler.keys().count("order/low-2") == 1)
    ran = [k for k in reconciler.keys() if k.startswith("order/") or k == "slow/block"]
    expected = ["slow/block", "order/high", "order/mid", "slow/block", "order/low-1", "order/low-2"]
    check(ran == expected, f"dispatch order {ran}, expected {expected}")
    wait_until("slow/block to complete", lambda: state("slow/block") is None)

    log("delay")
    start = time.monotonic()
    enqueue("delay/a", delay=2)
    delayed = state("delay/a")
    check(delayed.status == KeyState.QUEUED, f"delayed state: {delayed}")
    check(abs(delayed.not_before_time - (time.time() + 2)) <= 1.5, f"not_before_time {delayed.not_before_time}")
    called = wait_until("delay/a to run", lambda: reconciler.times("delay/a"))[0]
    check(called - start >= 1.9, f"delay/a ran after {called - start:.2f}s, before its delay")

    log("snooze")
    enqueue("snooze/a")
    wait_until("the first snooze call", lambda: reconciler.times("snooze/a"))
    snoozed = wait_until("snooze/a to be requeued", lambda: (s := state("snooze/a")) and s.status == KeyState.QUEUED and s)
    check(snoozed.attempts == 0 and snoozed.not_before_time > 0, f"snoozed state: {snoozed}")
    first, second = wait_until("the second snooze call", lambda: (t := reconciler.times("snooze/a")) and len(t) == 2 and t)
    check(second - first >= 0.9, f"snoozed for {second - first:.2f}s, expected 1s")

    log("floor")
    enqueue("floor/a")
    first = wait_until("the first floor call", lambda: reconciler.times("floor/a"))[0]
    wait_until("floor/a to be requeued", lambda: (s := state("floor/a")) and s.status == KeyState.QUEUED)
    enqueue("floor/a")
    floored = state("floor/a")
    check(floored.not_before_time > time.time() + 1, f"a plain enqueue broke the floor: {floored}")
    times = wait_until("the second floor call", lambda: (t := reconciler.times("floor/a")) and len(t) == 2 and t)
    check(times[1] - first >= 2.9, f"floor held {times[1] - first:.2f}s, expected 3s")

    log("backoff and dead letter")
    enqueue("fail/a", priority=2)
    dead = wait_until("fail/a to be dead-lettered",
                      lambda: (s := state("fail/a")) and s.status == KeyState.DEAD_LETTER and s)
    check(dead.attempts == 3 and dead.priority == 2, f"dead letter state: {dead}")
    times = reconciler.times("fail/a")
    check(len(times) == 3, f"fail/a ran {len(times)} times, expected 3 (max retry)")
    gaps = [b - a for a, b in zip(times, times[1:])]
    # The first retry waits at least the base (1s), the second at least twice that.
    check(0.9 <= gaps[0] < 10 and 1.9 <= gaps[1] < 10, f"backoff gaps {gaps}")

    log("no retry")
    enqueue("noretry/a")
    wait_until("noretry/a to run", lambda: reconciler.times("noretry/a"))
    wait_until("noretry/a to be dropped", lambda: state("noretry/a") is None)
    time.sleep(1.5)
    check(len(reconciler.times("noretry/a")) == 1, "a NoRetry key ran again")

    log("queue_keys")
    enqueue("fanout/parent")
    wait_until("fanout/child to run", lambda: reconciler.times("fanout/child"))
    with reconciler.lock:
        priorities = [p for _, k, p in reconciler.calls if k == "fanout/child"]
    check(priorities == [5], f"fanout/child priorities {priorities}")
    wait_until("fanout/parent to complete", lambda: state("fanout/parent") is None)

    server.stop(grace=1)
    print(f"interop: all {CHECKS[0]} checks passed")


if __name__ == "__main__":
    main()
