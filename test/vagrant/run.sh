#!/usr/bin/env bash
# `npm run test:vagrant`: the real thing, with real Vagrant and real virtual machines (libvirt),
# the unchanged Vagrantfile and provisioning scripts. Slow (software emulation here): not in CI.
#
#  1. installs Debian's vagrant, vagrant-libvirt, libvirt and qemu when missing;
#  2. builds a Debian 13 libvirt box from Debian's archive (test/vagrant/make-box.sh, cached) and
#     adds it under the name the Vagrantfile uses for libvirt (VM_BOX_LIBVIRT), in a Vagrant home
#     of its own (CM_VAGRANT_HOME), so no box of the user's is touched;
#  3. starts virtlogd and libvirtd by hand when nothing runs them (no systemd here);
#  4. `vagrant up --provider libvirt`, `vagrant status`, the users' audit through `vagrant ssh -c`
#     (pm2 stop billing_app, POST /api/billing -> 200, no row, pm2 start billing_app, the row),
#     the gateway cannot reach either PostgreSQL, `vagrant provision` changes nothing;
#  5. `vagrant destroy -f`, and stops the daemons it started (by PID).
#
# The VMs get addresses of this test's own subnets (CM_VAGRANT_SUBNET for the private network,
# CM_VAGRANT_MGMT for vagrant-libvirt's management network), through the environment the
# Vagrantfile honours for *_VM_IP. Every request to the services is sent from inside the VMs
# (`vagrant ssh -c`), none from this machine. CM_LIBVIRT_DRIVER=qemu unless set (KVM here is not
# hardware-backed). Log and timings: $WORK/vagrant-test.log.
set -Eeuo pipefail
# One { ... } block: parsed whole before it runs, so editing the file cannot derail a run.
{

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=../../scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

SUBNET=${CM_VAGRANT_SUBNET:-10.213.58}
MGMT=${CM_VAGRANT_MGMT:-10.213.59.0/24}
WORK=${CM_VAGRANT_WORK:-/var/lib/crud-master-vagrant-test}
export VAGRANT_HOME=${CM_VAGRANT_HOME:-/var/cache/crud-master/vagrant/home}
export VAGRANT_DOTFILE_PATH=$WORK/dot-vagrant
export VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_CHECKPOINT_DISABLE=1
export CM_LIBVIRT_DRIVER=${CM_LIBVIRT_DRIVER:-qemu}
# Emulated VMs boot in minutes, not seconds.
export CM_BOOT_TIMEOUT=${CM_BOOT_TIMEOUT:-3600}
export GATEWAY_VM_IP=$SUBNET.10 INVENTORY_VM_IP=$SUBNET.11 BILLING_VM_IP=$SUBNET.12
export CM_LIBVIRT_MANAGEMENT_NETWORK=$MGMT
# The forwarded gateway port on this machine's loopback: one no local `npm start` uses.
export GATEWAY_HOST_PORT=${GATEWAY_HOST_PORT:-13000}
LOG=$WORK/vagrant-test.log

passed=0 failed=0
started=$SECONDS
declare -a timings=()
started_daemons=()

require_root "sudo npm run test:vagrant"
install -d -m 0755 "$WORK" "$VAGRANT_HOME"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1

ok() { passed=$((passed + 1)); echo "  ok    $*"; }
ko() { failed=$((failed + 1)); echo "  FAIL  $*"; }
check() { local t=$1; shift; if "$@"; then ok "$t"; else ko "$t"; fi; }
timed() {
  local title=$1 t0=$SECONDS rc=0
  shift
  "$@" || rc=$?
  timings+=("$title: $((SECONDS - t0)) s (exit $rc)")
  return "$rc"
}

# libvirt_rules_cleanup: removes the (by then empty) LIBVIRT_* chains and their jumps that
# libvirtd added to iptables, when this test started libvirtd.
libvirt_rules_cleanup() {
  local cmd table rule chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null 2>&1 || continue
    for table in filter nat mangle; do
      while IFS= read -r rule; do
        [[ $rule == -A\ * ]] || continue
        eval "$cmd -t $table -D ${rule#-A }" 2>/dev/null || true
      done < <("$cmd" -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j LIBVIRT_' || true)
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^LIBVIRT_/ { print $2 }'); do
        "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
        "$cmd" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
  # The iptables tables libvirtd made, when nothing is left in them.
  local family
  for family in ip ip6; do
    for table in filter nat mangle; do
      if nft list table "$family" "$table" >/dev/null 2>&1 &&
        ! nft list table "$family" "$table" | grep -qvE '^\s*(table|chain|type|\}|$)'; then
        nft delete table "$family" "$table" 2>/dev/null || true
      fi
    done
  done
}

teardown() {
  local pidfile pid
  echo "==> teardown"
  (cd "$ROOT" && timeout 900 vagrant destroy -f) || true
  # vagrant-libvirt keeps the box's uploaded base image in the storage pool for the next `up`;
  # the next run re-adds the box anyway, so remove the volumes this test's box left.
  if [[ -n ${box_name:-} ]] && virsh -c qemu:///system version >/dev/null 2>&1; then
    local vol prefix=${box_name//\//-VAGRANTSLASH-}_vagrant_box_image_
    for vol in $(virsh -c qemu:///system vol-list default 2>/dev/null | awk -v p="$prefix" 'index($1, p) == 1 { print $1 }'); do
      virsh -c qemu:///system vol-delete --pool default "$vol" >/dev/null && echo "removed volume $vol"
    done
  fi
  for pidfile in "${started_daemons[@]}"; do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] && kill -TERM "$pid" 2>/dev/null || true
  done
  if ((${#started_daemons[@]})); then
    sleep 2
    libvirt_rules_cleanup
    # libvirtd switched IPv4 forwarding on for its NAT networks; put it back.
    [[ -n ${ip_forward_before:-} ]] && sysctl -qw net.ipv4.ip_forward="$ip_forward_before"
  fi
}
on_exit() {
  local status=$?
  trap - EXIT INT TERM
  [[ -n ${CM_VAGRANT_KEEP:-} ]] || teardown
  ((status != 0 && failed == 0)) && failed=1
  echo "==> timings"
  printf '  %s\n' "${timings[@]}" "total: $((SECONDS - started)) s"
  if [[ -n ${TEST_SUMMARY_FILE:-} ]]; then
    printf '{"passed":%d,"failed":%d,"pending":0}\n' "$passed" "$failed" >>"$TEST_SUMMARY_FILE"
  fi
  echo "vagrant: $passed passed, $failed failed"
  ((failed == 0)) || exit 1
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

echo "==> tools"
apt_install_missing vagrant vagrant-libvirt libvirt-daemon-system libvirt-daemon-driver-qemu \
  qemu-system-x86 qemu-utils dnsmasq-base iptables rsync openssh-client curl
# The subnets must be free on this machine.
for net in "$SUBNET." "${MGMT%.*}."; do
  if ip -o addr show | grep -q " inet $net"; then die "$net* is already used on this machine"; fi
done

echo "==> box"
box_name=$(
  env -i bash -c 'source "$1/scripts/lib/common.sh"; load_env "$1/.env" 2>/dev/null; printf "%s\n" "${VM_BOX_LIBVIRT:-debian/trixie64}"' _ "$ROOT"
)
t0=$SECONDS
box=$(bash "$ROOT/test/vagrant/make-box.sh")
timings+=("box build (cached after the first): $((SECONDS - t0)) s")
# (Always: a rebuilt box replaces the one added before; vagrant-libvirt uploads it anew because
# an unversioned box is tracked by its timestamp.)
timed "vagrant box add" vagrant box add --force --name "$box_name" --provider libvirt "$box"

echo "==> libvirt"
ip_forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  install -d -m 0755 /run/libvirt
  if ! [[ -S /run/libvirt/virtlogd-sock ]]; then
    virtlogd -d -p /run/virtlogd.pid && started_daemons+=(/run/virtlogd.pid)
  fi
  libvirtd -d -p /run/libvirtd.pid && started_daemons+=(/run/libvirtd.pid)
  wait_until 30 virsh -c qemu:///system version || die "libvirtd does not answer"
  echo "started virtlogd/libvirtd (no service manager runs them here)"
fi
virsh -c qemu:///system net-list --all

echo "==> vagrant up --provider libvirt (driver $CM_LIBVIRT_DRIVER)"
cd "$ROOT"
# One VM at a time (--no-parallel, as VirtualBox does anyway): emulated vCPUs of three VMs on two
# cores starve each other (a first, parallel run took 8 minutes to get the VMs' addresses; one VM
# alone boots to sshd in about a minute).
check "vagrant up --provider libvirt: three VMs up and provisioned" \
  timed "vagrant up" timeout 10800 vagrant up --provider libvirt --no-parallel
echo "==> vagrant status"
vagrant status || true
check "vagrant status: gateway-vm, inventory-vm and billing-vm running" \
  bash -c 'out=$(vagrant status --machine-readable); for m in gateway-vm inventory-vm billing-vm; do grep -q ",$m,state,running" <<<"$out" || exit 1; done'

on_vm() { local vm=$1; shift; vagrant ssh "$vm" -c "$*" -- -q 2>/dev/null | tr -d '\r'; }
port=$(env -i bash -c 'source "$1/scripts/lib/common.sh"; load_env "$1/.env" 2>/dev/null; echo "$GATEWAY_PORT"' _ "$ROOT")
gw="http://127.0.0.1:$port"

echo "==> the users' audit (vagrant ssh -c)"
check "gateway /health 200 (from gateway-vm)" \
  bash -c "[[ \$(vagrant ssh gateway-vm -c 'curl -s -o /dev/null -w %{http_code} $gw/health' -- -q 2>/dev/null | tr -d '\r') == 200 ]]"
audit() {
  local user=$((400000 + RANDOM)) code n
  on_vm billing-vm 'sudo pm2 stop billing_app' >/dev/null
  on_vm billing-vm 'sudo pm2 list'
  code=$(on_vm gateway-vm "curl -s -o /dev/null -w %{http_code} -X POST -H 'content-type: application/json' -d '{\"user_id\":\"$user\",\"number_of_items\":\"5\",\"total_amount\":\"180\"}' $gw/api/billing/")
  echo "POST /api/billing with billing_app stopped: $code"
  [[ $code == 200 ]] || return 1
  sleep 3
  n=$(on_vm billing-vm "sudo -u postgres psql -d orders_db -Atc 'SELECT count(*) FROM orders WHERE user_id = $user'")
  echo "rows for user $user while stopped: $n"
  [[ $n == 0 ]] || return 1
  on_vm billing-vm 'sudo pm2 start billing_app' >/dev/null
  for _ in $(seq 60); do
    n=$(on_vm billing-vm "sudo -u postgres psql -d orders_db -Atc 'SELECT count(*) FROM orders WHERE user_id = $user'")
    [[ $n == 1 ]] && { echo "after pm2 start billing_app: $n row"; return 0; }
    sleep 2
  done
  return 1
}
check "audit: pm2 stop billing_app, POST -> 200, no row, pm2 start billing_app, the row appears" timed "audit" audit
check "gateway-vm cannot reach either PostgreSQL" \
  bash -c "vagrant ssh gateway-vm -c 'for a in $INVENTORY_VM_IP $BILLING_VM_IP; do if timeout 3 bash -c \"exec 3<>/dev/tcp/\$a/5432\" 2>/dev/null; then exit 1; fi; done' -- -q"
provision_noop() {
  local out
  out=$(vagrant provision 2>&1) || { tail -n 40 <<<"$out"; return 1; }
  grep -E 'crud-master provision [a-z]+: changed=' <<<"$out"
  [[ $(grep -cE 'crud-master provision [a-z]+: changed=0' <<<"$out") == 6 ]]
}
check "vagrant provision again: all six scripts report changed=0" timed "vagrant provision (2nd)" provision_noop
exit 0
}
