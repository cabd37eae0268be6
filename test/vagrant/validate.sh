#!/usr/bin/env bash
# `vagrant validate` of the Vagrantfile for the virtualbox provider, run by .ci/run.
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

# VAGRANT_HOME: no boxes, plugins or state of the user's; VAGRANT_DOTFILE_PATH: no .vagrant/ in
# the repository.
run_validate() {
  local provider=$1
  (cd "$ROOT" && env PATH="$stub:$PATH" VAGRANT_HOME="$vagrant_home" \
    VAGRANT_DOTFILE_PATH="$ROOT/.vagrant.validate" VAGRANT_DEFAULT_PROVIDER="$provider" \
    VAGRANT_CHECKPOINT_DISABLE=1 vagrant validate)
}

if out=$(run_validate virtualbox 2>&1); then
  log_info "virtualbox: $out"
  passed=$((passed + 1))
else
  log_error "vagrant validate (virtualbox) failed:"
  printf '%s\n' "$out" >&2
  failed=$((failed + 1))
fi

# The machine names the contract fixes, each backed by virtualbox.
lists_machines() {
  local m
  for m in gateway-vm inventory-vm billing-vm; do
    grep -q ",$m,provider-name,virtualbox" <<<"$1" || return 1
  done
}
if out=$(cd "$ROOT" && env PATH="$stub:$PATH" VAGRANT_HOME="$vagrant_home" \
  VAGRANT_DOTFILE_PATH="$ROOT/.vagrant.validate" VAGRANT_CHECKPOINT_DISABLE=1 \
  vagrant status --machine-readable 2>&1) && lists_machines "$out"; then
  log_info "vagrant status lists gateway-vm, inventory-vm and billing-vm (virtualbox)"
  passed=$((passed + 1))
else
  log_error "vagrant status does not list the three machines:"
  printf '%s\n' "$out" >&2
  failed=$((failed + 1))
fi

((failed == 0))
