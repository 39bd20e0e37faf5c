"""Photos on the case page: thumbnails of what the server holds, "n of m photos received" for the rest."""

from __future__ import annotations

import hashlib
import io

from PIL import Image  # a dependency of the server and dev extras: no skip

from .conftest import add_action, event_in, log_in



def png(colour: str) -> bytes:
    """A small real image."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


def upload(client, data: bytes) -> str:
    """Upload a photo through the sync API as a worker's tablet; returns its SHA-256."""
    login = client.post("/api/v1/auth/device", json={"username": "worker1", "password": "demo-pass",
                                                     "device_name": "平板", "node": "00000000000000d4"})
    sha = hashlib.sha256(data).hexdigest()
    answer = client.patch(f"/api/v1/photos/{sha}", data=data, headers={
        "Authorization": f"Bearer {login.get_json()['token']}", "Upload-Offset": "0",
        "Upload-Length": str(len(data)), "Content-Type": "application/offset+octet-stream"})
    assert answer.status_code == 204, answer.get_data(as_text=True)
    return sha


def test_the_case_page_counts_received_photos_and_serves_the_held_ones(pages):
    held = upload(pages, png("red"))
    missing = hashlib.sha256(b"never uploaded").hexdigest()
    event_id = event_in("dispatched", unit="fire", photos=[held, missing])
    rectified_photo = upload(pages, png("green"))
    add_action(event_id, "rectify", "unit1", note="已整改", photos=[rectified_photo])
    log_in(pages, "supervisor1")
    page = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    assert "已收到 2 / 3 张照片" in page
    assert f"/cases/{event_id}/photos/{held}?size=thumb" in page
    assert f"/cases/{event_id}/photos/{rectified_photo}?size=thumb" in page
    assert f'title="{missing}"' in page and f"/photos/{missing}?size" not in page
    thumb = pages.get(f"/cases/{event_id}/photos/{held}?size=thumb")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    thumb.close()
    full = pages.get(f"/cases/{event_id}/photos/{held}")
    assert full.status_code == 200 and hashlib.sha256(full.get_data()).hexdigest() == held
    full.close()
    assert pages.get(f"/cases/{event_id}/photos/{missing}").status_code == 404


def test_a_photo_is_served_only_through_a_case_that_refers_to_it_and_the_user_may_see(pages):
    sha = upload(pages, png("blue"))
    own = event_in("dispatched", unit="fire", photos=[sha])
    other = event_in("dispatched", unit="city_management", photos=[sha])
    unrelated = event_in("dispatched", unit="fire")
    log_in(pages, "unit1")
    answer = pages.get(f"/cases/{own}/photos/{sha}")
    assert answer.status_code == 200
    answer.close()
    assert pages.get(f"/cases/{other}/photos/{sha}").status_code == 404  # not their case
    assert pages.get(f"/cases/{unrelated}/photos/{sha}").status_code == 404  # the case does not refer to it
    log_in(pages, "worker1")
    assert pages.get(f"/cases/{own}/photos/{sha}").status_code == 403
