#!/usr/bin/env bash
# Provisioning, step 2 on gateway-vm: the API gateway under PM2 as root (api_gateway), reaching
# the inventory at INVENTORY_HOST (inventory-vm) and RabbitMQ at RABBITMQ_HOST (billing-vm).
# Runs after provision-common.sh; Vagrant runs it as root with every .env value in the
# environment: sudo bash /vagrant/scripts/provision-gateway.sh
#
# Idempotent: a second run changes nothing and prints "changed=0" as its last line.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

# shellcheck source=lib/hosts.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/hosts.sh"
cm_provision_begin
require_env GATEWAY_PORT INVENTORY_HOST INVENTORY_PORT RABBITMQ_HOST RABBITMQ_PORT
log_info "inventory at $INVENTORY_HOST:$INVENTORY_PORT, RabbitMQ at $RABBITMQ_HOST:$RABBITMQ_PORT"

log_step "Application (api_gateway)"
# Copy of the synced folder in $CM_APP_DIR, its own node_modules, built there (see lib/hosts.sh).
cm_deploy_sources "$REPO" || true
# The deployed .env carries the addresses Vagrant passed (INVENTORY_HOST, RABBITMQ_HOST, ...).
cm_deploy_env "$REPO"
cm_build api-gateway
cm_pm2_ensure api_gateway api-gateway
# The gateway answers as soon as it listens; its /health is 200 only once the inventory and
# RabbitMQ answer too, which depends on the other VMs: wait for an answer, report the rest.
http_wait "http://127.0.0.1:$GATEWAY_PORT/health" 60 any ||
  { pm2_logs_tail api_gateway 40 >&2; die "api_gateway does not answer"; }
status=$(http_status "http://127.0.0.1:$GATEWAY_PORT/health")
[[ $status == 200 ]] || log_warn "gateway /health answers $status: the inventory or RabbitMQ is not reachable yet (provision inventory-vm and billing-vm)"

cm_summary gateway
