#!/usr/bin/env bash
# Provisioning, step 2 on inventory-vm: PostgreSQL (movies_db, local connections only; an owner
# role that runs the migrations, an app role with only the DML it needs), a default-deny firewall
# (the inventory's port for gateway-vm only) and the inventory app under PM2 (inventory_app) as
# the system user cm-inventory with only its own variables (/etc/crud-master/inventory.env).
# Scaled (INVENTORY_NODES=2; README, "Scaling out"): on inventory-vm-2 (CM_NODE=2) the same app
# without a database of its own: it uses movies_db on inventory-vm, which then also listens on its
# private address, for the app role from inventory-vm-2 only (pg_hba.conf and the firewall).
# Runs after provision-common.sh; Vagrant runs it as root with the inventory's variables in the
# environment (`vagrant provision inventory-vm`).
#
# Idempotent: a second run changes nothing and prints "changed=0" as its last line.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

# shellcheck source=lib/hosts.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/hosts.sh"
cm_provision_begin inventory
require_env GATEWAY_VM_IP INVENTORY_VM_IP INVENTORY_LISTEN_HOST INVENTORY_PORT INVENTORY_DB_PORT
# The inventory only for the gateway.
rules="tcp dport $INVENTORY_PORT ip saddr $GATEWAY_VM_IP accept"
others=$(cm_other_ips inventory 1)

if ((CM_NODE == 1)); then
  log_step "PostgreSQL"
  # movies_db on this host, open to its two roles over loopback only; scaled, to the app role on
  # the other inventory hosts too.
  # shellcheck disable=SC2086  # one address a word
  cm_local_postgres INVENTORY inventory-vm $others
  [[ -z $others ]] || rules+=$'\n'"tcp dport $INVENTORY_DB_PORT ip saddr $(cm_nft_set "$others") accept"
  # The title search's trigram index needs pg_trgm (lib/postgres.sh, as in npm start).
  if postgres_ensure_extension "$INVENTORY_DB_NAME" pg_trgm; then
    cm_changed "CREATE EXTENSION pg_trgm in $INVENTORY_DB_NAME"
  fi
fi

log_step "Firewall"
# PostgreSQL for nobody else (classic: it listens on localhost anyway).
cm_firewall "$rules"

log_step "Application (inventory_app as cm-inventory)"
cm_service_user inventory
# Copy of the synced folder in $CM_APP_DIR, its own node_modules, built there (see lib/hosts.sh).
cm_deploy_sources "$REPO" cm-inventory || true
cm_build inventory-app
cm_app_permissions cm-inventory
cm_service_env inventory || true
if ((CM_NODE == 1)); then
  # The app never runs DDL: its migrations run here, as the owner role, before it (re)starts.
  cm_migrate inventory inventory-app
  # pm2-root.service ordered after this host's PostgreSQL: at shutdown the app closes its pool first.
  cm_pm2_ensure inventory_app inventory-app inventory \
    postgresql.service "postgresql@$(postgres_version)-$PG_CLUSTER_NAME.service"
else
  # movies_db and its migrations are inventory-vm's (provisioned first).
  cm_pm2_ensure inventory_app inventory-app inventory
fi
# /health answers 200 once the app reaches its database.
http_wait "$(cm_local_url "$INVENTORY_LISTEN_HOST" "$INVENTORY_PORT" /health)" 120 ||
  { pm2_logs_tail inventory_app 40 >&2; die "inventory_app is not healthy"; }

cm_summary inventory
