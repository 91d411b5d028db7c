# syntax=docker/dockerfile:1
# Build stage: dependencies into a virtualenv (CPU-only torch, the bundled embedding model).
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.lock /tmp/requirements.lock
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -r /tmp/requirements.lock

# Run stage: the virtualenv and the code, as an unprivileged user.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PRODRAG_ENV=production
RUN useradd --create-home --uid 10001 prodrag
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=prodrag:prodrag . /app
# collectstatic, and the embedding model exported to ONNX once (into var/models) rather than
# by every container at its first search.
RUN mkdir -p /app/var \
    && export PRODRAG_SECRET_KEY=build-only PRODRAG_ALLOWED_HOSTS=localhost \
       DATABASE_URL=postgresql://unused@localhost/unused \
    && python manage.py collectstatic --noinput --verbosity 0 \
    && python manage.py embedding_prepare \
    && chown -R prodrag:prodrag /app/var
USER prodrag
EXPOSE 8000
CMD ["gunicorn", "--config", "prodrag/gunicorn.conf.py", "--bind", "0.0.0.0:8000", \
     "--pid", "/tmp/web.pid", "--access-logfile", "-", "--error-logfile", "-"]
