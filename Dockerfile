# One image for every authflow process: `authflow api` (default), `authflow worker`,
# `authflow migrate`. docker-compose.yml picks the command per service.
#
#   docker build -t authflow .
#   docker run --rm -e JWT_SECRET=... -e DATABASE_URL=... -p 8000:8000 authflow

# --- build: install the package and its dependencies into a virtualenv ------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A virtualenv at a fixed path can be copied as a whole into the runtime stage, which
# then carries no build tooling, sources or pip caches.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what the package build needs (pyproject's readme is part of the metadata);
# var/, tests/ and local virtualenvs never reach the image.
COPY pyproject.toml README.md ./
COPY authflow ./authflow
COPY api ./api
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
RUN pip install .


# --- runtime ---------------------------------------------------------------------
FROM python:3.11-slim

# In a container the API must listen on every interface: the contract's default,
# 127.0.0.1, would only be reachable from inside the container.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    LOG_FORMAT=json

# A fixed, unprivileged uid/gid so that mounted files (TLS keys, ...) can be granted to it.
RUN groupadd --system --gid 10001 authflow \
 && useradd --system --uid 10001 --gid authflow --home-dir /app --shell /usr/sbin/nologin authflow \
 && mkdir -p /app/var \
 && chown -R authflow:authflow /app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER authflow:authflow

EXPOSE 8000

# No HEALTHCHECK here: the same image runs the API, the workers and one-shot migrations,
# which are checked differently; docker-compose.yml declares one per service.
CMD ["authflow", "api"]
