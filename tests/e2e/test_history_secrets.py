"""Temporal history holds no secret in clear, and the codec endpoint decodes it for admins only."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from temporalio.client import Client

from api.flows import code_workflow_id
from authflow.models import User
from tests.stack import Stack
from workflows import versions

pytestmark = pytest.mark.e2e


async def _raw_history(stack: Stack, workflow_id: str) -> tuple[bytes, dict[str, Any]]:
    """The history as stored, read by a client that has no codec."""
    raw_client = await Client.connect(
        stack.settings.temporal_address, namespace=stack.settings.temporal_namespace
    )
    history = await raw_client.get_workflow_handle(workflow_id).fetch_history()
    return b"".join(e.SerializeToString() for e in history.events), json.loads(history.to_json())


async def test_raw_history_holds_no_secret(stack: Stack) -> None:
    email = stack.new_email("history")
    password = "history passphrase 7"
    mark = stack.sink.last_id
    response = await stack.register(email, password, full_name="Grace Hopper")
    user_id = response.json()["user_id"]
    code = await stack.wait_for_code(email, after_id=mark)
    verified = await stack.http.post(
        "/api/v1/auth/register/verify", json={"email": email, "otp": code}
    )
    assert verified.status_code == 200
    workflow_id = code_workflow_id("register", user_id)
    assert await stack.client.get_workflow_handle(workflow_id).result() == "verified"

    raw, as_json = await _raw_history(stack, workflow_id)
    text = json.dumps(as_json)
    for secret in (email, password, "Grace Hopper", code, email.split("@")[0]):
        assert secret.encode() not in raw, f"{secret!r} in raw history bytes"
        assert secret not in text
    # Every payload is ciphertext from our codec (so even ids are not readable), except
    # the SDK's version markers, which hold our patch ids and nothing else.
    _check_patch_markers(as_json)
    encodings = _payload_encodings(as_json)
    assert encodings and encodings == {"binary/encrypted"}
    # ... while the search attributes ops filter on are readable and carry no PII.
    attributes = as_json["events"][0]["workflowExecutionStartedEventAttributes"]["searchAttributes"]
    assert set(attributes["indexedFields"]) >= {"AuthflowKind", "AuthflowUserId"}


PATCH_IDS = {versions.CURRENT, *versions.FOLDED}


def _check_patch_markers(history: dict[str, Any]) -> None:
    """Remove the SDK's patch markers (``workflow.patched``), after checking that their
    clear-text details are exactly one of our patch ids."""
    for event in history["events"]:
        marker = event.get("markerRecordedEventAttributes")
        if marker is None or marker.get("markerName") != "core_patch":
            continue
        texts = [
            base64.b64decode(payload["data"]).decode()
            for detail in marker["details"].values()
            for payload in detail.get("payloads", [])
        ]
        patch_ids = {json.loads(text)["id"] for text in texts if "id" in json.loads(text)}
        assert patch_ids and patch_ids <= PATCH_IDS, texts
        marker["details"] = {}


def _payload_encodings(node: object, path: str = "") -> set[str]:
    """Encodings of every payload holding workflow data.  Not counted: search attributes
    (readable by design, ids and states only) and the SDK's own local-activity marker
    metadata (activity type, attempt; the activity's result is a separate payload)."""
    if "searchAttributes" in path or path.endswith("markerRecordedEventAttributes/details/data"):
        return set()
    found: set[str] = set()
    if isinstance(node, dict):
        if "data" in node and "encoding" in node.get("metadata", {}):
            found.add(base64.b64decode(node["metadata"]["encoding"]).decode())
        for key, value in node.items():
            found |= _payload_encodings(value, f"{path}/{key}")
    elif isinstance(node, list):
        for item in node:
            found |= _payload_encodings(item, path)
    return found


async def test_codec_endpoint_decodes_for_admins_only(stack: Stack) -> None:
    email, password = await stack.register_and_verify()
    async with stack.db.session() as session:
        from sqlalchemy import select

        user = await session.scalar(select(User).where(User.email == email))
    assert user is not None
    _, as_json = await _raw_history(stack, code_workflow_id("register", user.id))
    started = as_json["events"][0]["workflowExecutionStartedEventAttributes"]
    body = {"payloads": started["input"]["payloads"]}

    anonymous = await stack.http.post("/codec/decode", json=body)
    assert anonymous.status_code == 401
    user_tokens = await stack.login(email, password)
    refused = await stack.http.post("/codec/decode", json=body, headers=stack.bearer(user_tokens))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"

    admin = await stack.admin_tokens()
    decoded = await stack.http.post("/codec/decode", json=body, headers=stack.bearer(admin))
    assert decoded.status_code == 200
    payload = decoded.json()["payloads"][0]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(payload["data"]))["user_id"] == user.id

    garbage = await stack.http.post(
        "/codec/decode", content=b"{not json", headers=stack.bearer(admin)
    )
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "bad_payloads"

    # Round trip through /codec/encode.
    encoded = await stack.http.post(
        "/codec/encode", json=decoded.json(), headers=stack.bearer(admin)
    )
    assert encoded.status_code == 200
    again = await stack.http.post("/codec/decode", json=encoded.json(), headers=stack.bearer(admin))
    assert again.json() == decoded.json()
