"""The shared test world (DESIGN.md): two live providers and one user per role (J-LIS staff, provider
admin, terminal admin, operator, a system-wide auditor and an auditor of one provider, and an
operator and admin of the other provider), so every endpoint is tested for the allowed role, a
forbidden role and a user of another provider. Rows beyond these come from tests/factories.py."""
from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from cardap.models import Provider
from operators.models import Operator
from tests import factories
from tests.factories import PASSWORD  # noqa: F401 (tests import it from here)


@dataclass
class World:
    city: Provider  # a municipality
    shop: Provider  # a private business (the "other provider")
    jlis: Operator
    city_admin: Operator
    city_operator: Operator
    shop_admin: Operator
    shop_operator: Operator
    auditor: Operator  # system-wide (no provider)
    city_terminal_admin: Operator
    city_auditor: Operator  # auditor of テスト市 only


def make_operator(username: str, role: str, provider: Provider | None) -> Operator:
    return factories.operator(username, role, provider)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """On SQLite the test database is a file, so that a server started in a subprocess (the relay
    tests' ASGI server) sees the same data; PostgreSQL's test database is visible anyway."""
    import os

    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3" and not db.get("TEST", {}).get("NAME"):
        db.setdefault("TEST", {})["NAME"] = str(settings.VAR_DIR / f"test-{os.getpid()}.sqlite3")


@pytest.fixture(autouse=True)
def _default_language():
    # A request in English leaves English active in the thread: every test starts in Japanese.
    from django.utils import translation

    translation.activate("ja")
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _store_key_outside_demo_mode(settings):
    # A test that turns demo mode off still opens the authenticator secrets its world sealed
    # under the demo store key (operators.otp_secrets); production always sets its own key.
    from operators.keys import DEMO_KEYSTORE_KEY

    if not settings.KEYSTORE_KEY:
        settings.KEYSTORE_KEY = DEMO_KEYSTORE_KEY.decode()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is deliberately slow; tests only need passwords to verify.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db) -> World:
    city = Provider.objects.create(
        name="テスト市", kind=Provider.Kind.MUNICIPALITY, local_gov_code="131016",
        status=Provider.Status.LIVE,
        failure_email="fail@city.example.jp", maintenance_email="mnt@city.example.jp",
    )
    shop = Provider.objects.create(
        name="テスト商店", kind=Provider.Kind.PRIVATE, status=Provider.Status.LIVE,
        failure_email="fail@shop.example.jp", maintenance_email="mnt@shop.example.jp",
    )
    R = Operator.Role
    return World(
        city=city,
        shop=shop,
        jlis=make_operator("jlis", R.JLIS_STAFF, None),
        city_admin=make_operator("city_admin", R.PROVIDER_ADMIN, city),
        city_operator=make_operator("city_op", R.OPERATOR, city),
        shop_admin=make_operator("shop_admin", R.PROVIDER_ADMIN, shop),
        shop_operator=make_operator("shop_op", R.OPERATOR, shop),
        auditor=make_operator("auditor", R.AUDITOR, None),
        city_terminal_admin=make_operator("city_term", R.TERMINAL_ADMIN, city),
        city_auditor=make_operator("city_auditor", R.AUDITOR, city),
    )


def signed_in(user: Operator) -> Client:
    """A client signed in with password and a verified second factor."""
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    assert device is not None
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session["operators.reauth_at"] = time.time()  # as after a real sign-in: the code was just entered
    session.save()
    return client


@pytest.fixture
def login():
    return signed_in


@pytest.fixture
def celery_worker_real(transactional_db):
    """A real Celery worker (in a thread) consuming from the configured broker."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker
