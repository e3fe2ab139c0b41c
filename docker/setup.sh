#!/bin/sh
# One-shot set-up (compose service `setup`), idempotent: restarting the stack re-runs it harmlessly.
#  1. the schema (Alembic migrations)
#  2. the example plant, the second product, SPEC's worked example (WO-1) and the live order WO-2 with its stock
#  3. a collector token (bound to the simulated machines) and an admin token, kept in $SECRETS_DIR (created once)
set -eu
SECRETS_DIR=${SECRETS_DIR:-/secrets}
MACHINES=${COLLECTOR_MACHINES:-CNC-1 PRESS-1 VISION-1}

mes-bridge db upgrade
mes-bridge demo --setup

umask 077
if [ ! -s "$SECRETS_DIR/collector-token" ]; then
    args=""
    for m in $MACHINES; do args="$args --machine $m"; done
    # shellcheck disable=SC2086
    mes-bridge token create --role collector $args --name docker-collector | tail -n 1 > "$SECRETS_DIR/collector-token.new"
    mv "$SECRETS_DIR/collector-token.new" "$SECRETS_DIR/collector-token"
fi
if [ ! -s "$SECRETS_DIR/admin-token" ]; then
    mes-bridge token create --role admin --name docker-admin | tail -n 1 > "$SECRETS_DIR/admin-token.new"
    mv "$SECRETS_DIR/admin-token.new" "$SECRETS_DIR/admin-token"
fi
echo "set-up done; token: $(cat "$SECRETS_DIR/admin-token")  (admin; also in the secrets volume)"
