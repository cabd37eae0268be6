#!/usr/bin/env bash
# Provisioning, step 2 on billing-vm: PostgreSQL (orders_db, local connections only; an owner
# role that runs the migrations, an app role that may insert and read orders), RabbitMQ
# (listening on loopback and this VM's private address; a user for the gateway that may only
# publish, one for the worker; no 'guest'), a default-deny firewall (AMQP and billing's
# health/metrics port for gateway-vm only) and the billing worker under PM2 (billing_app) as the
# system user cm-billing with only its own variables (/etc/crud-master/billing.env).
# Scaled (BILLING_NODES=3; README, "Scaling out"): billing-vm, billing-vm-2 and billing-vm-3
# (CM_NODE=1..3) are the three nodes of one RabbitMQ cluster (the Erlang cookie from .env; nodes 2
# and 3 join billing-vm's cluster with `rabbitmqctl join_cluster`), billing_queue is a quorum queue
# with a replica on each, and each host runs a worker; orders_db stays on billing-vm, which then
# also listens on its private address for the app role from the other billing hosts. Erlang's
# ports (epmd 4369, distribution 25672) are open between the billing hosts only.
# Runs after provision-common.sh; Vagrant runs it as root with billing's variables in the
# environment (`vagrant provision billing-vm`).
#
# Idempotent: a second run changes nothing and prints "changed=0" as its last line.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

# shellcheck source=lib/hosts.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/hosts.sh"
cm_provision_begin billing
require_env GATEWAY_VM_IP BILLING_VM_IP BILLING_LISTEN_HOST BILLING_PORT BILLING_DB_PORT RABBITMQ_PORT \
  RABBITMQ_BILLING_USER RABBITMQ_BILLING_PASSWORD
# The other billing hosts (scaled), space-separated and as an nftables set.
others=$(cm_other_ips billing "$CM_NODE")
others_set=$(cm_nft_set "$others")
# AMQP for gateway-vm (and, scaled, the workers of the other billing hosts); billing's
# health/metrics port for gateway-vm only. This host's own traffic arrives on loopback. Scaled,
# Erlang's ports between the billing hosts: epmd (4369), the nodes' distribution (25672), and the
# CLI tools' range (35672-35682: a `rabbitmqctl list_queues` run here gets the other nodes' rows
# from them over a connection back to the CLI; without it, it hangs after the local rows).
if [[ -z $others ]]; then
  rules="tcp dport { $RABBITMQ_PORT, $BILLING_PORT } ip saddr $GATEWAY_VM_IP accept"
else
  rules="tcp dport $RABBITMQ_PORT ip saddr { $GATEWAY_VM_IP, ${others// /, } } accept
tcp dport $BILLING_PORT ip saddr $GATEWAY_VM_IP accept
tcp dport { 4369, 25672, 35672-35682 } ip saddr $others_set accept"
fi

if ((CM_NODE == 1)); then
  log_step "PostgreSQL"
  # orders_db on this host, open to its two roles over loopback only; scaled, to the app role on
  # the other billing hosts too.
  # shellcheck disable=SC2086  # one address a word
  cm_local_postgres BILLING billing-vm $others
  [[ -z $others ]] || rules+=$'\n'"tcp dport $BILLING_DB_PORT ip saddr $others_set accept"
fi

log_step "RabbitMQ"
# From Debian's archive (RabbitMQ 4.0 in Debian 13); enabled at boot.
cm_apt_install rabbitmq-server
# Listen on loopback (the worker) and on this VM's private address (the gateway), not on every
# interface (Vagrant's NAT interface among them). A change needs a broker restart.
restart_rmq=0
rmq_conf="# crud-master (written by provisioning): AMQP on loopback and this VM's private address only.
listeners.tcp.1 = 127.0.0.1:$RABBITMQ_PORT
listeners.tcp.2 = $BILLING_LISTEN_HOST:$RABBITMQ_PORT"
if cm_write_file /etc/rabbitmq/rabbitmq.conf 0644 root:rabbitmq <<<"$rmq_conf"; then restart_rmq=1; fi
if [[ -n $others ]]; then
  # The nodes find each other by host name (rabbit@billing-vm-2) and share one Erlang cookie.
  require_env RABBITMQ_ERLANG_COOKIE
  cm_etc_hosts_block billing
  if rabbitmq_ensure_cookie "$RABBITMQ_ERLANG_COOKIE"; then restart_rmq=1; fi
fi
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
if ((CM_NODE == 1)); then
  # The gateway's and the worker's users with exact-name permissions (lib/rabbitmq.sh), no other
  # user with rights on the vhost, 'guest' deleted. Everything is asserted again on every run; it
  # counts as a change only when a user could not log in or the permissions differ. (Users and
  # permissions are the cluster's: the other nodes get them by joining.)
  require_env RABBITMQ_GATEWAY_USER RABBITMQ_GATEWAY_PASSWORD
  rmq_vhost=${RABBITMQ_VHOST:-/}
  rmq_before=$(rabbitmq_permissions "$rmq_vhost")
  rmq_logins=0
  if rabbitmq_check_login "$RABBITMQ_GATEWAY_USER" "$RABBITMQ_GATEWAY_PASSWORD"; then rmq_logins=$((rmq_logins + 1)); fi
  if rabbitmq_check_login "$RABBITMQ_BILLING_USER" "$RABBITMQ_BILLING_PASSWORD"; then rmq_logins=$((rmq_logins + 1)); fi
  rabbitmq_ensure_users
  if ((rmq_logins < 2)) || [[ $(rabbitmq_permissions "$rmq_vhost") != "$rmq_before" ]]; then
    cm_changed "RabbitMQ users $RABBITMQ_GATEWAY_USER (publish only) and $RABBITMQ_BILLING_USER (worker)"
  fi
else
  # Join billing-vm's cluster (provisioned first), then hold a replica of its quorum queues.
  seed=rabbit@$(cm_node_name billing 1)
  if rabbitmq_join "$seed" 300; then cm_changed "RabbitMQ node joined the cluster of $seed"; fi
  rmq_queues="^$(_rmq_regex_escape "${RABBITMQ_QUEUE:-billing_queue}")(\\.dead)?\$"
  if rabbitmq_grow_queues "rabbit@$(cm_node_name billing "$CM_NODE")" "$rmq_queues"; then
    cm_changed "RabbitMQ: replicas of $rmq_queues on this node"
  fi
fi

log_step "Firewall"
# PostgreSQL and Erlang's ports for nobody else (classic: nobody at all).
cm_firewall "$rules"

log_step "Application (billing_app as cm-billing)"
cm_service_user billing
# Copy of the synced folder in $CM_APP_DIR, its own node_modules, built there (see lib/hosts.sh).
cm_deploy_sources "$REPO" cm-billing || true
cm_build billing-app
cm_app_permissions cm-billing
cm_service_env billing || true
# The worker never runs DDL: its migrations run on billing-vm, as the owner role, before it
# (re)starts (scaled: orders_db's other workers are provisioned after it).
if ((CM_NODE == 1)); then cm_migrate billing billing-app; fi
# PM2 restarts the worker with a backoff whenever it exits, and the worker itself retries its
# database and broker, so it also comes up when RabbitMQ or PostgreSQL start late. pm2-root.service
# is ordered after both (not requiring them): at shutdown the worker stops first, draining its
# batch and acknowledging it while the broker and the database are still up.
if ((CM_NODE == 1)); then
  cm_pm2_ensure billing_app billing-app billing \
    postgresql.service "postgresql@$(postgres_version)-$PG_CLUSTER_NAME.service" rabbitmq-server.service
else
  cm_pm2_ensure billing_app billing-app billing rabbitmq-server.service
fi
# The worker declares billing_queue (and its dead-letter queue) as it starts: the gateway, which
# may not declare it, finds it there from now on. Healthy means it reaches both.
http_wait "$(cm_local_url "$BILLING_LISTEN_HOST" "$BILLING_PORT" /health)" 120 ||
  { pm2_logs_tail billing_app 40 >&2; die "billing_app is not healthy"; }

cm_summary billing
