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

# vagrant_stubbed ARGS...: vagrant with the stub VBoxManage first on PATH and the virtualbox
# provider. VAGRANT_HOME: no boxes, plugins or state of the user's; VAGRANT_DOTFILE_PATH: no
# .vagrant/ in the repository.
vagrant_stubbed() {
  (cd "$ROOT" && env PATH="$stub:$PATH" VAGRANT_HOME="$vagrant_home" \
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

status=0
out=$(vagrant_stubbed validate 2>&1) || status=$?
record "virtualbox: $out" "vagrant validate (virtualbox) failed:" "$status"

# The machine names the contract fixes, each backed by virtualbox.
lists_machines() {
  local m
  for m in gateway-vm inventory-vm billing-vm; do
    grep -q ",$m,provider-name,virtualbox" <<<"$1" || return 1
  done
}
status=0
out=$(vagrant_stubbed status --machine-readable 2>&1) && lists_machines "$out" || status=1
record "vagrant status lists gateway-vm, inventory-vm and billing-vm (virtualbox)" \
  "vagrant status does not list the three machines:" "$status"

((failed == 0))
