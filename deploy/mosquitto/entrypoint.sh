#!/bin/sh
# The central broker's start (docker-compose.yml, service mosquitto): makes the password file from
# the environment, adds the TLS listener when asked, then runs the command it is given (the image's
# own entrypoint and mosquitto). Made at every start, so a changed .env takes effect with
# `docker compose up -d` and a gateway taken out of TILA_MQTT_GATEWAYS can no longer log in.
#
# Environment (docker-compose.yml passes it from .env):
#   TILA_MQTT_AGGREGATOR_PASSWORD  user tila-aggregator
#   TILA_MQTT_API_PASSWORD         user tila-api
#   TILA_MQTT_GATEWAYS             gateways as id:password, separated by spaces or commas
#   TILA_MQTT_SIM_PASSWORD         user gw-sim, the simulated gateway of the sim profile; "off": none
#   TILA_MQTT_TLS                  on: the TLS listener of tls.conf on 8883; off (default): none
# A bad value stops the broker with one line saying which (exit 2): `docker compose logs mosquitto`.
#
# POSIX sh: the image is Alpine (busybox); the tests run it with Debian's dash and mosquitto_passwd.
set -eu

RUN=${TILA_MQTT_RUN_DIR:-/mosquitto/run}
CONFIG=${TILA_MQTT_CONFIG_DIR:-/mosquitto/config}
CERTS=${TILA_MQTT_CERTS_DIR:-/mosquitto/certs}
# Service users: a gateway may not take one of these names (the ACL gives them their own rights).
RESERVED=" tila-aggregator tila-api tila-health "
# Shorter passwords are refused; `openssl rand -hex 24` makes a good one.
MIN_PASSWORD=16

fail() {
    echo "tila broker: error: $*" >&2
    exit 2
}

# check_password WHAT VALUE: not empty, not .env.example's placeholder, one line, long enough.
check_password() {
    lower=$(printf '%s' "$2" | tr 'A-Z' 'a-z')
    case "$lower" in
        "") fail "$1 is empty" ;;
        change-me* | change_me* | changeme*) fail "$1 is still the placeholder of .env.example" ;;
    esac
    case "$2" in
        *"
"*) fail "$1 holds a line break" ;;
    esac
    [ "${#2}" -ge "$MIN_PASSWORD" ] || fail "$1 is shorter than $MIN_PASSWORD characters"
}

# add_user NAME PASSWORD: one line of the plain-text file that mosquitto_passwd -U hashes in place.
add_user() {
    case "$users" in
        *" $1 "*) fail "TILA_MQTT_GATEWAYS: gateway $1 is given twice (or is gw-sim)" ;;
    esac
    users="$users$1 "
    printf '%s:%s\n' "$1" "$2" >>"$RUN/passwd.new"
}

umask 077
mkdir -p "$RUN/conf.d" "$RUN/tls"
rm -f "$RUN/passwd.new" "$RUN/conf.d/"*.conf "$RUN/tls/"*
: >"$RUN/passwd.new"
users=" "

check_password TILA_MQTT_AGGREGATOR_PASSWORD "${TILA_MQTT_AGGREGATOR_PASSWORD:-}"
add_user tila-aggregator "$TILA_MQTT_AGGREGATOR_PASSWORD"
check_password TILA_MQTT_API_PASSWORD "${TILA_MQTT_API_PASSWORD:-}"
add_user tila-api "$TILA_MQTT_API_PASSWORD"

# The healthcheck's own user, with a password nobody needs to know: new at every start.
health=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)
printf '%s\n' "$health" >"$RUN/health-password"
add_user tila-health "$health"

set -f # the list is split on spaces and commas, never expanded as file names
gateways=$(printf '%s' "${TILA_MQTT_GATEWAYS:-}" | tr ',' ' ')
[ -n "$(printf '%s' "$gateways" | tr -d ' \t\n')" ] || fail "TILA_MQTT_GATEWAYS names no gateway"
for item in $gateways; do
    id=${item%%:*}
    password=${item#*:}
    [ "$id" != "$item" ] || fail "TILA_MQTT_GATEWAYS: '$id' has no ':password' (give id:password)"
    printf '%s' "$id" | grep -Eq '^[a-z0-9][a-z0-9_.-]{0,63}$' ||
        fail "TILA_MQTT_GATEWAYS: gateway id '$id' must be lower-case letters, digits, '-', '_' or '.'"
    case "$RESERVED" in
        *" $id "*) fail "TILA_MQTT_GATEWAYS: '$id' is a service user's name, not a gateway id" ;;
    esac
    check_password "TILA_MQTT_GATEWAYS: the password of gateway $id" "$password"
    add_user "$id" "$password"
done
set +f

if [ "${TILA_MQTT_SIM_PASSWORD:-}" != off ]; then
    check_password "TILA_MQTT_SIM_PASSWORD (set it to off without the sim profile)" "${TILA_MQTT_SIM_PASSWORD:-}"
    add_user gw-sim "$TILA_MQTT_SIM_PASSWORD"
fi

mosquitto_passwd -U "$RUN/passwd.new" >/dev/null || fail "mosquitto_passwd could not hash the passwords"
mv "$RUN/passwd.new" "$RUN/passwd"

case "${TILA_MQTT_TLS:-off}" in
    on)
        for f in server.crt server.key; do
            [ -s "$CERTS/$f" ] && [ -r "$CERTS/$f" ] ||
                fail "TILA_MQTT_TLS=on needs $f in TILA_MQTT_CERTS (mounted at $CERTS): missing, empty or unreadable"
            cp "$CERTS/$f" "$RUN/tls/$f"
        done
        # One file: Mosquitto applies a listener's settings only within the file of its listener
        # line (in a file of their own, they would make a second, default listener on 1883).
        cp "$CONFIG/tls.conf" "$RUN/conf.d/tls.conf"
        if [ -e "$CERTS/ca.crt" ]; then
            cp "$CERTS/ca.crt" "$RUN/tls/ca.crt"
            cat "$CONFIG/tls-client-certs.conf" >>"$RUN/conf.d/tls.conf"
        fi
        ;;
    off) ;;
    *) fail "TILA_MQTT_TLS must be on or off, not '${TILA_MQTT_TLS}'" ;;
esac

# Mosquitto 2 reads all of this after it has dropped root for its own user.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown -R mosquitto:mosquitto "$RUN"
fi
gateway_users=$(printf '%s' "$users" | sed -e 's/ tila-[a-z]*//g' -e 's/^ *//' -e 's/ *$//')
echo "tila broker: users tila-aggregator, tila-api, tila-health; gateways $gateway_users; TLS ${TILA_MQTT_TLS:-off}" >&2

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
