# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2119
# RabbitMQ from the distribution's archive: install, keep running (with or without systemd),
# and give the gateway and the billing worker a user each, with rights on exactly the queue and
# exchange each needs. Needs common.sh.

[[ -n ${_CM_LIB_RABBITMQ:-} ]] && return 0
_CM_LIB_RABBITMQ=1
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

# Seconds rabbitmq_ensure_running waits for the broker to finish booting.
: "${RABBITMQ_START_TIMEOUT:=120}"
# Seconds systemd gives the broker to stop (TimeoutStopSec; provision-billing.sh's drop-in). A
# clean `rabbitmqctl stop` takes about 2 s; systemd's default would be 90 s.
: "${CM_RABBITMQ_STOP_TIMEOUT:=20}"

rabbitmq_install() {
  apt_install_missing rabbitmq-server
}

# rmq_as_rabbitmq CMD ARGS...: CMD as the rabbitmq user with its own HOME, in that HOME, so that a
# CLI tool presents (and the broker uses) the node's Erlang cookie: the file
# $HOME/.erlang.cookie. RABBITMQ_ERLANG_COOKIE is removed from CMD's environment: the scripts
# export every `.env` variable, and RabbitMQ's CLI tools and server take that variable over the
# file, so with it `npm start` failed ("Erlang distribution failed") against any broker started
# without it (Debian's package starts one as it installs). rabbitmq_ensure_cookie writes the
# variable's value to the file where a cluster needs it.
rmq_as_rabbitmq() {
  local home
  home=$(getent passwd rabbitmq | cut -d: -f6)
  home=${home:-/var/lib/rabbitmq}
  (cd "$home" && runuser -u rabbitmq -- env -u RABBITMQ_ERLANG_COOKIE HOME="$home" "$@")
}

# rmqctl ARGS...: rabbitmqctl as the rabbitmq user (rmq_as_rabbitmq), whether /usr/sbin/rabbitmqctl
# is Debian's su wrapper or the plain script; bounded by CM_RMQCTL_TIMEOUT seconds (default 60).
# Standard input is passed on (used to hand passwords over without a command line).
rmqctl() {
  rmq_as_rabbitmq timeout "${CM_RMQCTL_TIMEOUT:-60}" rabbitmqctl "$@"
}

# rabbitmq_ping: true when the local node answers (it may still be booting).
rabbitmq_ping() {
  CM_RMQCTL_TIMEOUT=30 rmqctl -q status >/dev/null 2>&1
}

# rabbitmq_await_startup SECONDS: waits until the node runs and has finished booting.
# 'rabbitmqctl await_startup' fails at once while the Erlang node is not registered yet, so it
# is retried until the deadline.
rabbitmq_await_startup() {
  local timeout=${1:-$RABBITMQ_START_TIMEOUT}
  local deadline=$((SECONDS + timeout)) left
  while true; do
    left=$((deadline - SECONDS))
    ((left < 1)) && left=1
    if CM_RMQCTL_TIMEOUT=$((left + 10)) rmqctl -q --timeout "$left" await_startup >/dev/null 2>&1; then
      return 0
    fi
    ((SECONDS >= deadline)) && return 1
    sleep 2
  done
}

# rabbitmq_ensure_running: starts the broker when it does not answer (systemd's unit when
# systemd runs; otherwise Debian's wrapper runs 'rabbitmq-server -detached' as the rabbitmq
# user) and waits up to RABBITMQ_START_TIMEOUT seconds for it to boot.
rabbitmq_ensure_running() {
  require_root
  if has_systemd; then
    systemctl enable --quiet rabbitmq-server >/dev/null 2>&1 || true
    if ! systemctl is-active --quiet rabbitmq-server; then
      log_info "starting RabbitMQ (systemd)"
      systemctl start rabbitmq-server || die "systemctl start rabbitmq-server failed (journalctl -u rabbitmq-server)"
    fi
  elif ! CM_RMQCTL_TIMEOUT=30 rmqctl -q --timeout 20 await_startup >/dev/null 2>&1; then
    # (await_startup fails at once when no node runs, and returns as soon as a running one has
    # booted: one CLI call, each of which starts an Erlang VM, instead of two.)
    log_info "starting RabbitMQ (rabbitmq-server -detached as user rabbitmq, no systemd)"
    install -d -o rabbitmq -g rabbitmq -m 0755 /var/log/rabbitmq /var/lib/rabbitmq
    # -detached: the Erlang VM daemonizes itself; this returns at once. setsid keeps the node
    # out of the caller's session and process group.
    setsid bash -c "$(declare -f rmq_as_rabbitmq); rmq_as_rabbitmq rabbitmq-server -detached" \
      </dev/null >/dev/null 2>&1 || die "rabbitmq-server -detached failed (see /var/log/rabbitmq/)"
  fi
  if ! rabbitmq_await_startup "$RABBITMQ_START_TIMEOUT"; then
    die "RabbitMQ did not finish booting within ${RABBITMQ_START_TIMEOUT} s (see /var/log/rabbitmq/)"
  fi
  log_info "RabbitMQ is up"
}

# rabbitmq_ensure_running_config CHANGED: rabbitmq_ensure_running, and when CHANGED is 1 (the
# caller just wrote /etc/rabbitmq/rabbitmq.conf) a restart so the broker reads it: when it was
# already running with the old file, and under systemd always (Debian starts the broker as the
# package installs, before the file existed).
rabbitmq_ensure_running_config() {
  local changed=$1 was_running=0
  rabbitmq_ping && was_running=1
  rabbitmq_ensure_running
  ((changed)) || return 0
  if has_systemd; then
    log_info "restarting RabbitMQ (configuration changed)"
    systemctl restart rabbitmq-server || die "RabbitMQ restart failed (journalctl -u rabbitmq-server)"
  elif ((was_running)); then
    log_info "restarting RabbitMQ (configuration changed)"
    rmqctl -q stop >/dev/null 2>&1 || true
    rabbitmq_ensure_running
  else
    return 0
  fi
  rabbitmq_await_startup "$RABBITMQ_START_TIMEOUT" || die "RabbitMQ did not come back"
}

# _rmq_regex_escape STRING: STRING with the characters special to regular expressions escaped.
_rmq_regex_escape() {
  printf '%s' "$1" | sed -e 's/[][\\.^$*+?(){}|]/\\&/g'
}

# _rmq_list NAME...: first column of 'rabbitmqctl list_NAME' without headers.
_rmq_list() {
  rmqctl -q list_"$1" --no-table-headers 2>/dev/null | cut -f1
}

# _rmq_pw_cmd PASSWORD SUBCOMMAND USER: rabbitmqctl SUBCOMMAND USER (add_user, change_password,
# authenticate_user) with PASSWORD on standard input, never on a command line. RabbitMQ 4's CLI
# (Debian 13) only reads it without -q and without a '--' before USER, and only a line ending in
# a newline (the newline is not part of the password); 3.x accepts the same.
_rmq_pw_cmd() {
  local password=$1 sub=$2 user=$3
  [[ $user != -* ]] || die "RabbitMQ: a user name may not start with '-': $user"
  printf '%s\n' "$password" | rmqctl "$sub" "$user" >/dev/null 2>&1
}

# rabbitmq_regex_exact NAME: an anchored regular expression matching exactly NAME (for the
# permission patterns: `billing_queue` must not also match `billing_queue_other`).
rabbitmq_regex_exact() {
  printf '^%s$' "$(_rmq_regex_escape "$1")"
}

# rabbitmq_ensure_user USER PASSWORD VHOST CONFIGURE WRITE READ
# Idempotent. USER exists with PASSWORD and no tags (no management or administrator rights),
# VHOST exists, and USER's permissions on VHOST are exactly the three regular expressions
# (RabbitMQ's configure, write and read; '^$' matches no resource). Passwords reach rabbitmqctl
# on standard input, never on a command line.
rabbitmq_ensure_user() {
  local user=${1:?rabbitmq_ensure_user: USER required}
  local password=${2:?rabbitmq_ensure_user: PASSWORD required}
  local vhost=${3:-/} configure=${4:?CONFIGURE required} write=${5:?WRITE required} read=${6:?READ required}
  require_root
  local users
  # One listing serves every check below: each rabbitmqctl call costs a second or more.
  users=$(rmqctl -q list_users --no-table-headers) || die "RabbitMQ: cannot list users (is it running?)"
  if cut -f1 <<<"$users" | grep -qxF -- "$user"; then
    log_info "RabbitMQ: user $user exists, setting its password"
    _rmq_pw_cmd "$password" change_password "$user" ||
      die "RabbitMQ: could not change the password of $user"
    if ! grep -qxF -- "$user"$'\t''[]' <<<"$users"; then
      log_info "RabbitMQ: removing the tags of $user (no management or administrator rights)"
      rmqctl -q set_user_tags -- "$user" >/dev/null || die "RabbitMQ: could not clear the tags of $user"
    fi
  else
    log_info "RabbitMQ: adding user $user"
    _rmq_pw_cmd "$password" add_user "$user" || die "RabbitMQ: could not add user $user"
  fi
  if [[ $vhost != / ]] && ! _rmq_list vhosts | grep -qxF -- "$vhost"; then
    log_info "RabbitMQ: adding vhost $vhost"
    rmqctl -q add_vhost -- "$vhost" >/dev/null || die "RabbitMQ: could not add vhost $vhost"
  fi
  log_info "RabbitMQ: permissions of $user on $vhost: configure '$configure' write '$write' read '$read'"
  rmqctl -q set_permissions -p "$vhost" -- "$user" "$configure" "$write" "$read" >/dev/null ||
    die "RabbitMQ: could not set the permissions of $user"
}

# rabbitmq_permissions VHOST: "user<TAB>configure<TAB>write<TAB>read" for every user with
# permissions on VHOST, sorted (what rabbitmq_ensure_users compares before and after).
rabbitmq_permissions() {
  rmqctl -q list_permissions -p "$1" --no-table-headers 2>/dev/null | sort
}

# rabbitmq_only_users VHOST USER...: clears the permissions on VHOST of every user not among
# USER... (the single user of earlier deployments, any other leftover) and deletes the default
# 'guest' user (administrator, password "guest") unless it is one of USER....
rabbitmq_only_users() {
  local vhost=$1 other
  shift
  while IFS=$'\t' read -r other _; do
    [[ -n $other ]] || continue
    printf '%s\n' "$@" | grep -qxF -- "$other" && continue
    log_info "RabbitMQ: clearing the permissions of $other on $vhost (not one of: $*)"
    rmqctl -q clear_permissions -p "$vhost" -- "$other" >/dev/null ||
      die "RabbitMQ: could not clear the permissions of $other"
  done < <(rabbitmq_permissions "$vhost")
  if ! printf '%s\n' "$@" | grep -qxF guest && _rmq_list users | grep -qxF guest; then
    log_info "RabbitMQ: deleting the default 'guest' user"
    rmqctl -q delete_user guest >/dev/null || die "RabbitMQ: could not delete user guest"
  fi
}

# rabbitmq_ensure_users: the two users of crud-master, from the environment (.env), and no other
# user with rights on the vhost. The topology (packages/billing-contract/src/topology.ts, whose
# rabbitPermissions() these patterns mirror and test/hosts proves): each queue Q and Q.dead has a
# durable direct exchange of the same name bound to it; the gateway publishes orders to the
# exchange Q, the worker its dead letters to the exchange Q.dead.
#   RABBITMQ_BILLING_USER (the worker) declares, binds, consumes and dead-letters, on its two
#     names only:        configure ^Q(\.dead)?$   write ^Q(\.dead)?$   read ^Q(\.dead)?$
#   RABBITMQ_GATEWAY_USER only publishes to the exchange Q; it checks the queue passively (no
#     right needed) and can neither declare, consume, purge nor delete anything, nor publish to
#     the default exchange (which reaches every queue):
#                        configure ^$             write ^Q$            read ^$
# Q is RABBITMQ_QUEUE (default billing_queue), escaped: exact names only.
rabbitmq_ensure_users() {
  require_env RABBITMQ_GATEWAY_USER RABBITMQ_GATEWAY_PASSWORD RABBITMQ_BILLING_USER RABBITMQ_BILLING_PASSWORD
  local vhost=${RABBITMQ_VHOST:-/} q own
  q=$(_rmq_regex_escape "${RABBITMQ_QUEUE:-billing_queue}")
  own="^$q(\\.dead)?\$"
  [[ $RABBITMQ_GATEWAY_USER != "$RABBITMQ_BILLING_USER" ]] ||
    die "RABBITMQ_GATEWAY_USER and RABBITMQ_BILLING_USER must differ (both $RABBITMQ_BILLING_USER)"
  rabbitmq_ensure_user "$RABBITMQ_BILLING_USER" "$RABBITMQ_BILLING_PASSWORD" "$vhost" "$own" "$own" "$own"
  rabbitmq_ensure_user "$RABBITMQ_GATEWAY_USER" "$RABBITMQ_GATEWAY_PASSWORD" "$vhost" '^$' "^$q\$" '^$'
  rabbitmq_only_users "$vhost" "$RABBITMQ_BILLING_USER" "$RABBITMQ_GATEWAY_USER"
}

# rabbitmq_check_login USER PASSWORD: true when USER authenticates with PASSWORD.
rabbitmq_check_login() {
  _rmq_pw_cmd "$2" authenticate_user "$1"
}

# ---- a cluster of nodes (the scaled profile: BILLING_NODES=3) ----------------------------------

# rmqqueues ARGS...: rabbitmq-queues as rmqctl runs rabbitmqctl (the rabbitmq user, its cookie).
rmqqueues() {
  local tool
  tool=$(command -v rabbitmq-queues || printf '/usr/lib/rabbitmq/bin/rabbitmq-queues')
  rmq_as_rabbitmq timeout "${CM_RMQCTL_TIMEOUT:-60}" "$tool" "$@"
}

# rabbitmq_ensure_cookie COOKIE: the node's Erlang cookie (the shared secret of a cluster's nodes
# and of their CLI tools) is COOKIE. A different one is replaced with the broker stopped (stopping
# needs the old cookie). Returns 0 when it changed it (the caller (re)starts the broker).
rabbitmq_ensure_cookie() {
  local cookie=$1 home file
  [[ $cookie =~ ^[A-Za-z0-9]{20,255}$ ]] || die "RABBITMQ_ERLANG_COOKIE: 20 to 255 letters and digits"
  home=$(getent passwd rabbitmq | cut -d: -f6)
  file=${home:-/var/lib/rabbitmq}/.erlang.cookie
  if [[ -f $file && $(cat -- "$file") == "$cookie" && $(stat -c '%a %U' "$file") == "400 rabbitmq" ]]; then
    return 1
  fi
  if has_systemd && systemctl is-active --quiet rabbitmq-server; then
    log_info "stopping RabbitMQ to set the cluster's Erlang cookie"
    systemctl stop rabbitmq-server || die "systemctl stop rabbitmq-server failed"
  fi
  printf '%s' "$cookie" | cm_write_file "$file" 0400 rabbitmq:rabbitmq || true
  return 0
}

# rabbitmq_in_cluster_with NODE: true when this node's cluster lists NODE (rabbit@host).
rabbitmq_in_cluster_with() {
  local out
  out=$(rmqctl -q cluster_status 2>/dev/null) || return 1
  grep -qxF -- "$1" <<<"$out"
}

# rabbitmq_join NODE SECONDS: makes this node a member of NODE's cluster (`rabbitmqctl
# join_cluster`: stop_app, reset, join, start_app), retrying while NODE is not reachable yet, for
# up to SECONDS. A node already in that cluster is left alone. Returns 0 when it joined.
rabbitmq_join() {
  local seed=$1 timeout=$2 deadline
  rabbitmq_in_cluster_with "$seed" && return 1
  deadline=$((SECONDS + timeout))
  log_info "RabbitMQ: joining the cluster of $seed"
  until CM_RMQCTL_TIMEOUT=20 rmqctl -q -n "$seed" status >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "RabbitMQ: $seed did not answer within $timeout s (provision it first; epmd 4369 and 25672 open between the billing hosts?)"
    sleep 3
  done
  # Two nodes joining at once may find the cluster busy: a failed join is retried (3 times).
  local attempt
  for attempt in 1 2 3; do
    rmqctl -q stop_app >/dev/null || die "rabbitmqctl stop_app failed"
    rmqctl -q reset >/dev/null || die "rabbitmqctl reset failed"
    rmqctl -q join_cluster "$seed" >/dev/null && break
    rmqctl -q start_app >/dev/null 2>&1 || true
    ((attempt < 3 && SECONDS < deadline)) || die "rabbitmqctl join_cluster $seed failed"
    log_warn "RabbitMQ: join_cluster $seed failed (attempt $attempt), retrying"
    sleep $((5 * attempt))
  done
  rmqctl -q start_app >/dev/null || die "rabbitmqctl start_app failed"
  rabbitmq_await_startup "$RABBITMQ_START_TIMEOUT" || die "RabbitMQ did not come back after joining $seed"
  rabbitmq_in_cluster_with "$seed" || die "RabbitMQ: this node is not in $seed's cluster after join_cluster"
  return 0
}

# rabbitmq_grow_queues NODE QUEUE_REGEX: a replica on NODE for every quorum queue matching
# QUEUE_REGEX that exists without one (a queue declared before NODE joined keeps its first
# members otherwise). A membership change the queue refuses while another one is under way (two
# nodes growing at once) is tried again, up to 5 times. Returns 0 when it added one.
rabbitmq_grow_queues() {
  local node=$1 pattern=$2 missing out attempt
  for attempt in 1 2 3 4 5 6; do
    out=$(rmqctl -q list_queues --no-table-headers name type members) ||
      die "RabbitMQ: cannot list the queues (Erlang's ports between the billing hosts open?)"
    missing=$(N=$node P=$pattern awk -F'\t' '$1 ~ ENVIRON["P"] && $2 == "quorum" && index($3, ENVIRON["N"]) == 0 { print $1 }' <<<"$out")
    [[ -n $missing ]] || return $((attempt == 1))
    ((attempt < 6)) || die "RabbitMQ: no replica on $node of: $(tr '\n' ' ' <<<"$missing")"
    log_info "RabbitMQ: adding a replica on $node of: $(tr '\n' ' ' <<<"$missing")"
    rmqqueues -q grow "$node" all --queue-pattern "$pattern" >/dev/null || log_warn "rabbitmq-queues grow $node failed"
    sleep $((2 * attempt))
  done
}
