#!/usr/bin/env bash
# Provisioning, step 2 on billing-vm: PostgreSQL (orders_db, local connections only), RabbitMQ
# (listening on loopback and this VM's private address, reachable from gateway-vm and billing-vm
# only, the user from .env, no 'guest') and the billing worker under PM2 as root (billing_app).
# Runs after provision-common.sh; Vagrant runs it as root with every .env value in the
# environment: sudo bash /vagrant/scripts/provision-billing.sh
#
# Idempotent: a second run changes nothing and prints "changed=0" as its last line.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

# shellcheck source=lib/hosts.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/hosts.sh"
cm_provision_begin
require_env GATEWAY_VM_IP BILLING_VM_IP BILLING_PORT BILLING_DB_PORT BILLING_DB_NAME \
  BILLING_DB_USER BILLING_DB_PASSWORD RABBITMQ_PORT RABBITMQ_USER RABBITMQ_PASSWORD

log_step "PostgreSQL"
# orders_db on this host, open to BILLING_DB_USER over loopback only.
cm_local_postgres BILLING billing-vm

log_step "RabbitMQ"
# From Debian's archive (RabbitMQ 4.0 in Debian 13); enabled at boot.
cm_apt_install rabbitmq-server
# Listen on loopback (the worker) and on this VM's private address (the gateway), not on every
# interface (Vagrant's NAT interface among them). A change needs a broker restart.
restart_rmq=0
rmq_conf="# crud-master (written by provisioning): AMQP on loopback and billing-vm's private address only.
listeners.tcp.1 = 127.0.0.1:$RABBITMQ_PORT
listeners.tcp.2 = $BILLING_VM_IP:$RABBITMQ_PORT"
if cm_write_file /etc/rabbitmq/rabbitmq.conf 0644 root:rabbitmq <<<"$rmq_conf"; then restart_rmq=1; fi
# Debian's unit orders the broker after epmd.socket only, so at shutdown epmd.service stops at the
# same time as the broker, and its ExecStop (rabbitmqctl stop, which finds the node through epmd)
# fails after seconds (status 78), leaving systemd to SIGTERM the node. Stopped before epmd, it
# stops in about 2 s; the stop is bounded well below systemd's default 90 s.
cm_systemd_dropin rabbitmq-server.service <<EOF
# crud-master (written by provisioning).
[Unit]
# rabbitmqctl stop (ExecStop) needs epmd: stop the broker before epmd.service, not with it.
After=epmd.service

[Service]
TimeoutStopSec=$CM_RABBITMQ_STOP_TIMEOUT
EOF
rabbitmq_ensure_running_config "$restart_rmq"
# The app's user from .env, rights on billing_queue (and billing_queue.*) only; 'guest' deleted.
# rabbitmq_ensure_user re-asserts all of it; it counts as a change only when the user could not
# log in or guest still existed.
rmq_user_ok=0
if rabbitmq_check_login "$RABBITMQ_USER" "$RABBITMQ_PASSWORD" &&
  ! grep -qxF guest <<<"$(rmqctl -q list_users --no-table-headers | cut -f1)"; then rmq_user_ok=1; fi
rabbitmq_ensure_user "$RABBITMQ_USER" "$RABBITMQ_PASSWORD" "${RABBITMQ_VHOST:-/}" "${RABBITMQ_QUEUE:-billing_queue}"
((rmq_user_ok)) || cm_changed "RabbitMQ user $RABBITMQ_USER (guest removed)"

log_step "Firewall"
# RabbitMQ's AMQP port only for the gateway and this host; its Erlang ports (epmd 4369,
# distribution 25672, management 15672/15692 if ever enabled) and PostgreSQL for nobody from the
# network.
cm_firewall "tcp dport $RABBITMQ_PORT ip saddr { $GATEWAY_VM_IP, $BILLING_VM_IP } accept
tcp dport { $RABBITMQ_PORT, 4369, 25672, 15672, 15692 } drop
tcp dport $BILLING_DB_PORT drop"

log_step "Application (billing_app)"
# Copy of the synced folder in $CM_APP_DIR, its own node_modules, built there (see lib/hosts.sh).
cm_deploy_sources "$REPO" || true
cm_deploy_env "$REPO"
cm_build billing-app
# PM2 restarts the worker with a backoff whenever it exits, and the worker itself retries its
# database and broker, so it also comes up when RabbitMQ or PostgreSQL start late. pm2-root.service
# is ordered after both (not requiring them): at shutdown the worker stops first, draining its
# batch and acknowledging it while the broker and the database are still up.
cm_pm2_ensure billing_app billing-app postgresql.service "postgresql@$(postgres_version)-$PG_CLUSTER_NAME.service" \
  rabbitmq-server.service
http_wait "http://127.0.0.1:$BILLING_PORT/health" 120 ||
  { pm2_logs_tail billing_app 40 >&2; die "billing_app is not healthy"; }

cm_summary billing
