"""The photo calls of /api/v1: missing, HEAD, PATCH, GET and thumb, their errors, and who may see what."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from .helpers import (LIMIT, OCTET, LiveServer, bearer, make_jpeg, put_action, put_event, race, sha, upload)


def patch(client, token, name, body, *, offset=0, length=None, content_type=OCTET):
    headers = {**bearer(token), "Content-Type": content_type, "Upload-Offset": str(offset)}
    if length is not None:
        headers["Upload-Length"] = str(length)
    return client.patch(f"/api/v1/photos/{name}", data=body, headers=headers)


def error(answer) -> tuple[int, str]:
    return answer.status_code, answer.json["error"]["code"]


# --- upload ---------------------------------------------------------------------------------------

def test_missing_lists_only_what_the_server_does_not_hold_complete(client, tokens):
    token = tokens["worker1"]
    held, partial, absent = make_jpeg(seed=1, noise=True), make_jpeg(seed=2, noise=True), make_jpeg(seed=3, noise=True)
    assert upload(client, token, held).status_code == 204
    assert patch(client, token, sha(partial), partial[:100], length=len(partial)).status_code == 204
    answer = client.post("/api/v1/photos/missing", json={"sha256": [sha(held), sha(partial), sha(absent)]},
                         headers=bearer(token))
    assert answer.status_code == 200
    assert answer.json == {"missing": [sha(partial), sha(absent)]}


def test_head_tells_the_offset_and_the_length_and_404_when_nothing_is_held(client, tokens):
    token = tokens["worker1"]
    data = make_jpeg(noise=True, width=120, height=90)
    name = sha(data)
    answer = client.head(f"/api/v1/photos/{name}", headers=bearer(token))
    assert answer.status_code == 404
    patch(client, token, name, data[:500], length=len(data))
    answer = client.head(f"/api/v1/photos/{name}", headers=bearer(token))
    assert answer.status_code == 200
    assert answer.headers["Upload-Offset"] == "500" and answer.headers["Upload-Length"] == str(len(data))
    assert answer.headers["Tus-Resumable"] == "1.0.0" and answer.headers["Cache-Control"] == "no-store"


def test_a_photo_uploads_in_pieces_and_is_kept_only_when_whole(client, tokens, app):
    token = tokens["worker1"]
    data = make_jpeg(noise=True, width=200, height=150)
    name = sha(data)
    first = patch(client, token, name, data[:1000], length=len(data))
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "1000"
    second = patch(client, token, name, data[1000:], offset=1000)  # Upload-Length is known by now
    assert second.status_code == 204 and second.headers["Upload-Offset"] == str(len(data))
    from server.photos.service import blob_store

    assert blob_store().read(name) == data
    again = patch(client, token, name, b"", offset=len(data), length=len(data))
    assert again.status_code == 204, "a repeated last PATCH is answered, not refused"


def test_a_wrong_hash_is_400_and_the_upload_is_discarded(client, tokens):
    token = tokens["worker1"]
    data = make_jpeg()
    wrong = hashlib.sha256(b"another photo").hexdigest()
    answer = patch(client, token, wrong, data, length=len(data))
    assert error(answer) == (400, "hash_mismatch")
    assert client.head(f"/api/v1/photos/{wrong}", headers=bearer(token)).status_code == 404


@pytest.mark.parametrize("length", [LIMIT + 1, 10 ** 12])
def test_a_photo_over_the_limit_is_413_before_a_byte_is_read(client, tokens, length):
    answer = patch(client, tokens["worker1"], sha(b"big"), b"\xff" * 10, length=length)
    assert error(answer) == (413, "too_large")
    assert str(LIMIT) in answer.json["error"]["message"]


@pytest.mark.parametrize("body", [b"GIF89a not really", b"%PDF-1.4\n" + b"x" * 400,
                                  make_jpeg(noise=True)[:-200]], ids=["gif-ish", "pdf", "truncated-jpeg"])
def test_an_upload_that_is_not_an_image_is_415_and_discarded(client, tokens, body):
    answer = patch(client, tokens["worker1"], sha(body), body, length=len(body))
    assert error(answer) == (415, "not_an_image")
    assert client.head(f"/api/v1/photos/{sha(body)}", headers=bearer(tokens["worker1"])).status_code == 404


def test_an_image_of_too_many_pixels_is_413_and_discarded(client, tokens, monkeypatch):
    import server.photos.images as photos_module

    monkeypatch.setattr(photos_module, "MAX_PIXELS", 64 * 48 - 1)  # a decompression bomb, in miniature
    data = make_jpeg(64, 48)
    assert error(upload(client, tokens["worker1"], data)) == (413, "too_large")
    assert client.head(f"/api/v1/photos/{sha(data)}", headers=bearer(tokens["worker1"])).status_code == 404


def test_a_png_is_an_image_too(client, tokens):
    out = io.BytesIO()
    Image.new("RGB", (10, 10), (0, 255, 0)).save(out, "PNG")
    assert upload(client, tokens["worker1"], out.getvalue()).status_code == 204


def test_a_wrong_offset_is_409_with_the_offset_held(client, tokens):
    token = tokens["worker1"]
    data = make_jpeg(noise=True, width=100, height=100)
    name = sha(data)
    patch(client, token, name, data[:300], length=len(data))
    answer = patch(client, token, name, data[100:], offset=100)
    assert error(answer) == (409, "offset_mismatch")
    assert answer.json["error"]["details"] == {"offset": 300}
    assert client.head(f"/api/v1/photos/{name}", headers=bearer(token)).headers["Upload-Offset"] == "300"


def test_a_length_other_than_the_declared_one_is_409(client, tokens):
    token = tokens["worker1"]
    data = make_jpeg()
    patch(client, token, sha(data), data[:10], length=len(data))
    assert error(patch(client, token, sha(data), data[10:], offset=10, length=len(data) + 1)) == (409, "length_mismatch")


@pytest.mark.parametrize("headers, expected", [
    ({"Upload-Offset": "0", "Upload-Length": "5", "Content-Type": "application/octet-stream"},
     (415, "wrong_content_type")),
    ({"Upload-Length": "5", "Content-Type": OCTET}, (400, "invalid")),
    ({"Upload-Offset": "-1", "Upload-Length": "5", "Content-Type": OCTET}, (400, "invalid")),
    ({"Upload-Offset": "0", "Content-Type": OCTET}, (400, "invalid")),
    ({"Upload-Offset": "0", "Upload-Length": "2", "Content-Type": OCTET}, (400, "invalid")),
], ids=["content-type", "no-offset", "negative-offset", "no-length-at-first", "body-past-length"])
def test_malformed_appends_are_refused_with_the_error_shape(client, tokens, headers, expected):
    answer = client.patch(f"/api/v1/photos/{sha(b'hello')}", data=b"hello",
                          headers={**bearer(tokens["worker1"]), **headers})
    assert error(answer) == expected


def test_a_name_that_is_not_a_sha256_is_400(client, tokens):
    assert error(client.get("/api/v1/photos/not-a-hash", headers=bearer(tokens["worker1"]))) == (400, "invalid")
    assert error(client.get(f"/api/v1/photos/{'A' * 64}", headers=bearer(tokens["worker1"]))) == (400, "invalid")


@pytest.mark.parametrize("call", ["missing", "head", "patch", "get", "thumb"])
def test_an_unknown_token_is_401(client, demo, call):
    name = sha(b"x")
    headers = bearer("not-a-token")
    answer = {
        "missing": lambda: client.post("/api/v1/photos/missing", json={"sha256": [name]}, headers=headers),
        "head": lambda: client.head(f"/api/v1/photos/{name}", headers=headers),
        "patch": lambda: client.patch(f"/api/v1/photos/{name}", data=b"x", headers={
            **headers, "Content-Type": OCTET, "Upload-Offset": "0", "Upload-Length": "1"}),
        "get": lambda: client.get(f"/api/v1/photos/{name}", headers=headers),
        "thumb": lambda: client.get(f"/api/v1/photos/{name}/thumb", headers=headers),
    }[call]()
    assert answer.status_code == 401
    if call != "head":  # a HEAD answer has no body
        assert answer.json["error"]["code"] == "unauthorized"


def test_missing_validates_its_list(client, tokens):
    answer = client.post("/api/v1/photos/missing", json={"sha256": ["nope"]}, headers=bearer(tokens["worker1"]))
    assert error(answer) == (400, "invalid")
    assert "sha256" in answer.json["error"]["message"]


def test_concurrent_uploads_of_the_same_photo_over_http_end_with_one_intact_photo(app, tokens, tmp_path):
    """Six clients upload one photo at the same moment, each resuming from what HEAD says, in 8 KiB PATCHes."""
    import requests

    data = make_jpeg(noise=True, width=300, height=300)
    name = sha(data)
    token = tokens["worker1"]
    failures: list[str] = []

    def client_upload() -> None:
        with requests.Session() as session:
            for _ in range(500):
                head = session.head(f"{server.url}/api/v1/photos/{name}", headers=bearer(token))
                offset = int(head.headers["Upload-Offset"]) if head.status_code == 200 else 0
                if head.status_code == 200 and offset == len(data) and \
                        session.post(f"{server.url}/api/v1/photos/missing", json={"sha256": [name]},
                                     headers=bearer(token)).json()["missing"] == []:
                    return
                answer = session.patch(f"{server.url}/api/v1/photos/{name}", data=data[offset:offset + 8192],
                                       headers={**bearer(token), "Content-Type": OCTET,
                                                "Upload-Offset": str(offset), "Upload-Length": str(len(data))})
                if answer.status_code not in (204, 409):
                    failures.append(f"{answer.status_code} {answer.text}")
                    return
            failures.append("never finished")

    with LiveServer(app) as server:
        race(client_upload, 6)
    assert not failures
    from server.photos.service import blob_store

    assert blob_store().read(name) == data
    root = tmp_path / "photos"
    assert [p.name for p in root.rglob("*") if p.is_file()] == [name]


# --- who may see a photo --------------------------------------------------------------------------

@pytest.fixture
def photos(client, tokens):
    """Three photos on the server: one of an event in G-0101 (sent by its reporter, worker1), one of its
    rectification (sent by admin, who rectifies in test_a_unit_sees…), one no record refers to."""
    event_photo, rectify_photo, orphan = (make_jpeg(seed=s, noise=True, width=400, height=300) for s in (11, 12, 13))
    for who, data in (("worker1", event_photo), ("admin", rectify_photo), ("worker1", orphan)):
        assert upload(client, tokens[who], data).status_code == 204
    event = put_event("G-0101", [sha(event_photo)])
    return {"event": event, "event_photo": sha(event_photo), "rectify_photo": sha(rectify_photo),
            "orphan": sha(orphan), "bytes": event_photo}


@pytest.mark.parametrize("who, status", [("worker1", 200), ("worker3", 403), ("supervisor1", 200), ("admin", 200),
                                         ("unit1", 403)])
def test_a_photo_is_served_to_those_who_may_see_a_record_that_refers_to_it(client, tokens, photos, who, status):
    answer = client.get(f"/api/v1/photos/{photos['event_photo']}", headers=bearer(tokens[who]))
    assert answer.status_code == status
    if status == 200:
        assert answer.data == photos["bytes"] and answer.mimetype == "image/jpeg"
        assert answer.headers["ETag"].strip('"') == photos["event_photo"]
        assert "private" in answer.headers["Cache-Control"] and "public" not in answer.headers["Cache-Control"]
    else:
        assert answer.json["error"]["code"] == "forbidden"


def test_a_photo_no_record_refers_to_is_served_to_nobody(client, tokens, photos):
    for who in ("worker1", "supervisor1", "admin"):
        assert error(client.get(f"/api/v1/photos/{photos['orphan']}", headers=bearer(tokens[who]))) == (403, "forbidden")


def test_a_photo_the_server_does_not_hold_is_404(client, tokens, photos):
    missing = sha(b"never uploaded")
    put_event("G-0101", [missing])
    assert error(client.get(f"/api/v1/photos/{missing}", headers=bearer(tokens["worker1"]))) == (404, "not_found")


def test_a_unit_sees_the_photos_of_cases_dispatched_to_it(client, tokens, photos):
    unit = bearer(tokens["unit1"])  # the fire unit
    other = put_event("G-0201", [photos["orphan"]], reporter="worker3")
    put_action(other, "dispatch", "G-0201", unit="city_management")
    put_action(photos["event"], "dispatch", "G-0101", unit="fire")
    put_action(photos["event"], "rectify", "G-0101", actor="admin", photos=[photos["rectify_photo"]])
    assert client.get(f"/api/v1/photos/{photos['event_photo']}", headers=unit).status_code == 200
    assert client.get(f"/api/v1/photos/{photos['rectify_photo']}", headers=unit).status_code == 200
    assert client.get(f"/api/v1/photos/{photos['orphan']}", headers=unit).status_code == 403, \
        "dispatched to another unit"


def test_a_deleted_record_grants_nothing(client, tokens, photos):
    from server.sync import apply

    apply.write_as_server([apply.stamp("event", photos["event"], {"_deleted": True}, "grid:G-0101")])
    assert client.get(f"/api/v1/photos/{photos['event_photo']}", headers=bearer(tokens["worker1"])).status_code == 403


def test_the_record_hint_checks_only_that_record(client, tokens, photos):
    token = bearer(tokens["worker1"])
    url = f"/api/v1/photos/{photos['event_photo']}"
    assert client.get(url, query_string={"record": photos["event"]}, headers=token).status_code == 200
    elsewhere = put_event("G-0101", [photos["orphan"]])
    assert client.get(url, query_string={"record": elsewhere}, headers=token).status_code == 403
    assert client.get(url, query_string={"record": "nonsense"}, headers=token).status_code == 403


def test_the_thumbnail_is_made_once_and_cached_on_disk(client, tokens, photos, tmp_path, monkeypatch):
    import server.photos.images as photos_module

    url = f"/api/v1/photos/{photos['event_photo']}/thumb"
    answer = client.get(url, headers=bearer(tokens["worker1"]))
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    with Image.open(io.BytesIO(answer.data)) as thumb:
        assert max(thumb.size) == photos_module.THUMB_EDGE and thumb.size == (320, 240)
    name = photos["event_photo"]
    assert (tmp_path / "photos" / "variants" / "thumb" / name[:2] / name[2:4] / name).read_bytes() == answer.data

    def no_second_decode(*args, **kwargs):
        raise AssertionError("the thumbnail was made again")

    monkeypatch.setattr(photos_module.Image, "open", no_second_decode)
    again = client.get(url, headers=bearer(tokens["supervisor1"]))
    assert again.status_code == 200 and again.data == answer.data
    assert client.get(url, headers=bearer(tokens["worker3"])).status_code == 403


# --- the receipt, and the document ----------------------------------------------------------------

def test_a_record_says_how_many_of_its_photos_the_server_holds(client, tokens, photos):
    from server.db import db
    from server.models import Record
    from server.photos.service import photos_received

    record_id = put_event("G-0101", [photos["event_photo"], photos["orphan"], sha(b"not yet")])
    receipt = photos_received(db.session.get(Record, record_id))
    assert (receipt.held, receipt.total, receipt.missing) == (2, 3, (sha(b"not yet"),))
    assert str(receipt) == "2 of 3 photos received" and not receipt.complete
    assert str(photos_received({"photos": []})) == "0 of 0 photos received"
    assert str(photos_received({"photos": [photos["orphan"]]})) == "1 of 1 photo received"


def test_the_photo_calls_are_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").json
    paths = spec["paths"]
    assert set(paths["/api/v1/photos/{sha256}"]) == {"head", "patch", "get"}
    assert "post" in paths["/api/v1/photos/missing"] and "get" in paths["/api/v1/photos/{sha256}/thumb"]
    patch_doc = paths["/api/v1/photos/{sha256}"]["patch"]
    assert OCTET in patch_doc["requestBody"]["content"]
    assert {"204", "400", "401", "409", "413", "415"} <= set(patch_doc["responses"]) and "200" not in patch_doc["responses"]
    assert any(p["name"] == "Upload-Offset" for p in patch_doc["parameters"])
    assert paths["/api/v1/sync/push"]["post"]["responses"]["200"], "the other calls are unchanged"


def test_the_photos_of_every_kind_with_photos_are_served_to_the_grids_people(client, tokens):
    """A fixed point's check-in photo (point_visit), taken by worker1 in G-0101: worker2 of the same grid gets it,
    worker3 of another grid does not. Every kind with a `photos` field is served the same way (access.PHOTO_KINDS)."""
    from .helpers import put_record, user_id

    data = make_jpeg(seed=31, noise=True, width=300, height=200)
    assert upload(client, tokens["worker1"], data).status_code == 204
    point = put_record("fixed_point", {"grid": "G-0101", "name": "北山路口", "radius_m": 30, "every_hours": 24,
                                       "location": {"lat": 22.54, "lon": 114.05, "accuracy_m": None,
                                                    "source": "manual"}})
    put_record("point_visit", {"point": point, "worker": user_id("worker1"), "visited_at": "2026-12-06T08:00:00.000Z",
                               "method": "check_in", "photos": [sha(data)]}, "grid:G-0101")
    assert client.get(f"/api/v1/photos/{sha(data)}", headers=bearer(tokens["worker2"])).status_code == 200
    assert client.get(f"/api/v1/photos/{sha(data)}", headers=bearer(tokens["worker3"])).status_code == 403
