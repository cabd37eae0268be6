#!/usr/bin/env bash
# Provisioning, step 2 on inventory-vm: PostgreSQL (movies_db, local connections only) and the
# inventory app under PM2 as root (inventory_app). Runs after provision-common.sh; Vagrant runs it
# as root with every .env value in the environment: sudo bash /vagrant/scripts/provision-inventory.sh
#
# Idempotent: a second run changes nothing and prints "changed=0" as its last line.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

# shellcheck source=lib/hosts.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/hosts.sh"
cm_provision_begin
require_env INVENTORY_VM_IP INVENTORY_PORT INVENTORY_DB_PORT INVENTORY_DB_NAME \
  INVENTORY_DB_USER INVENTORY_DB_PASSWORD

log_step "PostgreSQL"
# movies_db on this host, open to INVENTORY_DB_USER over loopback only.
cm_local_postgres INVENTORY inventory-vm
# The title search's trigram index needs pg_trgm (lib/postgres.sh, as in npm start).
if postgres_ensure_extension "$INVENTORY_DB_NAME" pg_trgm; then
  cm_changed "CREATE EXTENSION pg_trgm in $INVENTORY_DB_NAME"
fi

log_step "Firewall"
# Belt and braces beside listen_addresses: nothing from the network reaches PostgreSQL's port.
cm_firewall "tcp dport $INVENTORY_DB_PORT drop"

log_step "Application (inventory_app)"
# Copy of the synced folder in $CM_APP_DIR, its own node_modules, built there (see lib/hosts.sh).
cm_deploy_sources "$REPO" || true
cm_deploy_env "$REPO"
cm_build inventory-app
# pm2-root.service ordered after this host's PostgreSQL: at shutdown the app closes its pool first.
cm_pm2_ensure inventory_app inventory-app postgresql.service "postgresql@$(postgres_version)-$PG_CLUSTER_NAME.service"
# Migrations run as the app starts; /health answers 200 once it reaches its database.
http_wait "http://127.0.0.1:$INVENTORY_PORT/health" 120 ||
  { pm2_logs_tail inventory_app 40 >&2; die "inventory_app is not healthy"; }

cm_summary inventory
