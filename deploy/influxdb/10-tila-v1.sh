#!/bin/bash
# InfluxDB 2.x, first start only: the influxdb:2.7 image runs /docker-entrypoint-initdb.d/*.sh once,
# after its setup from DOCKER_INFLUXDB_INIT_* (org, bucket, retention, admin user and token), with
# the influx CLI already configured with the admin token and DOCKER_INFLUXDB_INIT_BUCKET_ID set.
#
# tila's store speaks InfluxDB's v1 HTTP API (line protocol on /write, InfluxQL on /query; see
# store/influx.py), which 2.x serves through DBRP mappings (database/retention policy → bucket):
#  1. The mapping: database TILA_INFLUX_DATABASE, retention policy autogen, the default one (the
#     store names no retention policy) → the bucket DOCKER_INFLUXDB_INIT_BUCKET.
#  2. Two v1 authorizations, each for that bucket only: tila-aggregator may read and write it,
#     tila-api may only read it. The store sends them as HTTP Basic auth, which 2.x accepts on its
#     v1 API. (The store also takes ?token=, but the only token made here is the admin's, which
#     gives everything: no service needs it.)
# A failure makes the image delete what its setup made and exit, so the next start tries again.
#
# Later password changes are not picked up from .env (this runs once); change them in both places:
#   docker compose exec influxdb influx v1 auth set-password --username tila-api --password NEW
set -euo pipefail

# InfluxDB takes any password; tila does not take .env.example's placeholders, and neither does this.
for name in DOCKER_INFLUXDB_INIT_PASSWORD DOCKER_INFLUXDB_INIT_ADMIN_TOKEN \
    TILA_INFLUX_AGGREGATOR_PASSWORD TILA_INFLUX_API_PASSWORD; do
    value=${!name:-}
    case "${value,,}" in
        "") echo "tila InfluxDB setup: error: ${name} is empty" >&2 && exit 2 ;;
        change-me* | change_me* | changeme*)
            echo "tila InfluxDB setup: error: ${name} is still the placeholder of .env.example" >&2 && exit 2 ;;
    esac
done

: "${DOCKER_INFLUXDB_INIT_BUCKET_ID:?the influxdb image sets it after its setup}"
: "${TILA_INFLUX_DATABASE:?}"

influx v1 dbrp create \
    --org "${DOCKER_INFLUXDB_INIT_ORG}" \
    --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
    --db "${TILA_INFLUX_DATABASE}" \
    --rp autogen \
    --default

influx v1 auth create \
    --org "${DOCKER_INFLUXDB_INIT_ORG}" \
    --username tila-aggregator \
    --password "${TILA_INFLUX_AGGREGATOR_PASSWORD}" \
    --read-bucket "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
    --write-bucket "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
    --description "tila aggregator: writes bucket rows (v1 API, database ${TILA_INFLUX_DATABASE})"

influx v1 auth create \
    --org "${DOCKER_INFLUXDB_INIT_ORG}" \
    --username tila-api \
    --password "${TILA_INFLUX_API_PASSWORD}" \
    --read-bucket "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
    --description "tila API: reads bucket rows (v1 API, database ${TILA_INFLUX_DATABASE})"
