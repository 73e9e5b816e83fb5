import pytest

from tests.loading.jobs_support import open_all_day


@pytest.fixture
def open_hours(settings):
    open_all_day(settings)
