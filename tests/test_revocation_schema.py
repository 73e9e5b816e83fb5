"""schemathesis against the whole published OpenAPI schema (card APs and revocations), in-process
over WSGI, with a real key: no server error, and answers conform to the schema."""

import hashlib
import secrets

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection

from cardap.apikeys import find_key
from cardap.models import ProviderAPIKey
from revocation import services
from tests import factories
from tests.revocation_support import at, fast_passwords, install, write  # noqa: F401

# Cases are generated (with their auth) before fixtures run, so the key is fixed here and
# stored, hashed, by the fixture; find_key must accept it like an issued one.
PREFIX = secrets.token_hex(4)
TOKEN = f"cak_{PREFIX}_{secrets.token_urlsafe(32)}"


@pytest.fixture
def keep_test_connection():
    """Django's test client stops requests from closing the connection that holds the test's
    transaction; a plain WSGI call does not, so do the same here."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_data(world, tmp_path, settings, keep_test_connection):
    settings.REVOCATION_API_RATE = "100000/min"
    ap = factories.card_ap(world.city)
    install("AB01", ap, "U-1")
    install("AB02", ap, "U-2")
    services.apply_feed(
        path=write(
            tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9)), ("AB02", "revoked", "stolen", at(1, 10))]
        )
    )
    ProviderAPIKey.objects.create(
        provider=world.city,
        name="schemathesis",
        prefix=PREFIX,
        key_hash=hashlib.sha256(TOKEN.encode()).hexdigest(),
    )
    assert find_key(TOKEN).provider == world.city
    factories.card_ap(world.city, name="市の広域AP")
    factories.card_ap(world.shop, name="店舗AP")  # another provider's: never listed, a 404 by AID


# The schema the service publishes, fetched in-process (no database needed to build it).
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@schema.auth()
class ProviderKey:
    """A real key issued in the test database; schemathesis applies it and knows it did."""

    def get(self, case, context):
        return TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_provider_api_conforms_and_never_fails(case, api_data):
    response = case.call()
    # Every check but one: a repeated query parameter (?limit=1&limit=2) counts once, the last
    # one, as everywhere in Django; schemathesis reads it as a schema-violating array.
    case.validate_response(response, excluded_checks=[negative_data_rejection])
    assert response.status_code < 500


def test_the_whole_schema_is_covered():
    assert {op.path for op in (r.ok() for r in schema.get_all_operations())} >= {
        "/api/v1/card-aps/",
        "/api/v1/card-aps/{aid}/",
        "/api/v1/revocations/",
        "/api/v1/revocations/snapshot/",
    }
