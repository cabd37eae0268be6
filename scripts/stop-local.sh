#!/usr/bin/env bash
# `npm stop`: stops and removes crud-master's three PM2 apps (inventory_app, billing_app,
# api_gateway) started by `npm start`. Other apps of the PM2 daemon, the daemon itself, and the
# system services PostgreSQL and RabbitMQ are left running.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=lib/pm2.sh
source "$ROOT/scripts/lib/pm2.sh"

require_root "sudo npm stop"

if [[ ! -x $ROOT/node_modules/.bin/pm2 ]] && ! command -v pm2 >/dev/null 2>&1; then
  log_info "pm2 is not installed here: nothing to stop"
else
  pm2_select "$ROOT"
  pm2_delete_apps "${CM_PM2_APPS[@]}"
fi

if has_systemd; then
  how='systemctl stop postgresql rabbitmq-server'
else
  how="pg_ctlcluster $(pg_lsclusters -h 2>/dev/null | awk '$2 == "main" { v = $1 } END { print v ? v : "<version>" }') main stop; rabbitmqctl stop"
fi
log_info "PostgreSQL and RabbitMQ were left running (system services, possibly used by others)." \
  "To stop them as well: $how"
