#!/usr/bin/env bash
# Provisioning, step 1 of 2 on every VM (gateway-vm, inventory-vm, billing-vm): what all three
# need before their own role script runs. Vagrant runs it as root with the VM's role's variables
# in the environment (the Vagrantfile's `env:`; README, "Security").
#
# Idempotent: a second run changes nothing and prints "changed=0" as its last line.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

# shellcheck source=lib/hosts.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/hosts.sh"
cm_provision_begin common
log_info "repository: $REPO; gateway ${GATEWAY_VM_IP:-?}, inventory ${INVENTORY_VM_IP:-?}, billing ${BILLING_VM_IP:-?}"

log_step "Base packages"
# Everything comes from Debian's own archive (the only source the VMs may use):
#   rsync: copies the synced folder to $CM_APP_DIR (see lib/hosts.sh, cm_deploy_sources);
#   curl: health checks; ca-certificates: TLS to the npm registry; nftables: the firewall;
#   sudo: the audit runs 'sudo pm2 ...' and 'sudo -u postgres psql'.
cm_apt_install rsync curl ca-certificates nftables sudo

log_step "Node.js and PM2"
# Node.js 20 and npm from Debian 13's archive (no NodeSource or other third-party repository).
had_node=$(command -v node || true)
node_install
[[ -n $had_node ]] || cm_changed "installed Node.js"
# PM2 on PATH (/usr/local/bin/pm2) at the version the repository pins, so 'sudo pm2 list' and the
# systemd unit 'pm2 startup' writes use the same PM2 as the deployed app's node_modules.
if ! command -v pm2 >/dev/null 2>&1; then
  pm2_install_global "$REPO"
  cm_changed "installed pm2 globally"
fi

cm_summary common
