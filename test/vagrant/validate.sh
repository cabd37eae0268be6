#!/usr/bin/env bash
# `vagrant validate` of the Vagrantfile for the virtualbox provider, run by .ci/run, for both
# profiles: classic (.env's INVENTORY_NODES=1, BILLING_NODES=1: three machines) and scaled
# (BILLING_NODES=3 INVENTORY_NODES=2 from the shell: six machines). Then, per machine, the names of
# the variables its provisioners get (scripts/lib/provision_env.rb, which the Vagrantfile uses):
# each role only its own credentials.
#
# VirtualBox cannot run on our machines, so a stub VBoxManage (in a temporary folder put first on
# PATH) answers `--version` with a version this Vagrant supports; that is all Vagrant asks of
# VirtualBox to validate the virtualbox blocks. Installs Debian's vagrant package when missing.
# Appends {"passed":N,"failed":N,"pending":0} to $TEST_SUMMARY_FILE when it is set.
set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=../../scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck disable=SC2034  # read by common.sh's log functions
CM_LOG_TAG=vagrant-validate

passed=0 failed=0
stub=$(mktemp -d /tmp/crud-master-vbox-stub.XXXXXX)
vagrant_home=$(mktemp -d /tmp/crud-master-vagrant-home.XXXXXX)
cleanup() {
  rm -rf -- "$stub" "$vagrant_home" "$ROOT/.vagrant.validate"
  if [[ -n ${TEST_SUMMARY_FILE:-} ]]; then
    printf '{"passed":%d,"failed":%d,"pending":0}\n' "$passed" "$failed" >>"$TEST_SUMMARY_FILE"
  fi
  echo "vagrant validate: $passed passed, $failed failed"
}
trap cleanup EXIT

if ! command -v vagrant >/dev/null 2>&1; then
  require_root "sudo bash $0"
  apt_install_missing vagrant
fi
log_info "$(vagrant --version)"

# Vagrant 2.3 supports VirtualBox up to 7.0; the stub claims 7.0.
cat >"$stub/VBoxManage" <<'STUB'
#!/bin/sh
# Stub for `vagrant validate` only: no VirtualBox here.
if [ "$1" = "--version" ]; then echo "7.0.20r163906"; exit 0; fi
echo "VBoxManage stub: only --version is answered" >&2
exit 1
STUB
chmod 0755 "$stub/VBoxManage"

# vagrant_stubbed ARGS...: vagrant with the stub VBoxManage first on PATH and the virtualbox
# provider. VAGRANT_HOME: no boxes, plugins or state of the user's; VAGRANT_DOTFILE_PATH: no
# .vagrant/ in the repository.
# PROFILE_ENV: assignments for Vagrant's environment (the scaled profile's node counts).
PROFILE_ENV=()
vagrant_stubbed() {
  (cd "$ROOT" && env "${PROFILE_ENV[@]}" PATH="$stub:$PATH" VAGRANT_HOME="$vagrant_home" \
    VAGRANT_DOTFILE_PATH="$ROOT/.vagrant.validate" VAGRANT_DEFAULT_PROVIDER=virtualbox \
    VAGRANT_CHECKPOINT_DISABLE=1 vagrant "$@")
}
# record OK_MESSAGE FAIL_MESSAGE STATUS: counts the check, and prints $out when it failed.
record() {
  if (($3 == 0)); then
    log_info "$1"
    passed=$((passed + 1))
  else
    log_error "$2"
    printf '%s\n' "$out" >&2
    failed=$((failed + 1))
  fi
}

# lists_machines STATUS_OUTPUT MACHINE...: each MACHINE backed by virtualbox, and no other.
lists_machines() {
  local out=$1 m
  shift
  for m; do
    grep -q ",$m,provider-name,virtualbox" <<<"$out" || return 1
  done
  [[ $(grep -c ',provider-name,virtualbox' <<<"$out") == "$#" ]]
}

for profile in classic scaled; do
  if [[ $profile == scaled ]]; then
    PROFILE_ENV=(BILLING_NODES=3 INVENTORY_NODES=2)
    machines=(gateway-vm inventory-vm inventory-vm-2 billing-vm billing-vm-2 billing-vm-3)
  else
    PROFILE_ENV=()
    machines=(gateway-vm inventory-vm billing-vm)
  fi
  status=0
  out=$(vagrant_stubbed validate 2>&1) || status=$?
  record "virtualbox, $profile: $out" "vagrant validate (virtualbox, $profile ${PROFILE_ENV[*]}) failed:" "$status"
  status=0
  out=$(vagrant_stubbed status --machine-readable 2>&1) && lists_machines "$out" "${machines[@]}" || status=1
  record "vagrant status ($profile) lists ${machines[*]} (virtualbox)" \
    "vagrant status ($profile) does not list exactly ${machines[*]}:" "$status"
done

status=0
PROFILE_ENV=(BILLING_NODES=2)
out=$(vagrant_stubbed validate 2>&1) && status=1
grep -q 'BILLING_NODES=2: 1 or 3' <<<"$out" || status=1
record "BILLING_NODES=2 is refused (1 or 3)" "BILLING_NODES=2 was not refused:" "$status"

# ---- what each machine's provisioners receive (names only) ----------------------------------------
# names MACHINE: the variables MACHINE's provisioners get, in the scaled profile, one a line.
names() {
  BILLING_NODES=3 INVENTORY_NODES=2 ruby "$ROOT/scripts/lib/provision_env.rb" names "$1"
}
# gets MACHINE VAR... / lacks MACHINE VAR...: MACHINE's provisioners get (do not get) every VAR.
gets() {
  local m=$1 list v
  shift
  list=$(names "$m") || return 1
  for v; do grep -qx "$v" <<<"$list" || { out="$m lacks $v"; return 1; }; done
}
lacks() {
  local m=$1 list v
  shift
  list=$(names "$m") || return 1
  for v; do ! grep -qx "$v" <<<"$list" || { out="$m gets $v"; return 1; }; done
}
# shellcheck disable=SC2034  # used in the eval'd checks below
db_secrets=(INVENTORY_DB_PASSWORD INVENTORY_DB_OWNER_PASSWORD BILLING_DB_PASSWORD BILLING_DB_OWNER_PASSWORD)
role_check() {
  local title=$1
  shift
  out=
  status=0
  "$@" || status=1
  record "provisioners: $title" "provisioners: $title:" "$status"
}
# shellcheck disable=SC2016  # eval'd
role_check "gateway-vm gets the gateway's RabbitMQ user and no database password, no cookie" \
  eval 'gets gateway-vm RABBITMQ_GATEWAY_PASSWORD GATEWAY_PORT CM_NODE CM_PROVISION_KEYS &&
    lacks gateway-vm "${db_secrets[@]}" RABBITMQ_BILLING_PASSWORD RABBITMQ_ERLANG_COOKIE VM_BOX'
# shellcheck disable=SC2016  # eval'd
role_check "inventory-vm gets movies_db's owner (migrations); inventory-vm-2 only the app role" \
  eval 'gets inventory-vm INVENTORY_DB_OWNER_PASSWORD INVENTORY_DB_PASSWORD &&
    gets inventory-vm-2 INVENTORY_DB_PASSWORD INVENTORY_VM_IP && lacks inventory-vm-2 INVENTORY_DB_OWNER_PASSWORD &&
    lacks inventory-vm BILLING_DB_PASSWORD BILLING_DB_OWNER_PASSWORD RABBITMQ_GATEWAY_PASSWORD RABBITMQ_BILLING_PASSWORD RABBITMQ_ERLANG_COOKIE'
# shellcheck disable=SC2016  # eval'd
role_check "billing-vm gets orders_db's owner, both RabbitMQ users (it creates them) and the cookie; billing-vm-2/-3 the worker's only" \
  eval 'gets billing-vm BILLING_DB_OWNER_PASSWORD RABBITMQ_GATEWAY_PASSWORD RABBITMQ_BILLING_PASSWORD RABBITMQ_ERLANG_COOKIE &&
    gets billing-vm-3 BILLING_DB_PASSWORD RABBITMQ_BILLING_PASSWORD RABBITMQ_ERLANG_COOKIE &&
    lacks billing-vm-2 BILLING_DB_OWNER_PASSWORD RABBITMQ_GATEWAY_PASSWORD INVENTORY_DB_PASSWORD INVENTORY_DB_OWNER_PASSWORD &&
    lacks billing-vm INVENTORY_DB_PASSWORD INVENTORY_DB_OWNER_PASSWORD'
# shellcheck disable=SC2016  # eval'd
role_check "classic billing-vm gets no Erlang cookie (no cluster)" \
  eval '! ruby "$ROOT/scripts/lib/provision_env.rb" names billing-vm | grep -qx RABBITMQ_ERLANG_COOKIE'

((failed == 0))
