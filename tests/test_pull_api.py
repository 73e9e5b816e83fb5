"""The framing both provider feeds share (cardap.pull_api): the cursor's quick path for plain
numbers gives what the serializer gives, and everything else goes to the serializer's message."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from rest_framework import exceptions
from rest_framework.request import Request

from cardap.pull_api import CursorQuerySerializer, ProviderFeedView, not_modified, strong_etag

CASES = [
    {},
    {"after": "0"},
    {"after": "17", "limit": "1"},
    {"after": "007", "limit": "10000"},
    {"after": str(2**62)},
    {"after": str(2**62 + 1)},
    {"after": "-1"},
    {"after": "1.0"},
    {"after": " 5"},
    {"after": "５"},  # a full-width digit: not a plain number
    {"after": ""},
    {"limit": "0"},
    {"limit": "10001"},
    {"limit": "abc"},
    {"after": "1", "other": "x"},
]


def serializer_says(params):
    query = CursorQuerySerializer(data=params)
    if not query.is_valid():
        return ("error", sorted(query.errors))
    return (query.validated_data["after"], query.validated_data["limit"])


@pytest.mark.parametrize("params", CASES)
def test_cursor_matches_the_serializer(params):
    request = Request(RequestFactory().get("/", params))
    try:
        got = ProviderFeedView().cursor(request)
    except exceptions.ValidationError as exc:
        got = ("error", sorted(exc.detail))  # type: ignore[arg-type]
    assert got == serializer_says(request.query_params)  # what the feeds always validated


def test_not_modified_reads_lists_and_star():
    etag = strong_etag("a", 1)
    assert etag.startswith('"') and len(etag) == 34 and etag != strong_etag("a", 2)
    for header, expected in ((etag, True), (f'"x", {etag}', True), ("*", True), ('"x"', False), ("", False)):
        request = Request(RequestFactory().get("/", HTTP_IF_NONE_MATCH=header))
        assert not_modified(request, etag) is expected


def test_the_rate_limit_holds_under_concurrent_requests(settings):
    """Requests of one key arriving together (several workers or threads) are all counted: the
    limit is one atomic count in the cache, not a read of the key's history then a write of it
    (which let concurrent requests overwrite each other's count and pass the limit)."""
    import threading
    from dataclasses import dataclass

    from django.core.cache import cache

    from cardap.apikeys import ProviderClient
    from cardap.pull_api import PerAPIKeyThrottle

    settings.REVOCATION_API_RATE = "5/min"

    @dataclass
    class Key:
        prefix: str = "c0ncurr1"

    class View:
        bucket = "test"

    user = ProviderClient(provider=None, key=Key())  # type: ignore[arg-type]
    cache.clear()
    allowed: list[bool] = []
    start = threading.Barrier(20)

    def one() -> None:
        request = Request(RequestFactory().get("/"))
        request.user = user
        start.wait()
        allowed.append(PerAPIKeyThrottle().allow_request(request, View()))

    for _round in range(3):  # three bursts of 20 within the same minute
        threads = [threading.Thread(target=one) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    cache.clear()
    assert len(allowed) == 60 and allowed.count(True) == 5
