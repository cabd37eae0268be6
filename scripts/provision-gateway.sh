#!/usr/bin/env bash
# Provisioning, step 2 on gateway-vm: the API gateway under PM2 (api_gateway), run as the system
# user cm-gateway with only its own variables (/etc/crud-master/gateway.env: no database
# password), reaching the inventory at INVENTORY_HOST (inventory-vm; scaled, inventory-vm and
# inventory-vm-2, balanced) and RabbitMQ at RABBITMQ_HOST (billing-vm; scaled, the three nodes of
# the cluster, billing-vm-2 first); a default-deny firewall with the gateway's public port open and its
# admin port (/metrics, detailed /health) for this host only. Runs after provision-common.sh;
# Vagrant runs it as root with the gateway's variables in the environment
# (`vagrant provision gateway-vm`).
#
# Idempotent: a second run changes nothing and prints "changed=0" as its last line.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

# shellcheck source=lib/hosts.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/hosts.sh"
cm_provision_begin gateway
require_env GATEWAY_PORT GATEWAY_ADMIN_HOST GATEWAY_ADMIN_PORT INVENTORY_HOST INVENTORY_PORT \
  RABBITMQ_HOST RABBITMQ_PORT RABBITMQ_GATEWAY_USER RABBITMQ_GATEWAY_PASSWORD
log_info "inventory at $INVENTORY_HOST:$INVENTORY_PORT, RabbitMQ at $RABBITMQ_HOST:$RABBITMQ_PORT"

log_step "Firewall"
# Clients reach the public port only. The admin listener (GATEWAY_ADMIN_HOST, this VM's private
# address) answers this host alone: its own traffic to that address arrives on loopback.
cm_firewall "tcp dport $GATEWAY_PORT accept"

log_step "Application (api_gateway as cm-gateway)"
cm_service_user gateway
# Copy of the synced folder in $CM_APP_DIR, its own node_modules, built there (see lib/hosts.sh).
cm_deploy_sources "$REPO" cm-gateway || true
cm_build api-gateway
cm_app_permissions cm-gateway
cm_service_env gateway || true
cm_pm2_ensure api_gateway api-gateway gateway
# The gateway answers as soon as it listens; its /health is 200 only once the inventory and
# RabbitMQ answer too, which depends on the other VMs: wait for an answer, report the rest.
health=$(cm_local_url "${GATEWAY_LISTEN_HOST:-}" "$GATEWAY_PORT" /health)
http_wait "$health" 60 any || { pm2_logs_tail api_gateway 40 >&2; die "api_gateway does not answer"; }
status=$(http_status "$health")
[[ $status == 200 ]] || log_warn "gateway /health answers $status: the inventory or RabbitMQ is not reachable yet (provision inventory-vm and billing-vm)"

cm_summary gateway
