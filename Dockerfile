# One image for every tila service (docker-compose.yml); the command picks the service:
#   docker run tila:local api --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The source stays in /src: deploy/healthcheck.py (the services' healthchecks) runs from there.
# .dockerignore keeps .env, certificates, the virtual environment and local data out of the image.
WORKDIR /src
COPY . .

# A fixed uid, so files in the volumes keep their owner across image rebuilds. The state
# directories exist in the image, owned by tila: a new named volume mounted on one takes its owner.
RUN pip install . \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/tila --no-create-home tila \
    && install -d -o tila -g tila -m 0750 /var/lib/tila /var/lib/tila/aggregator /var/lib/tila/api \
        /var/lib/tila/gateway /var/lib/tila/data

USER tila
WORKDIR /var/lib/tila
ENTRYPOINT ["tila"]
