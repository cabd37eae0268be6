#!/usr/bin/env bash
# shellcheck disable=SC2317  # (functions below run from traps)
# What `npm test` runs. Works on a fresh Debian/Ubuntu machine as root:
#   1. installs PostgreSQL and RabbitMQ from the distribution's archive if they are missing
#      (without leaving their system services running: the tests start private instances),
#   2. installs node modules if needed, builds, type-checks the tests,
#   3. runs mocha with a private run directory (TEST_RUN_DIR) and, whatever happens (success,
#      failure, Ctrl-C, kill), kills every process the harness recorded there and removes it.
# Extra arguments go to mocha:  npm test -- --grep inventory
# TEST_KEEP_RUN_DIR=1 keeps the run directory (data and logs) for a post-mortem.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# shellcheck disable=SC2034  # read by common.sh's log functions
CM_LOG_TAG=test.sh
# shellcheck source=lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=lib/node.sh
source "$ROOT/scripts/lib/node.sh"

# --- 1. system packages ---------------------------------------------------------------------

have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }
have_rabbitmq() { [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; }
have_node() { command -v node >/dev/null && command -v npm >/dev/null; }

install_system_packages() {
  local pkgs=()
  have_postgres || pkgs+=(postgresql)
  have_rabbitmq || pkgs+=(rabbitmq-server)
  have_node || pkgs+=(nodejs npm)
  [ "${#pkgs[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing ${pkgs[*]}; run as root (or install them) first"
  log_info "installing ${pkgs[*]} from the apt archive (their services left stopped)"
  apt_install_no_start "${pkgs[@]}"
  # Belt and braces: a cluster the install brought up anyway (policy-rc.d ignored) is stopped.
  if [[ " ${pkgs[*]} " == *" postgresql "* ]] && command -v pg_lsclusters >/dev/null; then
    pg_lsclusters --no-header 2>/dev/null | while read -r ver cluster _port status _rest; do
      if [ "$status" = online ]; then pg_ctlcluster "$ver" "$cluster" stop || true; fi
    done
  fi
  have_postgres || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb"
  have_rabbitmq || die "rabbitmq-server installed but no /usr/lib/rabbitmq/bin/rabbitmq-server"
  have_node || die "node/npm still missing"
}

install_system_packages

# --- 1b. Chromium, for the browser tests of /api/docs and of the catalogue page at / --------
# test/e2e/docs-browser.test.ts and catalogue-browser.test.ts drive Debian's own chromium
# package with playwright-core (an npm devDependency that downloads no browser). It starts no
# service, so no policy-rc.d dance.
install_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing /usr/bin/chromium; run as root (or apt-get install chromium) first"
  log_info "installing chromium from the apt archive (browser tests of /api/docs and /)"
  apt_install_missing chromium
  [ -x /usr/bin/chromium ] || die "chromium installed but no /usr/bin/chromium"
}

install_chromium

node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js >= 20 required (found $(node --version))"

# --- 2. node modules, build, type-check -----------------------------------------------------

npm_ci_if_needed "$ROOT"

log_info "build (tsc -b)"
npx tsc -b
log_info "type-check tests (tsc -p tsconfig.test.json)"
npx tsc -p tsconfig.test.json

# --- 3. run mocha with a private run directory ----------------------------------------------

TEST_RUN_DIR=$(mktemp -d /tmp/crud-master-test.XXXXXX)
# 0711: the postgres user (PostgreSQL runs as it when we are root) must traverse into its subdir.
chmod 0711 "$TEST_RUN_DIR"
mkdir -p "$TEST_RUN_DIR/pids" "$TEST_RUN_DIR/logs"
export TEST_RUN_DIR
log_info "run dir $TEST_RUN_DIR"

mocha_pid=
cleaned_up=

# "pid ppid" of every process, from /proc (procps may be absent on a minimal machine).
proc_table() {
  local f s rest pid
  for f in /proc/[0-9]*/stat; do
    { s=$(<"$f"); } 2>/dev/null || continue
    pid=${s%% *}
    rest=${s##*) }
    # shellcheck disable=SC2086
    set -- $rest
    printf '%s %s\n' "$pid" "$2"
  done
}

# Start time (field 22 of /proc/<pid>/stat) of a live process, empty if it is gone or a zombie.
start_time() {
  local s rest
  { s=$(<"/proc/$1/stat"); } 2>/dev/null || return 0
  rest=${s##*) }
  # shellcheck disable=SC2086
  set -- $rest
  [ "$1" = Z ] && return 0
  printf '%s' "${20}"
}

# The pids given and all their descendants (children first found via the parent links).
with_descendants() {
  local -A children=()
  local pid ppid queue=("$@") out=()
  while read -r pid ppid; do children[$ppid]+=" $pid"; done < <(proc_table)
  while [ "${#queue[@]}" -gt 0 ]; do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    out+=("$pid")
    # shellcheck disable=SC2206
    [ -n "${children[$pid]:-}" ] && queue+=(${children[$pid]})
  done
  printf '%s\n' "${out[@]}"
}

# Kills what the harness recorded under $TEST_RUN_DIR/pids: each record is a process-group
# leader "<pid>" containing "<starttime> group <name>". A pid whose start time differs was reused
# by an unrelated process and is left alone. Descendants are killed too: PostgreSQL backends call
# setsid(), so they are not in the postmaster's group.
kill_recorded() {
  local dir=$TEST_RUN_DIR/pids f pid recorded kind roots=() victims=() v
  [ -d "$dir" ] || return 0
  for f in "$dir"/*; do
    [ -f "$f" ] || continue
    pid=${f##*/}
    [[ $pid =~ ^[0-9]+$ ]] || continue
    read -r recorded kind _ <"$f" || true
    if [ -n "$(start_time "$pid")" ]; then
      [ "$(start_time "$pid")" = "$recorded" ] || continue
      roots+=("$pid")
    elif [ "$kind" = group ]; then
      # Leader gone: members of its group may remain; a pgid is not reused while they exist.
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done
  [ "${#roots[@]}" -gt 0 ] || return 0
  mapfile -t victims < <(with_descendants "${roots[@]}")
  log_info "killing leftover test processes: ${victims[*]}"
  for pid in "${roots[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  for v in "${victims[@]}"; do kill -KILL "$v" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for v in "${victims[@]}"; do [ -n "$(start_time "$v")" ] && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
}

cleanup() {
  [ -n "$cleaned_up" ] && return 0
  cleaned_up=1
  if [ -n "$mocha_pid" ] && [ -e "/proc/$mocha_pid" ]; then
    # Interrupted: stop mocha (and npx's children) before it starts anything else.
    local tree=()
    mapfile -t tree < <(with_descendants "$mocha_pid")
    kill -TERM "${tree[@]}" 2>/dev/null || true
    for _ in $(seq 1 30); do [ -e "/proc/$mocha_pid" ] || break; sleep 0.1; done
    kill -KILL "${tree[@]}" 2>/dev/null || true
  fi
  kill_recorded
  if [ "${TEST_KEEP_RUN_DIR:-}" = 1 ]; then
    log_info "kept $TEST_RUN_DIR"
  else
    rm -rf "$TEST_RUN_DIR" 2>/dev/null || { sleep 0.5; rm -rf "$TEST_RUN_DIR"; }
  fi
}

on_signal() {
  log_info "interrupted ($1): cleaning up"
  cleanup
  trap - "$1"
  exit "$2"
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

# In the background + wait: a trapped signal interrupts `wait` at once (bash would otherwise
# defer the trap until mocha finishes).
npx mocha "$@" &
mocha_pid=$!
status=0
wait "$mocha_pid" || status=$?
mocha_pid=
exit "$status"
