"""How an outbox event reaches a host: the `log` and `http` adapters (DESIGN §10).

* `log` appends the event as one JSON line to
  `<instance>/provisioning/<host code>.jsonl` and counts as acknowledged at
  once: the embedded default, for demos and hosts that read files.
* `http` POSTs the same JSON to the host's provisioning URL with
  `X-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the host's
  provisioning secret>` and `X-Event-Id`. A 2xx answer acknowledges the
  event; any other status, a network error or a timeout is a failure the
  outbox retries. The host must treat a repeated event id as a repeat:
  delivery is at least once.

Adapters run with no database transaction open; they get plain values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

HTTP_TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-Signature"


@dataclass(frozen=True)
class Target:
    """The host an event goes to, as read when the event was claimed."""

    code: str
    adapter: str
    url: str | None
    secret: str | None


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str = ""


def event_body(
    *, event_id: int, action: str, line_id: int, created_at: datetime, payload: dict[str, Any]
) -> bytes:
    """The JSON an adapter sends: compact, keys sorted, so a repeat is byte-identical."""
    document = {
        "id": event_id,
        "action": action,
        "line_id": line_id,
        "created_at": created_at.isoformat(),
        "payload": payload,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def signature(body: bytes, secret: str) -> str:
    """The `X-Signature` value for `body`: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def deliver_log(target: Target, body: bytes, *, instance_path: Path) -> Outcome:
    """The `log` adapter: append the event to instance/provisioning/<HOST>.jsonl."""
    folder = instance_path / "provisioning"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{target.code}.jsonl").open("ab") as handle:
            handle.write(body + b"\n")
    except OSError as exc:
        return Outcome(False, f"cannot write the provisioning log: {exc.strerror or exc}")
    return Outcome(True)


def deliver_http(
    target: Target, body: bytes, *, event_id: int, timeout_seconds: float = HTTP_TIMEOUT_SECONDS
) -> Outcome:
    """The `http` adapter: POST the signed event to the host; 2xx is delivered."""
    if not target.url:
        return Outcome(False, "the host has no provisioning URL")
    if not target.secret:
        return Outcome(False, "the host has no provisioning secret to sign with")
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(body, target.secret),
        "X-Event-Id": str(event_id),
    }
    try:
        response = requests.post(target.url, data=body, headers=headers, timeout=timeout_seconds)
    except requests.Timeout:
        return Outcome(False, f"no answer within {timeout_seconds:g} s")
    except requests.RequestException as exc:
        return Outcome(False, f"request failed: {type(exc).__name__}")
    if 200 <= response.status_code < 300:
        return Outcome(True)
    return Outcome(False, f"HTTP {response.status_code}: {response.text[:200]}")


def deliver(
    target: Target,
    body: bytes,
    *,
    event_id: int,
    instance_path: Path,
    timeout_seconds: float = HTTP_TIMEOUT_SECONDS,
) -> Outcome:
    """Send one event through the host's adapter; never raises for a delivery failure."""
    if target.adapter == "log":
        return deliver_log(target, body, instance_path=instance_path)
    if target.adapter == "http":
        return deliver_http(target, body, event_id=event_id, timeout_seconds=timeout_seconds)
    return Outcome(False, f"unknown provisioning adapter {target.adapter!r}")
