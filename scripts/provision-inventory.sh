#!/usr/bin/env bash
# Provisioning, step 2 on inventory-vm: PostgreSQL (movies_db, local connections only) and the
# inventory app under PM2 as root (inventory_app). Runs after provision-common.sh; Vagrant runs it
# as root with every .env value in the environment: sudo bash /vagrant/scripts/provision-inventory.sh
#
# Idempotent: a second run changes nothing and prints "changed=0" as its last line.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

SCRIPTS=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=lib/common.sh
source "$SCRIPTS/lib/common.sh"
# shellcheck source=lib/node.sh
source "$SCRIPTS/lib/node.sh"
# shellcheck source=lib/postgres.sh
source "$SCRIPTS/lib/postgres.sh"
# shellcheck source=lib/pm2.sh
source "$SCRIPTS/lib/pm2.sh"
# shellcheck source=lib/hosts.sh
source "$SCRIPTS/lib/hosts.sh"
trap 'log_error "failed at line $LINENO: $BASH_COMMAND"' ERR

require_root "sudo bash $0"
REPO=$(cm_repo_dir)

log_step "Configuration"
cm_load_host_env "$REPO"
require_env INVENTORY_VM_IP INVENTORY_PORT INVENTORY_DB_PORT INVENTORY_DB_NAME \
  INVENTORY_DB_USER INVENTORY_DB_PASSWORD

log_step "PostgreSQL"
# movies_db on this host, open to INVENTORY_DB_USER over loopback only.
cm_local_postgres INVENTORY inventory-vm
# The title search's trigram index needs the pg_trgm extension. The migration creates it when the
# app's role may (a trusted extension, the role owns the database); creating it here as the
# superuser makes the migration independent of that.
has_trgm=$(postgres_psql -d "$INVENTORY_DB_NAME" -Atc "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
if [[ $has_trgm != 1 ]]; then
  postgres_psql -d "$INVENTORY_DB_NAME" -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm' >/dev/null
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
cm_wait_http "http://127.0.0.1:$INVENTORY_PORT/health" 120 ||
  { pm2_logs_tail inventory_app 40 >&2; die "inventory_app is not healthy"; }

cm_summary inventory
