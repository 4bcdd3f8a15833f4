#!/usr/bin/env python3
"""An independent CloudEvents client (the Python `cloudevents` SDK, 2.x core API) against the
gateway's /events: one event in binary mode, one structured, two in a batch, one without a key,
and one malformed. Keys are https://github.com/o/r/pull/1..4 in the `pullrequesturl`
extension. Exits 0 when every answer was the one expected.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

from cloudevents.core.bindings import http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent


def event(n, key=True, **extra):
    attributes = {"type": "dev.example.test", "source": "/tests", "id": f"e{n}", **extra}
    if key:
        attributes["pullrequesturl"] = f"https://github.com/o/r/pull/{n}"
    return CloudEvent(attributes=attributes, data={"n": n})


def post(url, headers, body):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    url = parser.parse_args().url
    failures = []

    def expect(name, want, got):
        status, body = got
        print(f"{name}: {status} {body!r}")
        if status != want or (want < 300 and body):
            failures.append(f"{name}: wanted {want} with no body, got {status} {body!r}")

    # Binary mode, with a subject that must be percent-encoded in its header.
    binary = http.to_binary_event(event(1, subject="a subject ✓"))
    expect("binary", 202, post(url, dict(binary.headers), binary.body))
    structured = http.to_structured_event(event(2))
    expect("structured", 202, post(url, dict(structured.headers), structured.body))
    batch = [json.loads(JSONFormat().write(event(n))) for n in (3, 4)]
    expect(
        "batch",
        202,
        post(url, {"content-type": "application/cloudevents-batch+json"}, json.dumps(batch).encode()),
    )
    keyless = http.to_binary_event(event(5, key=False))
    expect("keyless", 202, post(url, dict(keyless.headers), keyless.body))
    expect(
        "malformed",
        400,
        post(url, {"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0"}'),
    )
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
