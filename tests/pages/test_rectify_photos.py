"""The unit's rectification with photos: uploaded on the page, kept by SHA-256, listed by the action, shown."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image  # a dependency of the server and dev extras: no skip

from server.cases.service import load_case
from server.reference import load_reference
from server.clock import server_clock
from server.photos.service import blob_store

from .conftest import count_actions, csrf_token, event_in, folded, log_in



def jpeg(colour: str) -> bytes:
    """A small real JPEG."""
    out = io.BytesIO()
    Image.new("RGB", (80, 60), colour).save(out, "JPEG")
    return out.getvalue()


def rectify(client, event_id: str, files: list[tuple[bytes, str]], *, token: bool = True, **form):
    """Post the rectify form as a browser does: multipart, with the files under `photos`."""
    data = {**form, "photos": [(io.BytesIO(content), name) for content, name in files]}
    if token:
        data["csrf_token"] = csrf_token(client)
    return client.post(f"/cases/{event_id}/rectify", data=data, content_type="multipart/form-data")


def test_a_unit_rectifies_with_two_photos_kept_listed_and_shown(pages):
    event_id = event_in("dispatched", unit="fire")
    photos = [jpeg("red"), jpeg("green")]
    hashes = [hashlib.sha256(p).hexdigest() for p in photos]
    log_in(pages, "unit1")
    page = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'name="photos"' in page
    answer = rectify(pages, event_id, [(photos[0], "before.jpg"), (photos[1], "after.jpg")], note="已拆除飞线")
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    state = folded(event_id)
    assert state.status == "rectified"
    [action] = [e for e in state.timeline if e.action == "rectify"]
    case = load_case(event_id, load_reference(), server_clock().physical_ms())
    assert case.actions[action.action_id]["photos"] == hashes
    assert all(blob_store().read(sha) == data for sha, data in zip(hashes, photos))
    page = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    assert "已收到 2 / 2 张照片" in page
    for sha in hashes:
        assert f"/cases/{event_id}/photos/{sha}?size=thumb" in page
        full = pages.get(f"/cases/{event_id}/photos/{sha}")
        assert full.status_code == 200 and hashlib.sha256(full.get_data()).hexdigest() == sha
        full.close()


def test_a_rectification_without_photos_still_records(pages):
    event_id = event_in("dispatched", unit="fire")
    log_in(pages, "unit1")
    answer = rectify(pages, event_id, [], note="已整改")
    assert answer.status_code == 303
    assert folded(event_id).status == "rectified"


@pytest.mark.parametrize("content, name", [
    (b"not a photo at all\n", "notes.txt"),
    (b"\xff\xd8\xff" + b"\x00" * 200, "broken.jpg"),  # claims to be a JPEG, does not decode
])
def test_a_file_that_is_not_an_image_is_400_with_the_error_and_nothing_written(pages, content, name):
    event_id = event_in("dispatched", unit="fire")
    good = jpeg("blue")
    log_in(pages, "unit1")
    started = count_actions()
    answer = rectify(pages, event_id, [(good, "good.jpg"), (content, name)])
    assert answer.status_code == 400
    assert f"“{name}”不是 JPEG、PNG 或 WebP 照片。" in answer.get_data(as_text=True)
    assert count_actions() == started and folded(event_id).status == "dispatched"
    assert not blob_store().has(hashlib.sha256(good).hexdigest())  # not even the good one


def test_a_photo_over_the_limit_is_400_and_nothing_written(app, pages):
    app.config["GRIDPATROL_MAX_PHOTO_BYTES"] = 1000
    event_id = event_in("dispatched", unit="fire")
    big = io.BytesIO()
    Image.effect_noise((200, 200), 64).convert("RGB").save(big, "JPEG", quality=95)
    log_in(pages, "unit1")
    started = count_actions()
    answer = rectify(pages, event_id, [(big.getvalue(), "big.jpg")])
    assert answer.status_code == 400
    assert "“big.jpg”超过 1000 B。" in answer.get_data(as_text=True)  # 15 MB at the default limit
    assert count_actions() == started
    assert not blob_store().has(hashlib.sha256(big.getvalue()).hexdigest())


def test_a_rectification_without_csrf_is_400_and_nothing_written(pages):
    event_id = event_in("dispatched", unit="fire")
    photo = jpeg("yellow")
    log_in(pages, "unit1")
    started = count_actions()
    answer = rectify(pages, event_id, [(photo, "a.jpg")], token=False, note="无令牌")
    assert answer.status_code == 400
    assert count_actions() == started
    assert not blob_store().has(hashlib.sha256(photo).hexdigest())
