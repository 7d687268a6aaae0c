"""``X-Meerkat-Request-Id`` bookkeeping: an id already in flight is upstream's 409
``DUPLICATE_REQUEST_ID``; an empty id is 400; the id is free again once its request ends."""

from __future__ import annotations

import pytest

from meerkat.errors import ErrorCode, MeerkatError
from surfaces.rest.cancellation import CancellableRequests


def test_an_id_in_flight_twice_is_duplicate_request_id_and_free_after():
    requests = CancellableRequests(service=None)  # type: ignore[arg-type]  # tracking needs no service
    with requests.track("req-1") as first:
        assert first is not None and first.request_id == "req-1"
        with pytest.raises(MeerkatError) as twice:
            with requests.track(" req-1 "):
                pass
        assert twice.value.code == ErrorCode.DUPLICATE_REQUEST_ID
        assert twice.value.spec.http_status == 409 and twice.value.to_dict()["code"] == "DUPLICATE_REQUEST_ID"
        assert twice.value.details == {"request_id": "req-1"}
    with requests.track("req-1") as again:  # the first one ended: the id can be used again
        assert again is not None
    with pytest.raises(MeerkatError) as empty:
        with requests.track("  "):
            pass
    assert empty.value.code == ErrorCode.INVALID_PARAMS
