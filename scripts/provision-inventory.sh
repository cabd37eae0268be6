#!/usr/bin/env bash
# Provisioning, step 2 on inventory-vm: PostgreSQL (movies_db, local connections only; an owner
# role that runs the migrations, an app role with only the DML it needs), a default-deny firewall
# (the inventory's port for gateway-vm only) and the inventory app under PM2 (inventory_app) as
# the system user cm-inventory with only its own variables (/etc/crud-master/inventory.env).
# Runs after provision-common.sh; Vagrant runs it as root with .env's values in the environment:
#   sudo bash /vagrant/scripts/provision-inventory.sh
#
# Idempotent: a second run changes nothing and prints "changed=0" as its last line.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

# shellcheck source=lib/hosts.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/hosts.sh"
cm_provision_begin
require_env GATEWAY_VM_IP INVENTORY_VM_IP INVENTORY_LISTEN_HOST INVENTORY_PORT

log_step "PostgreSQL"
# movies_db on this host, open to its two roles over loopback only.
cm_local_postgres INVENTORY inventory-vm
# The title search's trigram index needs pg_trgm (lib/postgres.sh, as in npm start).
if postgres_ensure_extension "$INVENTORY_DB_NAME" pg_trgm; then
  cm_changed "CREATE EXTENSION pg_trgm in $INVENTORY_DB_NAME"
fi

log_step "Firewall"
# The inventory only for the gateway; PostgreSQL (listening on localhost anyway) for nobody.
cm_firewall "tcp dport $INVENTORY_PORT ip saddr $GATEWAY_VM_IP accept"

log_step "Application (inventory_app as cm-inventory)"
cm_service_user inventory
# Copy of the synced folder in $CM_APP_DIR, its own node_modules, built there (see lib/hosts.sh).
cm_deploy_sources "$REPO" cm-inventory || true
cm_build inventory-app
cm_app_permissions cm-inventory
cm_service_env inventory || true
# The app never runs DDL: its migrations run here, as the owner role, before it (re)starts.
cm_migrate inventory inventory-app
# pm2-root.service ordered after this host's PostgreSQL: at shutdown the app closes its pool first.
cm_pm2_ensure inventory_app inventory-app inventory \
  postgresql.service "postgresql@$(postgres_version)-$PG_CLUSTER_NAME.service"
# /health answers 200 once the app reaches its database.
http_wait "$(cm_local_url "$INVENTORY_LISTEN_HOST" "$INVENTORY_PORT" /health)" 120 ||
  { pm2_logs_tail inventory_app 40 >&2; die "inventory_app is not healthy"; }

cm_summary inventory
