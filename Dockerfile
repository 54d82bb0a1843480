# syntax=docker/dockerfile:1
# Build stage: install the exporter and its runtime dependencies into a virtualenv.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

# Runtime stage: the virtualenv only, run as an unprivileged user.
FROM python:3.11.11-slim-bookworm
RUN groupadd --system --gid 10001 exporter \
 && useradd --system --uid 10001 --gid exporter --no-create-home --shell /usr/sbin/nologin exporter
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LLMOPT_HOST=0.0.0.0 \
    LLMOPT_PORT=9477
USER 10001:10001
EXPOSE 9477
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LLMOPT_PORT', '9477'), timeout=2).status != 200)"]
ENTRYPOINT ["llmopt-exporter"]
