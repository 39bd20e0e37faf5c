"""The office side of the GUI flow: supervisor and unit act through the sync API with their own device tokens."""

from __future__ import annotations

import os
from typing import Any

import requests

from shared.case import Action, CaseState, fold_case
from shared.hlc import Clock
from shared.records import uuid7

PASSWORD = "demo-pass"


class Desk:
    """One person at the office with a device token: pushes case actions and pulls everything they may see."""

    def __init__(self, base_url: str, username: str):
        self.base = base_url.rstrip("/") + "/api/v1"
        self.node = os.urandom(8).hex()
        self.clock = Clock(self.node)
        answer = requests.post(f"{self.base}/auth/device", json={
            "username": username, "password": PASSWORD, "device_name": f"{username} desk", "node": self.node},
            timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        self.token = body["token"]
        self.user = body["user"]
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def act(self, event: dict[str, Any], action: str, **values: Any) -> dict[str, Any]:
        """Push one case action on an event (a dict with id and bucket); answers its push result."""
        stamp = str(self.clock.now())
        fields = {"event": event["id"], "action": action, "actor": self.user["id"], **values}
        change = {"kind": "case_action", "id": uuid7(self.clock.physical_ms(), os.urandom(10)),
                  "bucket": event["bucket"], "fields": {name: [value, stamp] for name, value in fields.items()}}
        answer = requests.post(f"{self.base}/sync/push", headers=self.headers,
                               json={"node": self.node, "changes": [change]}, timeout=30)
        assert answer.status_code == 200, answer.text
        result = answer.json()["results"][0]
        assert result["status"] == "applied", result
        return result

    def upload(self, data: bytes) -> str:
        """Upload a photo whole (one PATCH of the resumable upload), as a page or tablet does; its SHA-256."""
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        answer = requests.patch(f"{self.base}/photos/{sha}", data=data, timeout=30, headers={
            **self.headers, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0",
            "Upload-Length": str(len(data)), "Tus-Resumable": "1.0.0"})
        assert answer.status_code in (200, 204), answer.text
        return sha

    def pull_all(self) -> list[dict[str, Any]]:
        """Every change this person may read, from the start."""
        cursors: dict[str, str] = {}
        changes: list[dict[str, Any]] = []
        while True:
            answer = requests.post(f"{self.base}/sync/pull", headers=self.headers,
                                   json={"cursors": cursors, "limit": 1000}, timeout=30)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            changes.extend(body["changes"])
            cursors = body["cursors"]
            if not body["more"]:
                return changes

    def find_event(self, description: str) -> dict[str, Any] | None:
        """The event (as pulled: id, bucket, fields) whose description is this."""
        for change in self.pull_all():
            if change["kind"] == "event" and change["fields"].get("description", [None])[0] == description:
                return change
        return None

    def case(self, event: dict[str, Any]) -> CaseState:
        """The case as the server holds it: its event and actions folded with shared.case.fold_case."""
        changes = self.pull_all()
        record = next(c for c in changes if c["kind"] == "event" and c["id"] == event["id"])
        values = {name: write[0] for name, write in record["fields"].items()}
        actions = [Action.from_state(c["id"], c["fields"]) for c in changes
                   if c["kind"] == "case_action" and c["fields"].get("event", [None])[0] == event["id"]]
        return fold_case(values, actions)

    def photo(self, sha: str) -> requests.Response:
        """GET the photo."""
        return requests.get(f"{self.base}/photos/{sha}", headers=self.headers, timeout=30)
