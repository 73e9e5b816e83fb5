"""Settings for bench/revocation_pull.py's web process: the service's own, plus the previous
delta view mounted beside the current one (bench/pull_urls.py) for a before/after in one run."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "pull_urls"
LOGIN_EXEMPT_PREFIXES = [*LOGIN_EXEMPT_PREFIXES, "/bench-legacy/api/"]  # noqa: F405 (token-authenticated)
