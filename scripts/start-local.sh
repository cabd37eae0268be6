#!/usr/bin/env bash
# `npm start`: the whole crud-master stack on this one machine (Debian/Ubuntu, as root).
#
# Installs PostgreSQL and RabbitMQ from the distribution's archive when missing and makes sure
# they run (with or without systemd); creates the two database roles and databases and the
# RabbitMQ user from .env; installs the npm dependencies when node_modules is missing or out of
# date; builds; starts (or restarts) inventory_app, billing_app and api_gateway under PM2 with
# INVENTORY_HOST and RABBITMQ_HOST set to 127.0.0.1; waits for each /health to answer 200.
# Running it again is safe: it repeats only what is needed and restarts the apps
# with the current environment.
#
# Environment: ENV_FILE (default: <repo>/.env); CM_HEALTH_TIMEOUT (seconds, default 60).
# Any variable of .env set in the environment wins over .env (e.g. GATEWAY_PORT=3100 npm start).
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=lib/postgres.sh
source "$ROOT/scripts/lib/postgres.sh"
# shellcheck source=lib/rabbitmq.sh
source "$ROOT/scripts/lib/rabbitmq.sh"
# shellcheck source=lib/node.sh
source "$ROOT/scripts/lib/node.sh"
# shellcheck source=lib/pm2.sh
source "$ROOT/scripts/lib/pm2.sh"

trap 'log_error "failed at line $LINENO: $BASH_COMMAND"' ERR

ENV_FILE=${ENV_FILE:-$ROOT/.env}
HEALTH_TIMEOUT=${CM_HEALTH_TIMEOUT:-60}
started_at=$SECONDS

require_root "sudo npm start"

log_step "System packages"
apt_install_missing curl ca-certificates
node_install
postgres_install
rabbitmq_install

log_step "PostgreSQL and RabbitMQ"
postgres_ensure_running
rabbitmq_ensure_running

log_step "Configuration ($ENV_FILE)"
# Everything runs here: the services reach the inventory and RabbitMQ on loopback. These are
# exported before .env is read, so they win over its VM addresses.
export INVENTORY_HOST=127.0.0.1 RABBITMQ_HOST=127.0.0.1
load_env "$ENV_FILE"
require_env GATEWAY_PORT INVENTORY_PORT BILLING_PORT \
  INVENTORY_DB_PORT INVENTORY_DB_NAME INVENTORY_DB_USER INVENTORY_DB_PASSWORD \
  BILLING_DB_PORT BILLING_DB_NAME BILLING_DB_USER BILLING_DB_PASSWORD \
  RABBITMQ_PORT RABBITMQ_USER RABBITMQ_PASSWORD
pg_port=$(postgres_port)
for var in INVENTORY_DB_PORT BILLING_DB_PORT; do
  [[ ${!var} == "$pg_port" ]] ||
    log_warn "$var=${!var} but the local PostgreSQL cluster listens on $pg_port"
done

postgres_ensure_role_db "$INVENTORY_DB_USER" "$INVENTORY_DB_PASSWORD" "$INVENTORY_DB_NAME"
postgres_ensure_role_db "$BILLING_DB_USER" "$BILLING_DB_PASSWORD" "$BILLING_DB_NAME"
# The title search's trigram index needs pg_trgm. It is a trusted extension (PostgreSQL 13+), so
# the database's owner could create it; creating it as postgres also covers older servers.
postgres_psql -d "$INVENTORY_DB_NAME" -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm' >/dev/null
rabbitmq_ensure_user "$RABBITMQ_USER" "$RABBITMQ_PASSWORD" "${RABBITMQ_VHOST:-/}" "${RABBITMQ_QUEUE:-billing_queue}"

postgres_check_login "$INVENTORY_DB_USER" "$INVENTORY_DB_PASSWORD" "$INVENTORY_DB_NAME" 127.0.0.1 "$pg_port" ||
  die "$INVENTORY_DB_USER cannot log in to $INVENTORY_DB_NAME on 127.0.0.1:$pg_port"
postgres_check_login "$BILLING_DB_USER" "$BILLING_DB_PASSWORD" "$BILLING_DB_NAME" 127.0.0.1 "$pg_port" ||
  die "$BILLING_DB_USER cannot log in to $BILLING_DB_NAME on 127.0.0.1:$pg_port"
log_info "database logins over TCP checked"

log_step "Dependencies and build"
npm_ci_if_needed "$ROOT"
build_outputs_present() {
  local dir
  for dir in api-gateway inventory-app billing-app; do
    [[ -f $ROOT/srcs/$dir/dist/main.js ]] || return 1
  done
}
log_info "tsc -b"
(cd "$ROOT" && node_modules/.bin/tsc -b) || die "the build failed (npx tsc -b)"
if ! build_outputs_present; then
  # A dist/ deleted by hand next to a surviving *.tsbuildinfo makes 'tsc -b' think it is done.
  log_warn "dist/main.js missing after tsc -b: rebuilding with --force"
  (cd "$ROOT" && node_modules/.bin/tsc -b --force) || die "the build failed (npx tsc -b --force)"
  build_outputs_present || die "the build did not produce srcs/*/dist/main.js"
fi

log_step "PM2"
pm2_select "$ROOT"
pm2_start_apps "$ROOT/ecosystem.config.js" "${CM_PM2_APPS[@]}"
pm2_logrotate_install || true

log_step "Health (up to ${HEALTH_TIMEOUT} s)"
declare -A health_url=(
  [inventory_app]="http://127.0.0.1:$INVENTORY_PORT/health"
  [billing_app]="http://127.0.0.1:$BILLING_PORT/health"
  [api_gateway]="http://127.0.0.1:$GATEWAY_PORT/health"
)
declare -A healthy=()
deadline=$((SECONDS + HEALTH_TIMEOUT))
while true; do
  for app in "${CM_PM2_APPS[@]}"; do
    if [[ -z ${healthy[$app]:-} ]] && http_ok "${health_url[$app]}"; then
      healthy[$app]=1
      log_info "$app healthy: ${health_url[$app]}"
    fi
  done
  ((${#healthy[@]} == ${#CM_PM2_APPS[@]})) && break
  ((SECONDS >= deadline)) && break
  sleep 1
done

failed=0
for app in "${CM_PM2_APPS[@]}"; do
  [[ -n ${healthy[$app]:-} ]] && continue
  failed=1
  log_error "$app did not answer 200 on ${health_url[$app]} within ${HEALTH_TIMEOUT} s" \
    "(last status: $(http_status "${health_url[$app]}"), pm2 status: $(pm2_app_status "$app"))"
  printf -- '----- last lines of the pm2 log of %s -----\n' "$app" >&2
  pm2_logs_tail "$app" 40 >&2
done
if ((failed)); then
  die "the stack is not healthy; see above, or: npx pm2 logs"
fi

# A port held by some other process would answer /health while our app crash-loops on
# EADDRINUSE: insist that PM2 sees all three online.
for app in "${CM_PM2_APPS[@]}"; do
  status=$(pm2_app_status "$app")
  [[ $status == online ]] || die "$app answers on ${health_url[$app]} but pm2 shows it '$status' (another process on that port?)"
done

gateway="http://127.0.0.1:$GATEWAY_PORT"
cat <<EOF

crud-master is up in $((SECONDS - started_at)) s: inventory_app, billing_app and api_gateway run under PM2.
  API gateway:  $gateway
  Try it:       curl -s -X POST -H 'content-type: application/json' -d '{"title":"A new movie","description":"Very short description"}' $gateway/api/movies/
                curl -s $gateway/api/movies/
                curl -s -X POST -H 'content-type: application/json' -d '{"user_id":"3","number_of_items":"5","total_amount":"180"}' $gateway/api/billing/
  Processes:    npx pm2 list   |   logs: npx pm2 logs   |   stop: npm stop
EOF
