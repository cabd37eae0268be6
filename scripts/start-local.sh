#!/usr/bin/env bash
# `npm start`: the whole crud-master stack on this one machine (Debian/Ubuntu, as root).
#
# Installs PostgreSQL and RabbitMQ from the distribution's archive when missing and makes sure
# they run (with or without systemd); creates the databases with their owner and app roles and
# the gateway's and the worker's RabbitMQ users from .env, as on the VMs; installs the npm
# dependencies when node_modules is missing or out of date; builds; runs the migrations as the
# owner roles (migrate.js); starts (or restarts) inventory_app, billing_app and api_gateway under
# PM2 with every address (*_HOST, *_LISTEN_HOST, GATEWAY_ADMIN_HOST) set to 127.0.0.1; waits for
# each /health to answer 200. Running it again is safe: it repeats only what is needed and
# restarts the apps with the current environment.
# Unlike the VMs, there are no service users and no firewall here: the apps run as root under
# root's PM2 and read the repository's .env, and they listen on loopback only (README, "Security").
#
# Environment: ENV_FILE (default: <repo>/.env; the apps get it as CM_ENV_FILE, the name they
# read); CM_HEALTH_TIMEOUT (seconds, default 60).
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

ENV_FILE=$(realpath -- "${ENV_FILE:-$ROOT/.env}")
# The services read the file CM_ENV_FILE names (an absolute path); PM2 passes it on to them.
export CM_ENV_FILE=$ENV_FILE
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
# Everything runs here: the services listen on and reach each other over loopback. These are
# exported before .env is read, so they win over its VM addresses (and reach PM2's apps).
export INVENTORY_HOST=127.0.0.1 RABBITMQ_HOST=127.0.0.1 GATEWAY_LISTEN_HOST=127.0.0.1 \
  GATEWAY_ADMIN_HOST=127.0.0.1 INVENTORY_LISTEN_HOST=127.0.0.1 BILLING_LISTEN_HOST=127.0.0.1
load_env "$ENV_FILE"
require_env GATEWAY_PORT INVENTORY_PORT BILLING_PORT \
  INVENTORY_DB_PORT INVENTORY_DB_NAME INVENTORY_DB_OWNER INVENTORY_DB_OWNER_PASSWORD \
  INVENTORY_DB_USER INVENTORY_DB_PASSWORD \
  BILLING_DB_PORT BILLING_DB_NAME BILLING_DB_OWNER BILLING_DB_OWNER_PASSWORD \
  BILLING_DB_USER BILLING_DB_PASSWORD \
  RABBITMQ_PORT RABBITMQ_GATEWAY_USER RABBITMQ_GATEWAY_PASSWORD RABBITMQ_BILLING_USER RABBITMQ_BILLING_PASSWORD
pg_port=$(postgres_port)
for var in INVENTORY_DB_PORT BILLING_DB_PORT; do
  [[ ${!var} == "$pg_port" ]] ||
    log_warn "$var=${!var} but the local PostgreSQL cluster listens on $pg_port"
done

# The databases with their owner and app roles from .env, each role logging in over loopback as
# migrate.js and the app do.
postgres_ensure_app_db "$INVENTORY_DB_OWNER" "$INVENTORY_DB_OWNER_PASSWORD" \
  "$INVENTORY_DB_USER" "$INVENTORY_DB_PASSWORD" "$INVENTORY_DB_NAME" || true
postgres_ensure_app_db "$BILLING_DB_OWNER" "$BILLING_DB_OWNER_PASSWORD" \
  "$BILLING_DB_USER" "$BILLING_DB_PASSWORD" "$BILLING_DB_NAME" || true
log_info "database logins over TCP checked"
# The title search's trigram index needs pg_trgm.
postgres_ensure_extension "$INVENTORY_DB_NAME" pg_trgm || true
# The gateway's (publish only) and the worker's users, no other user with rights, no guest.
rabbitmq_ensure_users

log_step "Dependencies and build"
npm_ci_if_needed "$ROOT"
node_build "$ROOT" api-gateway inventory-app billing-app

log_step "Migrations (as the owner roles)"
# The apps never run DDL: the owner roles migrate and grant the app roles their tables. Each
# migrate.js gets its database's variables in its environment (they win over the file) and
# nothing else from this shell.
for app in inventory billing; do
  prefix=${app^^}
  vars=()
  for key in DB_HOST DB_PORT DB_NAME DB_OWNER DB_OWNER_PASSWORD DB_USER; do
    var=${prefix}_$key
    vars+=("$var=${!var:-}")
  done
  out=$(cd "$ROOT" && node_clean_env CM_ENV_FILE="$ENV_FILE" NODE_ENV="${NODE_ENV:-production}" \
    LOG_LEVEL="${LOG_LEVEL:-info}" "${vars[@]}" node "srcs/$app-app/dist/migrate.js" 2>&1) ||
    { printf '%s\n' "$out" | tail -n 30 >&2; die "the migrations of $app failed"; }
  log_info "$app: $(tail -n 1 <<<"$out")"
done

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
deadline=$((SECONDS + HEALTH_TIMEOUT))
failed=0
for app in "${CM_PM2_APPS[@]}"; do
  # One deadline for the three: each waits for what is left of it.
  left=$((deadline - SECONDS))
  ((left > 0)) || left=1
  http_wait "${health_url[$app]}" "$left" && continue
  failed=1
  log_error "$app is not healthy (pm2 status: $(pm2_app_status "$app"))"
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
