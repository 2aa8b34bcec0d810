# One image for every streamml service. It has no default command of its own:
# docker-compose.yml picks the process per service (`python -m services.<name>`,
# `streamml topics create`, ...).
FROM python:3.11-slim

# Metrics/health are served on every interface so other containers can reach them; local
# state lives outside the source tree, in a directory the service user owns.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    STREAMML_METRICS_HOST=0.0.0.0 \
    STREAMML_STATE_DIR=/var/lib/streamml/state

# An unprivileged user with a fixed uid/gid, so volumes and runAsNonRoot policies work.
RUN groupadd --system --gid 10001 streamml \
    && useradd --system --uid 10001 --gid streamml \
        --home-dir /var/lib/streamml --create-home --shell /usr/sbin/nologin streamml \
    && install -d -o streamml -g streamml /var/lib/streamml/state

# Exactly what the package build needs: its metadata, the readme it names, and the two packages.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas/ ./schemas/
COPY services/ ./services/
# Install, then drop the build tree so `python -m services.*` always imports the installed package.
RUN pip install --no-cache-dir . \
    && rm -rf /src

WORKDIR /var/lib/streamml
USER 10001:10001

# Metrics/health ports of producer, features, model, drift and metrics-sink.
EXPOSE 9101-9105
