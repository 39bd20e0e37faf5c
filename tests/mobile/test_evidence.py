"""Evidence for the one who verifies (issue 13): the unit's rectification photos reach the reporter's tablet.

Against the real server (Flask test client): a worker reports, a supervisor dispatches, the unit rectifies
with a photo on the pages; the worker's next sync fetches its thumbnail within the budget, the case shows the
rectification's note and photos, a full photo comes on request, and offline the tablet says what is missing.
"""

from __future__ import annotations

import pytest

from mobile import evidence
from mobile.presenters import CasePresenter, InputError, ReportPresenter
from mobile.transport import TransportError
from server.cases import service as cases_service
from tests.photos.helpers import make_jpeg

from .test_field_app_server import database_url, server_case, sync, tablet, user  # noqa: F401 (fixtures)


def rectified_case(tablet_parts, photos=1, seed=10):
    """A case the worker reported, dispatched and rectified on the pages with photos; the tablet synced since."""
    core, runner, schedule = tablet_parts
    event_id = ReportPresenter(core).save(grid="G-0101", category="fire_hazard", description="灭火器过期",
                                          no_location_reason="indoors")
    sync(runner, schedule)
    cases_service.record_action(user("supervisor1"), server_case(event_id), "dispatch", unit="fire",
                                deadline="2099-01-01T00:00:00.000Z")
    cases_service.record_action(user("unit1"), server_case(event_id), "rectify", note="已更换灭火器",
                                photos=[make_jpeg(640, 480, noise=True, seed=seed + n) for n in range(photos)])
    return event_id, sync(runner, schedule)


def test_the_rectification_photos_are_fetched_with_the_case_and_shown_before_verifying(tablet):
    core = tablet[0]
    event_id, outcome = rectified_case(tablet, photos=2)
    view = CasePresenter(core, event_id).view()
    assert view.can_verify and view.rectification is not None
    assert view.rectification.note == "已更换灭火器" and len(view.rectification.photos) == 2
    for ref in view.rectification.photos:
        assert ref.thumbnail and not ref.full  # the thumbnail came with the sync; the full photo did not
    assert 0 < core.photo_cache_use() < 200_000
    # A full photo on request, kept afterwards; it hashes to its name (photo_bytes checks it).
    sha = view.rectification.photos[0].sha256
    ref = CasePresenter(core, event_id).fetch_full_photo(sha)
    assert ref.full and ref.path.endswith(f"{sha}.jpg")
    assert CasePresenter(core, event_id).view().rectification.photos[0].full


def test_the_budget_bounds_what_is_fetched_and_closed_cases_make_room(tablet):
    core = tablet[0]
    first, _ = rectified_case(tablet, photos=1, seed=20)
    second, _ = rectified_case(tablet, photos=1, seed=30)
    first_sha = CasePresenter(core, first).view().rectification.photos[0].sha256
    second_sha = CasePresenter(core, second).view().rectification.photos[0].sha256
    # Forget the second thumbnail, as if the sync had not fetched it yet.
    core.photos.thumbnail_path(second_sha).unlink()
    with core.store._transaction():
        core.store._db.execute("DELETE FROM fetched_photos WHERE sha256 = ?", (second_sha,))
    used = core.photo_cache_use()

    def fetch(budget):
        return evidence.fetch_thumbnails(core.store, core.photos, core.transport(), core.user_id, budget_bytes=budget)

    # A budget that holds one thumbnail: the first case still needs its own, so the second waits.
    report = fetch(used)
    assert (report.fetched, report.over_budget) == (0, 1)
    assert CasePresenter(core, first).view().rectification.photos[0].thumbnail
    # Once the first case is closed its thumbnail is not needed any more: it makes room for the second.
    CasePresenter(core, first).verify(True, "复查合格")
    # (Both thumbnails are of 640 × 480 photos of noise: one is within half and one and a half times the other.)
    report = fetch(used * 3 // 2)
    assert (report.fetched, report.over_budget) == (1, 0)
    assert not core.photos.thumbnail_path(first_sha).exists()
    assert CasePresenter(core, second).view().rectification.photos[0].thumbnail
    assert core.photo_cache_use() <= used * 3 // 2


def test_offline_the_tablet_says_what_is_not_there(tablet, monkeypatch):
    core, runner, schedule = tablet
    event_id, _ = rectified_case(tablet, photos=1, seed=40)
    sha = CasePresenter(core, event_id).view().rectification.photos[0].sha256

    def offline(*args, **kwargs):
        raise TransportError("no network")

    monkeypatch.setattr(type(core.transport()), "photo_bytes", offline)
    with pytest.raises(InputError) as caught:
        CasePresenter(core, event_id).fetch_full_photo(sha)
    assert caught.value.code == "offline"
    with pytest.raises(InputError) as caught:
        CasePresenter(core, event_id).fetch_full_photo("0" * 64)
    assert caught.value.code == "not_in_case"


def test_the_budget_setting_is_checked(tablet):
    core = tablet[0]
    for bad in (0, 4, 2001, "50", True, 5.5):
        with pytest.raises(ValueError):
            core.save_settings(photo_cache_mb=bad)
    assert core.save_settings(photo_cache_mb=100).photo_cache_mb == 100


def test_a_supervised_case_says_so_with_its_new_deadline(tablet):
    core, runner, schedule = tablet
    event_id, _ = rectified_case(tablet, photos=0)
    cases_service.record_action(user("supervisor1"), server_case(event_id), "supervise",
                                deadline="2099-02-01T00:00:00.000Z", note="逾期未改")
    sync(runner, schedule)
    view = CasePresenter(core, event_id).view()
    assert view.supervised and view.deadline == "2099-02-01T00:00:00.000Z"
