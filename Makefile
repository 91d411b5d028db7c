# The two commands: `make up` and `make test`. Everything lives in .venv and var/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TEST_PGDATA := $(CURDIR)/var/test-pgdata
# Where a CPU build of torch comes from, if not from PyPI or pip's configured find-links, e.g.
#   make up TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

.PHONY: install up down test format

# Polls the login page until gunicorn answers (or its log explains why not), then prints the URL.
define WAIT_FOR_WEB
import sys, time, urllib.request
from core.config import Config
url = "http://" + Config()["PRODRAG_BIND"]
for _ in range(120):
    try:
        urllib.request.urlopen(url + "/accounts/login/", timeout=2)
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("the web server did not answer; see var/log/web.log")
print(f"prodrag is up: chat {url}/chat/ (staff), admin {url}/admin/ (knowledge managers)")
endef
export WAIT_FOR_WEB

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# torch first and pinned: an unpinned torch (or torchvision) pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	touch $(STAMP)

# Web and worker processes write their metric samples here; /metrics reports them all.
up: export PROMETHEUS_MULTIPROC_DIR := $(CURDIR)/var/run/prometheus

up: install
	mkdir -p var/log var/run var/run/prometheus
	$(PY) manage.py migrate --noinput
	@# The embedded server and its local standbys (PRODRAG_REPLICAS=1 make up: one replica).
	@if [ -z "$$DATABASE_URL" ] && [ -z "$$DATABASE_URL_FILE" ]; then $(PY) -m prodrag.embedded_db start; fi
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py embedding_prepare
	@$(PY) manage.py admin_bootstrap > var/run/login.txt
	@# Before the worker starts: the first enqueue creates the database broker's tables, which
	@# two processes creating at once (the worker and this) would race for.
	@$(PY) manage.py load_sample
	@if [ -f var/run/web.pid ] && kill -0 $$(cat var/run/web.pid) 2>/dev/null; then \
		echo "web server already running (pid $$(cat var/run/web.pid))"; \
	else \
		$(VENV)/bin/gunicorn --config prodrag/gunicorn.conf.py --daemon; \
	fi
	@if [ -f var/run/worker.pid ] && kill -0 $$(cat var/run/worker.pid) 2>/dev/null; then \
		echo "worker already running (pid $$(cat var/run/worker.pid))"; \
	else \
		$(VENV)/bin/celery -A prodrag worker --beat \
			--loglevel INFO --detach --pidfile var/run/worker.pid \
			--logfile var/log/worker.log; \
	fi
	@# The sample's questions, measured once its documents are in (the admin's Quality page).
	@PRODRAG_LOG_LEVEL=warning $(PY) manage.py evaluate --sample --wait 600
	@$(PY) -c "$$WAIT_FOR_WEB"
	@cat var/run/login.txt; rm -f var/run/login.txt

down:
	@if [ -f var/run/web.pid ]; then kill $$(cat var/run/web.pid) 2>/dev/null || true; \
		while [ -f var/run/web.pid ]; do sleep 0.2; done; echo "web server stopped"; fi
	@# TERM lets the worker finish its current task (warm shutdown) before it exits.
	@if [ -f var/run/worker.pid ]; then kill $$(cat var/run/worker.pid) 2>/dev/null || true; \
		while [ -f var/run/worker.pid ]; do sleep 0.2; done; echo "worker stopped"; fi
	@if [ -x $(PY) ]; then $(PY) -m prodrag.embedded_db stop; fi

# Debian's Chromium for the browser test (tests/chat/test_browser.py), installed once.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium chromium-driver || \
		{ $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver; }

# Debian's OpenLDAP server for the directory tests (tests/accounts/slapd.py), installed once;
# the tests start their own on a loopback port, never the system's.
SLAPD := /usr/sbin/slapd

$(SLAPD):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slapd || \
		{ $(SUDO) apt-get update -q && \
		  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slapd; }

# Debian's acl tools for the mirror-mode tests (tests/sources/test_mirror.py sets POSIX ACLs).
SETFACL := /usr/bin/setfacl

$(SETFACL):
	$(SUDO) apt-get install -y -q acl || \
		{ $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q acl; }

# Debian's Samba for the SMB source test (tests/sources/servers.py starts its own smbd on a
# loopback port, never the system's).
SMBD := /usr/sbin/smbd

$(SMBD):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q samba || \
		{ $(SUDO) apt-get update -q && \
		  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q samba; }

test: install $(CHROMIUM) $(SLAPD) $(SETFACL) $(SMBD)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	PRODRAG_PGDATA=$(TEST_PGDATA) $(VENV)/bin/pytest; status=$$?; \
		$(PY) -m prodrag.embedded_db stop --pgdata $(TEST_PGDATA) >/dev/null; exit $$status

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
