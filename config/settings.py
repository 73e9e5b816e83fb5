"""Settings for the card AP loading service, all driven by environment variables.

Embedded defaults (SQLite, tasks run in-process, console mail) let a first run work with nothing
installed; production sets DATABASE_URL, REDIS_URL and SECRET_KEY. See README "Configuration".
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import env_bool, env_int, env_list, env_str
from operators.keys import is_demo_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CARDAP_VAR_DIR", str(BASE_DIR / "var")))

# Demo mode: the embedded first-run configuration (`make run`) and the test suite.
DEMO = env_bool("CARDAP_DEMO", False)
DEBUG = env_bool("DEBUG", False)

_INSECURE_KEY = "insecure-demo-key-never-use-in-production-0123456789abcdef"
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or DEMO):
        raise ImproperlyConfigured(
            "SECRET_KEY is required in production (set DEBUG=1 or CARDAP_DEMO=1 for a local demo)"
        )
    SECRET_KEY = _INSECURE_KEY
elif len(SECRET_KEY) < 50 and not (DEBUG or DEMO):
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters in production")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if (DEBUG or DEMO) else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "operators.admin_apps.JLISAdminConfig",  # django.contrib.admin with the J-LIS site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the API docs page's script, served here rather than from a CDN
    "csp",
    "django_otp",
    "operators.otp_apps.OTPTOTPConfig",  # django-otp's plugins, their admin sections in Japanese
    "operators.otp_apps.OTPStaticConfig",
    "cardap",
    "operators",
    "loading",
    "revocation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # outermost but one: error pages get the policy too
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "operators.middleware.OTPRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cardap.context_processors.maintenance_banner",
            ],
        },
    },
]

# --- Database: PostgreSQL in production, a SQLite file by default -------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'cardap.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Write transactions take SQLite's write lock when they begin, so concurrent ones (many agents
    # polling one ASGI process) wait their turn instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
# A pool of PostgreSQL connections per process (psycopg 3's, through Django): under ASGI a request
# may run on any thread, so persistent connections (DB_CONN_MAX_AGE) are not reused, and opening
# a connection costs the PostgreSQL server more CPU than the queries of a relay request do.
DB_POOL_SIZE = env_int("DB_POOL_SIZE", 0, minimum=0, maximum=200)
if DB_POOL_SIZE:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DB_POOL_SIZE is for PostgreSQL (DATABASE_URL=postgres://...)")
    if DATABASES["default"].get("CONN_MAX_AGE"):
        raise ImproperlyConfigured("DB_POOL_SIZE and DB_CONN_MAX_AGE exclude each other: set one")
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DB_POOL_SIZE),
        "max_size": DB_POOL_SIZE,
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, cache (lockout counters, rate limits) ---------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL or "cache+memory://")
# Without a broker, tasks run in-process so a first run needs no server.
CELERY_TASK_ALWAYS_EAGER = not (REDIS_URL or env_str("CELERY_BROKER_URL"))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Authentication ----------------------------------------------------------------------------
AUTH_USER_MODEL = "operators.Operator"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "operators.backends.JLISRoleBackend",  # the J-LIS staff role carries every admin permission
]
LOGIN_URL = "operators:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "operators:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "CardAP")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # nobody, J-LIS staff included, reads an operator's TOTP secret
# Session ends after this many seconds without activity (R9.3).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 15 * 60, minimum=60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
LOCKOUT_MAX_FAILURES = env_int("LOCKOUT_MAX_FAILURES", 5, minimum=1)
LOCKOUT_SECONDS = env_int("LOCKOUT_SECONDS", 15 * 60, minimum=1)
# Reverse proxies in front of the service (docker-compose: the TLS proxy): the client address is
# then taken from X-Forwarded-For, counting this many hops from the right (0: REMOTE_ADDR only).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=5)
# Several operators often share one office address, so the per-address limit is higher.
LOCKOUT_MAX_FAILURES_PER_ADDRESS = env_int(
    "LOCKOUT_MAX_FAILURES_PER_ADDRESS", 4 * LOCKOUT_MAX_FAILURES, minimum=1
)
REAUTH_SECONDS = env_int("REAUTH_SECONDS", 5 * 60, minimum=30)
# Paths reachable without a signed-in, OTP-verified operator (operators.middleware). Token-
# authenticated endpoints (provider API, terminal agent) authenticate in their own views.
LOGIN_EXEMPT_PREFIXES = [
    "/healthz",
    "/static/",
    "/i18n/",
    "/accounts/login/",
    "/accounts/otp/",
    "/accounts/enrol/",
    "/api/",
    "/agent/",
    "/relay/",
    "/favicon.ico",
]

# --- Internationalisation: Japanese first, English available; Japan time ------------------------
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("日本語")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"  # Japan time: the one time zone (Celery and the service calendar use it)
CELERY_TIMEZONE = TIME_ZONE
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
# Demo and debug runs serve static files straight from the source tree (no collectstatic).
WHITENOISE_USE_FINDERS = DEBUG or DEMO
WHITENOISE_AUTOREFRESH = DEBUG or DEMO
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if (DEBUG or DEMO)
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Mail (maintenance notices, failure notices) -----------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "config.mail.SummaryConsoleBackend"  # one line per mail, not the MIME message in base64
    if (DEBUG or DEMO)
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "cardap@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
JLIS_NOTICE_EMAILS = env_list("JLIS_NOTICE_EMAILS", ["jlis-ops@localhost"])

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.LimitOffsetPagination",  # at most 1000 a page
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Card AP loading service API",
    "DESCRIPTION": "Provider-facing REST API of the My Number Card application loading service.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "REDOC_DIST": "SIDECAR",
}

# --- Revocation feed (R6): daily sync from the card call centre, provider pulls ----------------
# Keys: base64, PEM or a path to a file holding either; demo mode falls back to DEMO-ONLY keys.
REVOCATION_FEED_PUBKEY = env_str("REVOCATION_FEED_PUBKEY")
REVOCATION_SIGNING_KEY = env_str("REVOCATION_SIGNING_KEY")
# Where the daily sync takes feeds from: an HTTPS URL (index.txt + files) or else a directory.
REVOCATION_FEED_URL = env_str("REVOCATION_FEED_URL")
REVOCATION_FEED_DIR = Path(env_str("REVOCATION_FEED_DIR", str(VAR_DIR / "revocation-feeds")))
REVOCATION_FEED_MAX_BYTES = env_int("REVOCATION_FEED_MAX_BYTES", 512 * 1024 * 1024, minimum=1024)
REVOCATION_FEED_MAX_CHANGES = env_int("REVOCATION_FEED_MAX_CHANGES", 5_000_000, minimum=1)
REVOCATION_SYNC_TIME = env_str("REVOCATION_SYNC_TIME", "04:30")  # Japan time, HH:MM
try:
    _sync_hour, _sync_minute = (int(part) for part in REVOCATION_SYNC_TIME.split(":"))
    if not (0 <= _sync_hour < 24 and 0 <= _sync_minute < 60):
        raise ValueError
except ValueError:
    raise ImproperlyConfigured(
        f"REVOCATION_SYNC_TIME={REVOCATION_SYNC_TIME!r} must be HH:MM (Japan time)"
    ) from None
CELERY_BEAT_SCHEDULE["revocation-daily-sync"] = {
    "task": "revocation.sync",
    "schedule": crontab(hour=_sync_hour, minute=_sync_minute),
}
# Provider API rate limit per API key (DRF throttle rate, e.g. "120/min").
REVOCATION_API_RATE = env_str("REVOCATION_API_RATE", "120/min")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"revocations": REVOCATION_API_RATE}

# --- The relay (docs/relay-protocol.md): terminal agents' long poll and supervision -------------
# How long a poll waits for work before answering 204 (the agent then polls again at once).
RELAY_POLL_SECONDS = env_int("RELAY_POLL_SECONDS", 25, minimum=1, maximum=120)
# A running conversation with no word from its agent for this long is interrupted.
RELAY_AGENT_SILENCE_SECONDS = env_int("RELAY_AGENT_SILENCE_SECONDS", 90, minimum=5)
# A queued conversation no agent picked up within this long is interrupted (agent offline).
RELAY_PICKUP_SECONDS = env_int("RELAY_PICKUP_SECONDS", 120, minimum=5)
# How often beat runs that supervision.
RELAY_SUPERVISE_SECONDS = env_int("RELAY_SUPERVISE_SECONDS", 30, minimum=1)
CELERY_BEAT_SCHEDULE["loading-supervise-conversations"] = {
    "task": "loading.supervise_conversations",
    "schedule": float(RELAY_SUPERVISE_SECONDS),
}

# --- Security: production hardening (manage.py check --deploy passes) --------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "config.views.csrf_failure"
if not (DEBUG or DEMO):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Content-Security-Policy on every response (django-csp): scripts, styles, images and forms from
# this origin only; no inline script or style (page behaviour lives in static/js).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Card key store: region master keys encrypted at rest under this key (see gpcard.keystore).
# Also the root of the operators' authenticator secrets at rest (operators.otp_secrets).
KEYSTORE_KEY = env_str("KEYSTORE_KEY")
if not KEYSTORE_KEY and not (DEBUG or DEMO):
    raise ImproperlyConfigured("KEYSTORE_KEY is required in production (32 bytes in base64; see README)")
if is_demo_key(KEYSTORE_KEY) and not (DEBUG or DEMO):
    raise ImproperlyConfigured(
        "KEYSTORE_KEY is the published demo key: generate a key of your own (see README)"
    )

# J-LIS DAP key (ECDSA P-256 PEM) signing custom card AP load files; a public demo key in demo mode.
DAP_KEY_PATH = env_str("DAP_KEY_PATH")

# --- Operations calendar (R8) -------------------------------------------------------------------
SERVICE_OPEN_TIME = env_str("SERVICE_OPEN_TIME", "08:00")  # Japan time
SERVICE_CLOSE_TIME = env_str("SERVICE_CLOSE_TIME", "22:00")
# Year-end closure as MM-DD..MM-DD (inclusive, may wrap the new year).
SERVICE_CLOSED_PERIOD = env_str("SERVICE_CLOSED_PERIOD", "12-29..01-03")
MAINTENANCE_NOTICE_BUSINESS_DAYS = env_int("MAINTENANCE_NOTICE_BUSINESS_DAYS", 10, minimum=0)
MAINTENANCE_BANNER_DAYS = env_int("MAINTENANCE_BANNER_DAYS", 30, minimum=1)
# Demo mode opens the service hours (card operations at any hour; maintenance windows still apply)
# and says so in a banner. Only in demo mode: production always keeps the hours above.
DEMO_OPEN_ALL_HOURS = env_bool("DEMO_OPEN_ALL_HOURS", DEMO)
if DEMO_OPEN_ALL_HOURS and not DEMO:
    raise ImproperlyConfigured("DEMO_OPEN_ALL_HOURS=1 is allowed only in demo mode (CARDAP_DEMO=1)")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"expected_refusals": {"()": "config.logfilters.ExpectedRefusals"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["expected_refusals"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
