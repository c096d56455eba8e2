"""The route models' enums are their owners' (storage and jobs modules a model may not import)."""


def test_route_model_enums_are_their_owners():
    from chalicelib.models import api
    from chalicelib.storage import migration, upload_issues

    assert api.ISSUE_KINDS == (upload_issues.CONFLICT, upload_issues.REJECTED)
    assert api.STAGING_ENTITIES[-1] == migration.UNKNOWN_ENTITY


def test_a_date_range_is_checked_on_to():
    import pytest

    from chalicelib.domain.errors import ValidationError
    from chalicelib.models.api import Approval, TimeRegistrationQuery
    from chalicelib.models.base import parse

    def fields(model, data):
        with pytest.raises(ValidationError) as refused:
            parse(model, data)
        return {e.path: e.message for e in refused.value.errors}

    week = {"from": "2026-09-28", "to": "2026-10-04"}
    assert fields(TimeRegistrationQuery, {"store_id": "S1", "from": "2026-08-01", "to": "2026-10-04"}) == {
        "to": "the range may span at most 62 days"}
    assert fields(Approval, {"store_id": "S1", "from": "2026-10-04", "to": "2026-09-28"}) == {
        "to": "must not be before from"}
    assert parse(Approval, {"worker_id": "W1", "from": "2026-01-01", "to": "2026-12-31"}).selector == "worker_id"
    assert fields(Approval, {"worker_ids": ["W1"], "from": "2026-01-01", "to": "2026-12-31"}) == {
        "to": "the range may span at most 62 days"}
    assert fields(Approval, {"worker_ids": ["W1", "W1"], **week}) == {"worker_ids[1]": "worker W1 is listed twice"}
    assert fields(Approval, week) == {"worker_id": "one of worker_id, worker_ids, store_id or store_ids is required"}
    assert parse(Approval, {"store_ids": ["S1", "S2"], **week}).selector == "store_ids"
    assert fields(Approval, {"store_ids": ["S1", "S2", "S1"], **week}) == {"store_ids[2]": "store S1 is listed twice"}
    assert fields(Approval, {"store_ids": [], **week}) == {"store_ids": "must be a list of 1 to 50 store ids"}
    assert fields(Approval, {"store_ids": [f"S{i}" for i in range(51)], **week}) == {
        "store_ids": "must be a list of 1 to 50 store ids"}
    assert fields(Approval, {"store_ids": ["S1"], "from": "2026-09-28", "to": "2026-10-12"}) == {
        "to": "the range may span at most 14 days"}
    assert fields(Approval, {"store_id": "S1", "store_ids": ["S2"], **week}) == {
        "store_ids": "give only one of worker_id, worker_ids, store_id or store_ids (got store_id too)"}
