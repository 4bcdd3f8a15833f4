#!/usr/bin/env python3
"""Writes the fuzz target's seed corpus (corpus/deliver/) from the real payloads in
fixtures/github: each file is one selector byte (the event, signed) and the compact JSON."""

import json
import pathlib

EVENTS = ["pull_request", "pull_request_review", "issue_comment", "check_run",
          "check_suite", "push", "ping", "issues"]

root = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "github"
out = pathlib.Path(__file__).resolve().parent / "corpus" / "deliver"
out.mkdir(parents=True, exist_ok=True)
for i, path in enumerate(sorted(root.rglob("*.json"))):
    if path.name == "expected.json":
        continue
    body = json.dumps(json.loads(path.read_text()), separators=(",", ":")).encode()
    folder = path.parent.name
    selector = EVENTS.index(folder) if folder in EVENTS else EVENTS.index("push")
    (out / f"seed-{i:03d}").write_bytes(bytes([selector]) + body)
