"""kfplatform settings: everything comes from the environment (see .env.example).

With nothing set the service runs in the embedded demo mode: SQLite in WAL mode, Celery's filesystem
broker and generated keys, all under ``var/``. ``DJANGO_DEBUG=false`` is production: it refuses to
start without a real secret key, field-encryption keys and the platform's WeChat credentials.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import secrets
import zoneinfo
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from platform_app.env import env_bool, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("KFPLATFORM_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Fail closed: production unless told otherwise. The demo (`make run`) and the tests (pytest-env in
# pyproject.toml) turn DJANGO_DEBUG on explicitly to get their generated keys and sandbox credentials.
DEBUG = env_bool("DJANGO_DEBUG", False)
PRODUCTION = not DEBUG


def _production_required(name: str, demo_value: str) -> str:
    value = env_str(name)
    if value is not None:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set when DJANGO_DEBUG is false")
    return demo_value


def _demo_file_secret(filename: str, make: Callable[[], str]) -> str:
    """A value generated once into var/ and shared by every process of the demo (O_EXCL: first wins)."""
    path = VAR_DIR / filename
    try:
        with open(path, "x", encoding="ascii") as handle:
            handle.write(make())
    except FileExistsError:
        pass
    return path.read_text(encoding="ascii").strip()


SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if SECRET_KEY is None:
    if PRODUCTION:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false")
    SECRET_KEY = _demo_file_secret("django_secret_key", lambda: secrets.token_urlsafe(50))
elif PRODUCTION and (len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure") or "change-me" in SECRET_KEY):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a real secret (32+ characters) in production")

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when DJANGO_DEBUG is false")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Before django.contrib.admin: its templates (the dashboard on the admin index) override the stock ones.
    "console",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files served from here: /api/docs/ works offline
    "django_celery_beat",
    "console.axes_app.AxesConfig",  # django-axes, named in the staff's language
    "audit",
    "authorizers",
    "kfaccounts",
    "webhooks",
    "cleanup",
    "observability",
]
# The simulator and the demo runner are development tools: present in a checkout (the demo, the
# tests), absent from the wheel and the production image, so their commands exist only where they do.
INSTALLED_APPS += [name for name in ("sandbox", "devtools") if importlib.util.find_spec(name) is not None]

MIDDLEWARE = [
    "observability.middleware.RequestContextMiddleware",
    # The client's address from X-Forwarded-For when the peer is one of TRUSTED_PROXIES (client_ip.py).
    "platform_app.client_ip.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads a body: an oversized one under /api/ is a JSON 413, not Django's HTML 400.
    "platform_app.api_errors.ApiBodyLimit",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # The merchant API answers in English whatever Accept-Language says (platform_app/api_language.py).
    "platform_app.api_language.ApiInEnglish",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Input no check anticipated (a value the database refuses, JSON too deep) answers 400, not 500.
    "platform_app.api_errors.BadInputGuard",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

# --- staff accounts ----------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username/address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes, two tiers (platform_app/axes_tiers.py): AXES_FAILURE_LIMIT wrong passwords for one
# username from one address lock that pair out, AXES_IP_FAILURE_LIMIT from one address over any
# usernames lock the address; either for AXES_COOLOFF_MINUTES. Never a username alone: guessing from
# many addresses cannot lock a known account out for everyone. The address is the client's
# (TRUSTED_PROXIES below). Attempts live in the database (no cache needed), so each test database
# starts with none and tests cannot lock each other out.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_IP_FAILURE_LIMIT = env_int("AXES_IP_FAILURE_LIMIT", 30, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["ip_address", ["username", "ip_address"]]  # the order axes_tiers.py reads
AXES_HANDLER = "platform_app.axes_tiers.TieredLockoutHandler"
AXES_CLIENT_IP_CALLABLE = "platform_app.client_ip.axes_client_ip"
# Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR networks, comma-separated);
# default none: the peer is the client. See docs/operations.md for the nginx setup.
try:
    TRUSTED_PROXIES = tuple(ipaddress.ip_network(n, strict=False) for n in env_list("TRUSTED_PROXIES", []))
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES must list addresses or CIDR networks: {exc}") from None
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "console/locked_out.html"

ROOT_URLCONF = "platform_app.urls"
WSGI_APPLICATION = "platform_app.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context.platform_alerts",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL", "sqlite:///var/db.sqlite3", schemes=("sqlite", "postgres", "postgresql", "pgsql")
)
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    name = Path(_db["NAME"] or "var/db.sqlite3")
    _db["NAME"] = str(name if name.is_absolute() else BASE_DIR / name)
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so two writers queue on busy_timeout instead of
        # one failing with "database is locked" when it upgrades a read transaction.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
else:
    _db.setdefault("OPTIONS", {})
    _db["CONN_HEALTH_CHECKS"] = True
if env_str("DATABASE_TEST_NAME"):
    _db["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME")}
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not shared-cache memory: threads and processes in tests then lock like production does.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, locks ------------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss", "unix"))
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "kfplatform") or "kfplatform"
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
else:
    # A file cache is shared by every process of the embedded demo (throttling must hold across them).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- celery ------------------------------------------------------------------------------------
_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=10)
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", "filesystem://", schemes=("filesystem", "redis", "rediss", "amqp", "amqps", "pyamqp")
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "platform_app.broker:Transport"  # kombu's, with atomic message files
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # kombu polls the folder; its 1 s default caps a worker at a few messages a second.
        "polling_interval": 0.05,
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # An unacknowledged message (its worker died) comes back after this long. Tied to the task time
    # limit: no healthy task runs longer, so a shorter value would hand running work to a second
    # worker, a longer one (Redis's 1 h default) only delays recovery. Deletions do not wait for it:
    # their rows are the truth and the sweeper re-sends them (DELETION_RESEND_SECONDS).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _TASK_TIME_LIMIT + 60}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the database rows are the source of truth, not a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = _TASK_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = _TASK_TIME_LIMIT * 4 // 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep each worker thread's database connection between tasks (Celery's Django fix-up otherwise
# closes it before and after every task: a new PostgreSQL connection per task). Django's own
# CONN_MAX_AGE and health checks still recycle it.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000, minimum=0)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- deletions ---------------------------------------------------------------------------------
DELETION_MAX_TRANSIENT_FAILURES = env_int("DELETION_MAX_TRANSIENT_FAILURES", 5, minimum=1)
DELETION_RETRY_BASE_SECONDS = float(env_int("DELETION_RETRY_BASE_MS", 2000, minimum=1)) / 1000
DELETION_RETRY_CAP_SECONDS = float(env_int("DELETION_RETRY_CAP_MS", 300_000, minimum=1)) / 1000
# A claimed deletion's lease: its worker renews it every third of this while the batch runs (a
# heartbeat), so a worker that died is presumed dead this long after its last renewal, however long
# healthy work takes. With the sweep below, a killed worker's deletions run again within ~12 s.
DELETION_LEASE_SECONDS = env_int("DELETION_LEASE_SECONDS", 8, minimum=1)
DELETION_SWEEP_SECONDS = env_int("DELETION_SWEEP_SECONDS", 2, minimum=1)
# A merchant with this many pending or running deletions gets 429 until some finish.
DELETION_MAX_PENDING_PER_MERCHANT = env_int("DELETION_MAX_PENDING_PER_MERCHANT", 10_000, minimum=1)
# A pending row whose task was sent this long ago and has not run is re-sent: its message may have
# died with a worker (a fan-out cut short, a prefetched task) or with the broker. Re-sending a live
# message costs one conditional UPDATE that claims nothing.
DELETION_RESEND_SECONDS = env_int("DELETION_RESEND_SECONDS", 10, minimum=1)

# --- scheduled cleanup, housekeeping ------------------------------------------------------------
# Blast radius: a run that would delete more than this many accounts, or more than this share of the
# merchant's accounts, stops before deleting and waits for an operator (per-rule overrides).
CLEANUP_MAX_ACCOUNTS = env_int("CLEANUP_MAX_ACCOUNTS", 20, minimum=1)
CLEANUP_MAX_PERCENT = env_int("CLEANUP_MAX_PERCENT", 50, minimum=1)
CLEANUP_MIN_INTERVAL_SECONDS = env_int("CLEANUP_MIN_INTERVAL_SECONDS", 300, minimum=1)
CLEANUP_FINISH_SECONDS = env_int("CLEANUP_FINISH_SECONDS", 30, minimum=1)
# The most matching work one run may do: a pattern's RE2 program size times the characters of the
# merchant's accounts (~0.4 s of one core at the default, measured on the worst program allowed).
CLEANUP_MATCH_BUDGET = env_int("CLEANUP_MATCH_BUDGET", 1_000_000_000, minimum=1)
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 400, minimum=1)
AUDIT_RETENTION_BATCH = env_int("AUDIT_RETENTION_BATCH", 1000, minimum=1)
# The kf re-sync and the merchant info re-read touch every merchant once per period, spread over
# it: every PACED_TICK_SECONDS each takes its slice, ceil(merchants × tick / period), oldest first
# (dbkit/pacing.py), at most PACED_SLICE_MAX a tick (above that the period stretches).
KF_RESYNC_SECONDS = env_int("KF_RESYNC_SECONDS", 6 * 3600, minimum=60)
MERCHANT_REREAD_SECONDS = env_int("MERCHANT_REREAD_SECONDS", 24 * 3600, minimum=60)
PACED_TICK_SECONDS = env_int("PACED_TICK_SECONDS", 300, minimum=10)
PACED_SLICE_MAX = env_int("PACED_SLICE_MAX", 5000, minimum=1)
# No verify ticket for this long → a log line, an alert on the dashboard and api_start_push_ticket,
# called at most once per VERIFY_TICKET_RESTART_MINUTES.
VERIFY_TICKET_STALE_MINUTES = env_int("VERIFY_TICKET_STALE_MINUTES", 20, minimum=1)
VERIFY_TICKET_RESTART_MINUTES = env_int("VERIFY_TICKET_RESTART_MINUTES", 20, minimum=1)
VERIFY_TICKET_WATCHDOG_SECONDS = env_int("VERIFY_TICKET_WATCHDOG_SECONDS", 300, minimum=1)

# --- merchant webhooks -------------------------------------------------------------------------
# Loopback/private addresses and plain http are refused unless this is true (the demo, the tests);
# production refuses the flag itself. Link-local and metadata addresses are refused even with it.
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
if WEBHOOK_ALLOW_PRIVATE_URLS and not DEBUG:
    raise ImproperlyConfigured(
        "WEBHOOK_ALLOW_PRIVATE_URLS is for the demo and the tests only (DJANGO_DEBUG=true); in production "
        "list the private networks receivers may use in WEBHOOK_PRIVATE_NETWORKS"
    )
# Private networks (CIDR) receivers may use in production too, over http or https: an operator's
# explicit choice (a receiver inside the same VPC). Default: none.
try:
    WEBHOOK_PRIVATE_NETWORKS = tuple(
        ipaddress.ip_network(n, strict=False) for n in env_list("WEBHOOK_PRIVATE_NETWORKS", [])
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"WEBHOOK_PRIVATE_NETWORKS must list CIDR networks: {exc}") from None
# Name servers the webhook URL check asks ("ip" or "ip:port"); empty: the system's (/etc/resolv.conf).
WEBHOOK_DNS_SERVERS = tuple(env_list("WEBHOOK_DNS_SERVERS", []))
# Every resolution of a webhook host (A and AAAA together), on the request path and before a delivery.
WEBHOOK_DNS_TIMEOUT = float(env_int("WEBHOOK_DNS_TIMEOUT_MS", 2000, minimum=1)) / 1000
# The whole of one delivery's HTTP exchange: connect, TLS, request, headers and body.
WEBHOOK_DEADLINE = float(env_int("WEBHOOK_DEADLINE_MS", 10_000, minimum=1)) / 1000
# Deliveries being sent at once to one endpoint, and to all endpoints of one merchant; the others wait.
WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = env_int("WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", 4, minimum=1)
WEBHOOK_MAX_IN_FLIGHT_PER_MERCHANT = env_int("WEBHOOK_MAX_IN_FLIGHT_PER_MERCHANT", 8, minimum=1)
WEBHOOK_RETRY_BASE_SECONDS = float(env_int("WEBHOOK_RETRY_BASE_MS", 30_000, minimum=1)) / 1000
WEBHOOK_RETRY_CAP_SECONDS = float(env_int("WEBHOOK_RETRY_CAP_MS", 3_600_000, minimum=1)) / 1000
WEBHOOK_RETRY_WINDOW_SECONDS = float(env_int("WEBHOOK_RETRY_WINDOW_SECONDS", 86_400, minimum=1))
WEBHOOK_CONNECT_TIMEOUT = float(env_int("WEBHOOK_CONNECT_TIMEOUT_MS", 3000, minimum=1)) / 1000
WEBHOOK_READ_TIMEOUT = float(env_int("WEBHOOK_READ_TIMEOUT_MS", 5000, minimum=1)) / 1000
WEBHOOK_CA_BUNDLE = env_str("WEBHOOK_CA_BUNDLE")  # a PEM file; certifi's bundle when unset
WEBHOOK_SWEEP_SECONDS = env_int("WEBHOOK_SWEEP_SECONDS", 60, minimum=1)
# Deliveries have a queue of their own; workers consume every declared queue unless given -Q.
CELERY_TASK_QUEUES = (Queue("celery"), Queue("webhooks"))
CELERY_TASK_ROUTES = {"webhooks.tasks.deliver_webhook": {"queue": "webhooks"}}
# One task claims up to this many of a merchant's due deletions and runs their calls concurrently,
# then sends itself to the back of the queue: every merchant with work gets a turn.
DELETION_BATCH_SIZE = env_int("DELETION_BATCH_SIZE", 50, minimum=1)
# A rate-limited merchant's batch holds about this many seconds of calls (fewer rows, held briefly).
DELETION_BATCH_SECONDS = env_int("DELETION_BATCH_SECONDS", 2, minimum=1)
# Threads per worker process that make the WeChat calls of every batch running in it.
DELETION_CALL_THREADS = env_int("DELETION_CALL_THREADS", 32, minimum=1)

# Defaults for django-celery-beat: copied into its tables at start, editable in the admin after.
# Crontab times are UTC (CELERY_TIMEZONE): 19:17 UTC is 03:17 in Beijing.
CELERY_BEAT_SCHEDULE = {
    "sweep-deletions": {"task": "kfaccounts.tasks.sweep_deletions", "schedule": float(DELETION_SWEEP_SECONDS)},
    "refresh-expiring-tokens": {"task": "authorizers.tasks.refresh_expiring_tokens", "schedule": 300.0},
    "reconcile-merchants-nightly": {
        "task": "authorizers.tasks.reconcile_merchants",
        "schedule": crontab(hour=19, minute=17),
    },
    "reread-merchants": {"task": "authorizers.tasks.reread_merchants", "schedule": float(PACED_TICK_SECONDS)},
    "resync-kf-accounts": {"task": "kfaccounts.tasks.resync_kf_accounts", "schedule": float(PACED_TICK_SECONDS)},
    "audit-retention": {"task": "audit.tasks.prune_audit_log", "schedule": crontab(hour=20, minute=3)},
    "verify-ticket-watchdog": {
        "task": "authorizers.tasks.watch_verify_ticket",
        "schedule": float(VERIFY_TICKET_WATCHDOG_SECONDS),
    },
    "finish-cleanup-runs": {"task": "cleanup.tasks.finish_cleanup_runs", "schedule": float(CLEANUP_FINISH_SECONDS)},
    "sweep-webhook-deliveries": {
        "task": "webhooks.tasks.sweep_webhook_deliveries",
        "schedule": float(WEBHOOK_SWEEP_SECONDS),
    },
}

# --- WeChat ------------------------------------------------------------------------------------
WECHAT_API_BASE = env_url("WECHAT_API_BASE", "https://api.weixin.qq.com", schemes=("http", "https"))
WECHAT_MP_BASE = env_url("WECHAT_MP_BASE", "https://mp.weixin.qq.com", schemes=("http", "https"))
# Where the mobile (H5) authorization link, wxaopen/safe/bindcomponent, lives.
WECHAT_OPEN_BASE = env_url("WECHAT_OPEN_BASE", "https://open.weixin.qq.com", schemes=("http", "https"))
# Demo values, used only when DJANGO_DEBUG is true. They are not the simulator's own defaults
# (sandbox/seed.py has others): `manage.py wechat_sandbox`, which `make run` starts, is handed these
# settings, so the platform and the simulator agree without configuration.
WECHAT_COMPONENT_APPID = _production_required("WECHAT_COMPONENT_APPID", "wx0c0a1d2e3f405162")
WECHAT_COMPONENT_APPSECRET = _production_required("WECHAT_COMPONENT_APPSECRET", "5a1db0c3e9f24d7a8b6c0e1f2a3b4c5d")
WECHAT_COMPONENT_TOKEN = _production_required("WECHAT_COMPONENT_TOKEN", "kfplatformdemotoken")
WECHAT_COMPONENT_AES_KEY = _production_required(
    "WECHAT_COMPONENT_AES_KEY", "kfPlatformDemoEncodingAESKey0123456789abcde"
)
# During an EncodingAESKey rotation WeChat may still encrypt with the previous key.
WECHAT_COMPONENT_PREVIOUS_AES_KEYS = env_list("WECHAT_COMPONENT_PREVIOUS_AES_KEYS", [])


def _check_encoding_aes_key(name: str, value: str) -> None:
    # A malformed key must stop start-up, not fail every push later (43 of [A-Za-z0-9] → 32 bytes).
    if not re.fullmatch(r"[A-Za-z0-9]{43}", value):
        raise ImproperlyConfigured(f"{name} must be an EncodingAESKey: 43 characters of A-Z, a-z, 0-9")


_check_encoding_aes_key("WECHAT_COMPONENT_AES_KEY", WECHAT_COMPONENT_AES_KEY)
for _previous in WECHAT_COMPONENT_PREVIOUS_AES_KEYS:
    _check_encoding_aes_key("WECHAT_COMPONENT_PREVIOUS_AES_KEYS", _previous)
WECHAT_AUTH_TYPE = env_int("WECHAT_AUTH_TYPE", 3, minimum=1)
if WECHAT_AUTH_TYPE not in (1, 2, 3, 4, 5, 6, 8):  # the values of WeChat's page (docs/wechat.md §4)
    raise ImproperlyConfigured("WECHAT_AUTH_TYPE must be one of 1, 2, 3, 4, 5, 6, 8 (1 Official Accounts, 3 both)")
# Seconds a redirect_uri's state stays good: longer than a pre-auth code lives (10-30 min).
WECHAT_AUTHORIZE_STATE_MAX_AGE = 60 * 60
# Each view of /wechat/authorize/ spends a pre-auth code at WeChat: throttled per client address.
WECHAT_AUTHORIZE_RATE_LIMIT = env_str("WECHAT_AUTHORIZE_RATE_LIMIT", "30/min")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|m|min|h|hour)", WECHAT_AUTHORIZE_RATE_LIMIT):
    raise ImproperlyConfigured("WECHAT_AUTHORIZE_RATE_LIMIT must read like 30/min (per s, min or hour)")
WECHAT_EVENT_MAX_BODY = env_int("WECHAT_EVENT_MAX_BODY", 64 * 1024, minimum=1024)
# Pushes older or newer than this many seconds are refused (replay window).
WECHAT_EVENT_MAX_SKEW = env_int("WECHAT_EVENT_MAX_SKEW", 600, minimum=1)
WECHAT_CONNECT_TIMEOUT = float(env_int("WECHAT_CONNECT_TIMEOUT_MS", 3050, minimum=1)) / 1000
WECHAT_READ_TIMEOUT = float(env_int("WECHAT_READ_TIMEOUT_MS", 10000, minimum=1)) / 1000
# Refresh a token when less than this many seconds of life remain (WeChat suggests at 1 h 50 min).
WECHAT_TOKEN_REFRESH_MARGIN = env_int("WECHAT_TOKEN_REFRESH_MARGIN", 600, minimum=0)
# The platform's public origin, registered at WeChat as the authorization domain: the redirect_uri
# is built from it (its host must be that domain). The demo uses the request's host instead.
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", None, schemes=("http", "https"))
if PUBLIC_BASE_URL is None and PRODUCTION:
    raise ImproperlyConfigured("PUBLIC_BASE_URL must be set when DJANGO_DEBUG is false (e.g. https://kf.example.com)")
if PUBLIC_BASE_URL is not None:
    PUBLIC_BASE_URL = PUBLIC_BASE_URL.rstrip("/")
    if "?" in PUBLIC_BASE_URL or "#" in PUBLIC_BASE_URL:
        raise ImproperlyConfigured("PUBLIC_BASE_URL must be an origin such as https://kf.example.com")
# Outbound calls per second per merchant and kf API, across every worker (Redis; in-process without
# it). 0: no limit. A merchant's own Authorizer.rate_limit_per_second overrides it.
WECHAT_RATE_LIMIT_PER_SECOND = env_int("WECHAT_RATE_LIMIT_PER_SECOND", 0, minimum=0)
# The pace assumed for a merchant with no limit when WeChat says 45009: it learns half of it.
WECHAT_RATE_LIMIT_AFTER_QUOTA = env_int("WECHAT_RATE_LIMIT_AFTER_QUOTA", 10, minimum=1)


# --- encryption at rest ------------------------------------------------------------------------
def _generate_field_key() -> str:
    import base64
    import os

    return "k1:" + base64.b64encode(os.urandom(32)).decode("ascii")


FIELD_ENCRYPTION_KEYS = env_str("FIELD_ENCRYPTION_KEYS")
if FIELD_ENCRYPTION_KEYS is None:
    if PRODUCTION:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set when DJANGO_DEBUG is false")
    FIELD_ENCRYPTION_KEYS = _demo_file_secret("field_encryption_keys", _generate_field_key)

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["authorizers.api_keys.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["authorizers.api_keys.IsMerchant"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["platform_app.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "platform_app.api_errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["authorizers.api_keys.MerchantRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"merchant": env_str("API_RATE_LIMIT", "600/min")},
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "kfplatform API",
    "DESCRIPTION": (
        "Merchant API: your authorizer, your customer-service accounts and their deletions, "
        "cleanup rules and their runs, webhooks."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status`; each choice set gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "DeletionStatusEnum": "kfaccounts.models.DeletionStatus",
        "CleanupRunStatusEnum": "cleanup.models.RunStatus",
        "WebhookDeliveryStatusEnum": "webhooks.models.DeliveryStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "platform_app.api_errors.document_errors",
    ],
}

# --- i18n, static, misc ------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# The console in English or Simplified Chinese: the browser's Accept-Language, or the switch in its header.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "console" / "locale"]
# Dates and times with seconds, the same way in both languages (console/formats/).
FORMAT_MODULE_PATH = ["console.formats"]
# Times are shown in this zone (the operations team works in Beijing time); stored in UTC.
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"TIME_ZONE is not a known time zone: {TIME_ZONE!r}") from None
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", PRODUCTION)
# Transport: HTTPS only in production, every knob from the environment.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
# Probes from the container runtime or the load balancer speak plain HTTP on the private network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS: list[str] = []
if not SECURE_HSTS_INCLUDE_SUBDOMAINS:
    # security.W005, silenced because HSTS for every subdomain of the platform's host is the domain
    # owner's decision: the platform usually lives on one subdomain of a company domain whose
    # siblings we do not run. Who owns it all sets DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS=true.
    SILENCED_SYSTEM_CHECKS.append("security.W005")
if not SECURE_HSTS_PRELOAD:
    # security.W021, silenced because preloading is a commitment to browsers' built-in lists that is
    # hard to undo and needs includeSubDomains too: the same owner's decision (..._HSTS_PRELOAD=true).
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# LOG_FORMAT=json: one JSON object per line (for a log shipper); plain text otherwise. Both carry
# the request id, merchant appid and deletion id of the line (observability/logs.py).
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "no_query": {"()": "platform_app.logfilters.DropQueryStrings"},
        "context": {"()": "observability.logs.ContextFilter"},
    },
    "formatters": {
        "plain": {"()": "observability.logs.PlainFormatter"},
        "json": {"()": "observability.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # runserver's access log (the demo): request lines without their query strings, which can
        # hold authorization codes. gunicorn's format (platform_app/gunicorn_conf.py) drops them too.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False, "filters": ["no_query"]},
        # urllib3 logs full URLs at DEBUG, and WeChat URLs carry tokens in the query string.
        "urllib3": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},  # it announces its configuration at INFO in every process
    },
}
# Celery installs its own log format unless told to keep ours (workers then log as JSON too).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- metrics -----------------------------------------------------------------------------------
# GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`; unset, it is 404 (loopback in the demo).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Called after every WeChat call with (path, errcode, outcome, seconds): the metrics' counters.
WECHAT_CALL_OBSERVER = env_str("WECHAT_CALL_OBSERVER", "observability.metrics.observe_wechat_call")
