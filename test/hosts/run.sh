#!/usr/bin/env bash
# `npm run test:hosts`: the provisioning scripts proven on three separate Debian 13 hosts.
#
# gateway-vm, inventory-vm and billing-vm are systemd-nspawn machines booting a real systemd
# (root file system from test/hosts/rootfs.sh: debootstrap from Debian's archive, cached), each in
# its own network namespace, all on a private bridge this test creates, with NAT through this
# machine only for DNS, HTTP and HTTPS (apt to Debian's archive, npm to the npm registry). The
# repository is bind-mounted read-only at /vagrant and the scripts run inside each host exactly as
# the Vagrantfile's provisioners run them: as root, provision-common.sh then provision-<role>.sh,
# every .env value in the environment, the VM addresses replaced by this test's own subnet.
#
# Then, from a fourth namespace (the "client", the user's machine): the gateway's /health; the
# Postman collection through the gateway (newman); the users' audit (pm2 stop billing_app on
# billing-vm, POST /api/billing -> 200, no row in orders_db via `sudo -u postgres psql`,
# pm2 start billing_app, the row appears, with `sudo pm2`); least privilege (test/hosts/privileges.sh:
# each app runs as its own user, env file modes, no foreign credential on a host, the firewall
# from every namespace, the gateway's RabbitMQ user refused, the app roles cannot DROP, /health
# bodies); who can reach PostgreSQL and RabbitMQ (the gateway
# host reaches neither PostgreSQL); a second provisioning run changes nothing (every script
# prints changed=0, no PM2 app, PostgreSQL or RabbitMQ restarted); the billing worker starts
# while RabbitMQ is down and catches up; each host rebooted brings its PM2 app back.
#
# Everything it creates is removed at the end, also on failure or Ctrl-C: the containers (by the
# PID of their systemd-nspawn), the processes left in its namespaces, the namespaces, the bridge,
# its nftables table, the copies of the root file system; forwarding on the uplink is put back
# (unless another bridge, e.g. libvirt's, appeared meanwhile and may rely on it).
#
# Network safety: every address is on CM_HOSTS_SUBNET (default 10.213.57, a /24 of our own);
# before anything is sent to a host, `ip route get` in the sending namespace must show the route
# leaving directly through that namespace's veth on our bridge. Nothing is sent from this
# machine's own namespace. Forwarding out of the bridge is limited to ports 53, 80 and 443.
#
# Environment: CM_HOSTS_SUBNET (first three octets of a private /24), CM_HOSTS_KEEP=1 (leave the
# hosts running at the end, even after a failure, to look inside with nsenter; tear down later
# with CM_HOSTS_TEARDOWN_ONLY=1), CM_HOSTS_SKIP_REBOOT=1, CM_HOSTS_REBOOT_LOOP=N (reboot each
# host N times instead of once; count, slowest and median shutdown printed, every reboot in
# logs/reboots.tsv), CM_HOSTS_DOWN_LIMIT (seconds a host may take to go down; see DOWN_LIMIT),
# CM_HOSTS_CACHE (rootfs, apt and npm caches; default /var/cache/crud-master).
#
# CM_HOSTS_PROFILE=scaled (`npm run test:hosts:scaled`): the scaled profile (README, "Scaling
# out") on six hosts: gateway-vm, inventory-vm, inventory-vm-2, billing-vm, billing-vm-2,
# billing-vm-3 (INVENTORY_NODES=2, BILLING_NODES=3); each role's first host is provisioned before
# its others. The same checks, then test/hosts/scaled.sh (the cluster, the firewall between the new
# hosts, a backlog shared by the three workers, a poison message dead-lettered by the delivery
# limit, an inventory host and a RabbitMQ node powered off under traffic); no reboot round.
#
# Each host's provisioners get what the Vagrantfile would pass that VM (scripts/lib/provision_env.rb:
# its role's variables only), and the snapshot at /vagrant carries no .env, as Vagrant's rsync.
#
# The hosts' journals are persistent. When a check fails, each host's journal of its previous
# boot (with its shutdown) and current boot is copied to $LOGS/<machine>.journal.log before the
# teardown (and a reboot that was too slow to $LOGS/<machine>-reboot-<round>.journal.log).
# Appends {"passed":N,"failed":N,"pending":0} to $TEST_SUMMARY_FILE when set; last line:
#   hosts: N passed, N failed
set -Eeuo pipefail
# The whole script is one { ... } block: bash parses it entirely before running any of it, so
# editing this file while a run is going cannot derail that run.
{

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=../../scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck disable=SC2034  # read by common.sh's log functions
CM_LOG_TAG=test-hosts

SUBNET=${CM_HOSTS_SUBNET:-10.213.57}
CACHE=${CM_HOSTS_CACHE:-/var/cache/crud-master}
WORK=${CM_HOSTS_WORK:-/var/lib/crud-master-hosts-test}
LOGS=$WORK/logs
BR=cmh-br0
NAT_TABLE=cmh_hosts_test
PROFILE=${CM_HOSTS_PROFILE:-classic}
# Every host either profile may have (the teardown removes them all); HOSTS: this run's.
declare -A MACHINE=([gateway]=gateway-vm [inventory]=inventory-vm [billing]=billing-vm
  [inventory2]=inventory-vm-2 [billing2]=billing-vm-2 [billing3]=billing-vm-3)
declare -A ROLE=([gateway]=gateway [inventory]=inventory [billing]=billing
  [inventory2]=inventory [billing2]=billing [billing3]=billing)
declare -A NODE=([gateway]=1 [inventory]=1 [billing]=1 [inventory2]=2 [billing2]=2 [billing3]=3)
declare -A NS=([gateway]=cmh-gateway [inventory]=cmh-inventory [billing]=cmh-billing [client]=cmh-client
  [inventory2]=cmh-inventory2 [billing2]=cmh-billing2 [billing3]=cmh-billing3)
declare -A VETH=([gateway]=cmh-gw0 [inventory]=cmh-inv0 [billing]=cmh-bil0 [client]=cmh-cli0
  [inventory2]=cmh-inv2 [billing2]=cmh-bil2 [billing3]=cmh-bil3)
declare -A IP=([gateway]=$SUBNET.10 [inventory]=$SUBNET.11 [billing]=$SUBNET.12 [client]=$SUBNET.20
  [inventory2]=$SUBNET.13 [billing2]=$SUBNET.14 [billing3]=$SUBNET.15)
case $PROFILE in
  classic)
    HOSTS=(inventory billing gateway)
    # provisioned all at once
    STAGES=("inventory billing gateway")
    NODE_COUNTS=(INVENTORY_NODES=1 BILLING_NODES=1)
    ;;
  scaled)
    HOSTS=(inventory billing gateway inventory2 billing2 billing3)
    # each role's node 1 first: the others use its database and join its RabbitMQ
    STAGES=("inventory billing" "inventory2 billing2 billing3 gateway")
    NODE_COUNTS=(INVENTORY_NODES=2 BILLING_NODES=3)
    # (six hosts rebooted one by one would add minutes; the classic run proves the reboots)
    CM_HOSTS_SKIP_REBOOT=1
    ;;
  *) die "CM_HOSTS_PROFILE=$PROFILE: classic or scaled" ;;
esac
BILLING_HOSTS=()
for host in "${HOSTS[@]}"; do [[ ${ROLE[$host]} != billing ]] || BILLING_HOSTS+=("$host"); done
BR_IP=$SUBNET.1
declare -A NSPAWN_PID=()
# PIDs of this script's background jobs that run commands inside the hosts.
declare -A prov_pid=() prov_rc=()
PATH_IN_HOST=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# CM_HOSTS_REBOOT_LOOP=N: reboot each host N times instead of once (see "Reboot" below).
REBOOT_ROUNDS=${CM_HOSTS_REBOOT_LOOP:-1}
[[ $REBOOT_ROUNDS =~ ^[1-9][0-9]{0,2}$ ]] || die "CM_HOSTS_REBOOT_LOOP=$REBOOT_ROUNDS: give a count from 1 to 999"
# Seconds a host may take to go down after `systemctl reboot`: the longest stop chain the
# provisioning allows, on billing-vm: pm2-root.service (TimeoutStopSec CM_PM2_STOP_TIMEOUT), then
# rabbitmq-server.service (CM_RABBITMQ_STOP_TIMEOUT), with 15 s for PostgreSQL (under 1 s) and
# the rest of the shutdown (2 s). A host slower than that has a stop job past its timeout.
# shellcheck source=../../scripts/lib/hosts.sh
source "$ROOT/scripts/lib/hosts.sh"
# shellcheck source=../../scripts/lib/rabbitmq.sh
source "$ROOT/scripts/lib/rabbitmq.sh"
DOWN_LIMIT=${CM_HOSTS_DOWN_LIMIT:-$((CM_PM2_STOP_TIMEOUT + CM_RABBITMQ_STOP_TIMEOUT + 15))}

passed=0 failed=0
failures=()
started_at=$SECONDS

# ---- results --------------------------------------------------------------------------------------
pass() {
  passed=$((passed + 1))
  printf '  \033[32mok\033[0m    %s\n' "$*" >&2
}
fail() {
  failed=$((failed + 1))
  failures+=("$*")
  printf '  \033[31mFAIL\033[0m  %s\n' "$*" >&2
}
# check TITLE COMMAND...: one test.
check() {
  local title=$1
  shift
  if "$@"; then pass "$title"; else fail "$title"; fi
}

# ---- safety -----------------------------------------------------------------------------------------
[[ $SUBNET =~ ^(10\.[0-9]{1,3}\.[0-9]{1,3}|192\.168\.[0-9]{1,3}|172\.(1[6-9]|2[0-9]|3[01])\.[0-9]{1,3})$ ]] ||
  die "CM_HOSTS_SUBNET=$SUBNET: give the first three octets of a private /24 (e.g. 10.213.57)"

# route_ok NS ADDR: true when, inside namespace NS, the route to ADDR leaves directly (no
# gateway) through NS's own veth, which this test attached to its bridge. Called before sending
# anything to ADDR from NS.
route_ok() {
  local ns=$1 addr=$2 out dev
  [[ $addr == "$SUBNET".* ]] || { log_error "refusing to send to $addr: not on $SUBNET.0/24"; return 1; }
  out=$(ip -n "$ns" route get "$addr" 2>&1) || { log_error "ip -n $ns route get $addr: $out"; return 1; }
  if [[ $out == *" via "* || ! $out =~ dev\ ([^ ]+) ]]; then
    log_error "refusing to send to $addr from $ns: route is '$out'"
    return 1
  fi
  dev=${BASH_REMATCH[1]}
  # Our veth, inside NS, whose peer is a port of our bridge.
  # (Outputs are captured before grep: with pipefail, grep -q closing the pipe early fails it.)
  local details links
  details=$(ip -n "$ns" -d link show dev eth0)
  if [[ $dev != eth0 ]] || ! grep -q 'veth' <<<"$details"; then
    log_error "refusing to send to $addr from $ns: route leaves through '$dev', not our veth"
    return 1
  fi
  local peer
  peer=$(ip -n "$ns" -o link show dev eth0 | sed -n 's/.*eth0@if\([0-9]*\).*/\1/p')
  links=$(ip -o link show)
  if [[ -z $peer ]] || ! grep -q "^$peer: [^:]*@.*master $BR " <<<"$links"; then
    log_error "refusing to send to $addr from $ns: eth0's peer is not on $BR"
    return 1
  fi
}

# in_ns NS COMMAND...: runs COMMAND in namespace NS (only after route_ok for its target).
in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# ---- the hosts --------------------------------------------------------------------------------------
# leader HOST: the PID (in this namespace) of HOST's systemd, PID 1 inside it.
leader() {
  local pid
  for pid in $(ip netns pids "${NS[$1]}" 2>/dev/null); do
    if [[ $(awk '/^NSpid:/ { print $NF }' "/proc/$pid/status" 2>/dev/null) == 1 ]]; then
      printf '%s\n' "$pid"
      return 0
    fi
  done
  return 1
}

# hexec HOST COMMAND...: runs COMMAND as root inside HOST (all its namespaces), with a clean
# environment as a root login has.
hexec() {
  local host=$1 pid
  shift
  pid=$(leader "$host") || { log_error "$host is not running"; return 1; }
  nsenter --all -t "$pid" -- /usr/bin/env -i PATH="$PATH_IN_HOST" HOME=/root LANG=C.UTF-8 \
    TERM=dumb USER=root LOGNAME=root "$@"
}

# start_host HOST: boots HOST's systemd-nspawn machine in the background; records its PID.
start_host() {
  local host=$1 dir=$WORK/hosts/${MACHINE[$1]} cache
  # A host of its own caches; an extra host of a role starts from a copy of its role's.
  for cache in apt-archives npm; do
    if [[ ! -d $CACHE/$cache-$host && -d $CACHE/$cache-${ROLE[$host]} ]]; then
      cp -a "$CACHE/$cache-${ROLE[$host]}" "$CACHE/$cache-$host"
    fi
  done
  install -d -m 0755 "$CACHE/apt-archives-$host/partial" "$CACHE/npm-$host"
  # The caches only spare downloads between runs: apt and npm still install everything.
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn --boot --directory="$dir" \
    --machine="${MACHINE[$host]}" --register=no --keep-unit \
    --network-namespace-path="/run/netns/${NS[$host]}" --capability=CAP_NET_ADMIN \
    --bind-ro="$SRC:/vagrant" \
    --bind="$CACHE/apt-archives-$host:/var/cache/apt/archives" \
    --bind="$CACHE/npm-$host:/root/.npm" \
    --console=passive --link-journal=no --resolv-conf=off --timezone=off \
    </dev/null >>"$LOGS/${MACHINE[$host]}.console.log" 2>&1 &
  NSPAWN_PID[$host]=$!
  log_info "started ${MACHINE[$host]} (systemd-nspawn PID ${NSPAWN_PID[$host]})"
}

# wait_booted HOST SECONDS: waits for HOST's systemd to finish booting (running or degraded).
wait_booted() {
  local host=$1 timeout=$2 deadline state=
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if leader "$host" >/dev/null; then
      state=$(hexec "$host" systemctl is-system-running 2>/dev/null || true)
      case $state in
        running | degraded) return 0 ;;
      esac
    fi
    kill -0 "${NSPAWN_PID[$host]}" 2>/dev/null || { log_error "${MACHINE[$host]}: systemd-nspawn exited"; return 1; }
    sleep 1
  done
  log_error "${MACHINE[$host]} did not finish booting in $timeout s (state: ${state:-none})"
  return 1
}

# stop_host HOST: asks HOST to power off (SIGTERM to systemd-nspawn), SIGKILL after 60 s.
stop_host() {
  local host=$1 pid=${NSPAWN_PID[$1]:-} i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log_warn "${MACHINE[$host]} did not stop in 60 s: SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  unset "NSPAWN_PID[$host]"
}

# ---- timing and the hosts' journals -------------------------------------------------------------------------
# elapsed_ms T0: milliseconds since T0 (microseconds since the epoch, from ${EPOCHREALTIME/[.,]/}).
elapsed_ms() {
  local now=${EPOCHREALTIME/[.,]/}
  printf '%d\n' "$(((now - $1) / 1000))"
}
# secs MS: MS milliseconds as seconds with one decimal.
secs() {
  printf '%d.%d\n' "$(($1 / 1000))" "$(($1 % 1000 / 100))"
}

# host_journal HOST JOURNALCTL_ARGS...: HOST's journal, read from its root file system here (it is
# persistent, see the journald drop-in below), so also while HOST is down or shutting down.
host_journal() {
  local host=$1
  shift
  journalctl -D "$WORK/hosts/${MACHINE[$host]}/var/log/journal" --no-pager "$@" 2>/dev/null
}

# keep_journal HOST [TAG]: copies HOST's journal of its last two boots (the one before the last
# reboot, with its shutdown, and the current one) to $LOGS/<machine>[-TAG].journal.log.
keep_journal() {
  local host=$1 file=$LOGS/${MACHINE[$1]}${2:+-$2}.journal.log
  [[ -d $WORK/hosts/${MACHINE[$host]}/var/log/journal ]] || return 0
  {
    printf '### %s: journal of the previous boot (with its shutdown)\n' "${MACHINE[$host]}"
    host_journal "$host" -b -1 -o short-precise
    printf '\n### %s: journal of the current boot\n' "${MACHINE[$host]}"
    host_journal "$host" -b 0 -o short-precise
  } >"$file"
  log_warn "kept ${MACHINE[$host]}'s journal: $file"
}

# ---- setup and teardown ---------------------------------------------------------------------------------
MOUNTED_NSPAWN_RUN=0
UPLINK=

# kill_tree PID SIGNAL: SIGNAL to PID and, first, to its descendants (found through /proc).
kill_tree() {
  local pid=$1 sig=$2 child
  for child in $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
    kill_tree "$child" "$sig"
  done
  kill "-$sig" "$pid" 2>/dev/null || true
}

teardown() {
  local host ns pid
  log_step "Teardown"
  # Our provisioning jobs first (their nsenter would otherwise hold a host's shutdown up).
  for pid in "${prov_pid[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill_tree "$pid" KILL
    wait "$pid" 2>/dev/null || true
  done
  for host in "${!NSPAWN_PID[@]}"; do
    stop_host "$host"
  done
  # Whatever is still in our namespaces (a container from an interrupted earlier run, a command
  # we ran there) was started by this test: end it by PID.
  for ns in "${NS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  sleep 1
  for ns in "${NS[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  for host in "${!VETH[@]}"; do
    ip link del "${VETH[$host]}" 2>/dev/null || true
  done
  ip link del "$BR" 2>/dev/null || true
  nft delete table ip "$NAT_TABLE" 2>/dev/null || true
  # IPv4 forwarding was switched on for the uplink only (and for our bridge, gone now). Put the
  # uplink back as it was, unless some other bridge now exists: its owner (libvirt, docker)
  # switches forwarding on for itself and would lose it.
  if [[ -f $WORK/forwarding.orig ]]; then
    local uplink old others
    read -r uplink old <"$WORK/forwarding.orig"
    others=$(ip -o link show type bridge 2>/dev/null | grep -v " $BR:" || true)
    if [[ -n $others ]]; then
      log_info "left net.ipv4.conf.$uplink.forwarding as it is: other bridges exist ($(awk -F': ' '{ printf "%s ", $2 }' <<<"$others"))"
    elif [[ -e /proc/sys/net/ipv4/conf/$uplink/forwarding ]]; then
      sysctl -qw "net.ipv4.conf.$uplink.forwarding=$old" || true
    fi
    rm -f "$WORK/forwarding.orig"
  fi
  if ((MOUNTED_NSPAWN_RUN)) || [[ -f $WORK/nspawn-run.mounted ]]; then
    umount /run/systemd/nspawn 2>/dev/null || true
    rm -f "$WORK/nspawn-run.mounted"
  fi
  if [[ -d $WORK/hosts ]]; then
    # (No mount of ours is left under it: the containers' mounts lived in their own namespaces.)
    rm -rf --one-file-system -- "$WORK/hosts"
  fi
  rm -rf --one-file-system -- "$WORK/vagrant-src" "$WORK/env"
  # (the scaled checks' scratch files; their figures are in the output)
  rm -f -- "$WORK"/traffic-*.txt "$WORK"/metrics-*.txt
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM ERR
  # Whatever fails from here on (a journal with no previous boot), the teardown must still run.
  set +e
  # Something failed: each host's journal (last boot and shutdown, current boot) goes to the logs
  # before the teardown removes the hosts.
  if ((status != 0 || failed)); then
    for host in "${HOSTS[@]}"; do keep_journal "$host"; done
  fi
  if [[ -n ${CM_HOSTS_KEEP:-} ]]; then
    log_warn "CM_HOSTS_KEEP set: hosts left running; tear down with CM_HOSTS_TEARDOWN_ONLY=1 $0"
  else
    teardown
  fi
  # A run that stopped early counts as a failure.
  if ((status != 0 && failed == 0)); then
    failed=1
  fi
  if [[ -n ${TEST_SUMMARY_FILE:-} ]]; then
    printf '{"passed":%d,"failed":%d,"pending":0}\n' "$passed" "$failed" >>"$TEST_SUMMARY_FILE"
  fi
  if ((${#failures[@]})); then
    printf 'failed:\n' >&2
    printf '  - %s\n' "${failures[@]}" >&2
  fi
  printf '%s host test (%d hosts) took %d s; logs in %s\n' "$PROFILE" "${#HOSTS[@]}" "$((SECONDS - started_at))" "$LOGS" >&2
  echo "hosts: $passed passed, $failed failed"
  if ((failed)); then exit 1; fi
  exit "$status"
}

require_root "sudo npm run test:hosts"

if [[ -n ${CM_HOSTS_TEARDOWN_ONLY:-} ]]; then
  trap - EXIT
  teardown
  exit 0
fi

trap on_exit EXIT
trap 'log_error "interrupted"; exit 130' INT TERM
trap 'log_error "failed at line $LINENO: $BASH_COMMAND"' ERR

log_step "Tools"
# (ruby: scripts/lib/provision_env.rb, what the Vagrantfile gives each VM)
apt_install_missing systemd-container debootstrap nftables iproute2 curl util-linux rsync ruby
# Leftovers of an interrupted earlier run (same names) go first.
teardown >/dev/null 2>&1
install -d -m 0755 "$WORK" "$LOGS" "$WORK/hosts"
rm -f "$LOGS"/*.log

log_step "Network $SUBNET.0/24"
# The subnet must be free here: no address or route of this machine may already cover it.
if grep -q " inet $SUBNET\." <<<"$(ip -o addr show)"; then die "$SUBNET.0/24 is already used on this machine"; fi
if grep -q "^$SUBNET\." <<<"$(ip route show)"; then die "$SUBNET.0/24 is already routed on this machine"; fi
ip link add "$BR" type bridge
ip addr add "$BR_IP/24" dev "$BR"
ip link set "$BR" up
for host in "${HOSTS[@]}" client; do
  ns=${NS[$host]}
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "${VETH[$host]}" type veth peer name eth0 netns "$ns"
  ip link set "${VETH[$host]}" master "$BR" up
  ip -n "$ns" addr add "${IP[$host]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$BR_IP"
done
# NAT for the hosts' apt and npm (and the DNS lookups they need): out of the bridge only to
# ports 53, 80 and 443; nothing from outside into the bridge but replies.
# Forwarding is switched on per interface, not globally: on our bridge (packets from the hosts)
# and on the uplink (their replies), which is remembered and put back at the end.
UPLINK=$(ip route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
[[ -n $UPLINK ]] || die "no default route: the hosts could not reach Debian's archive"
printf '%s %s\n' "$UPLINK" "$(cat "/proc/sys/net/ipv4/conf/$UPLINK/forwarding")" >"$WORK/forwarding.orig"
nft -f - <<EOF
table ip $NAT_TABLE {
  chain forward {
    type filter hook forward priority filter - 1; policy accept;
    iifname "$BR" oifname "$BR" accept
    iifname "$BR" ip saddr $SUBNET.0/24 meta l4proto { tcp, udp } th dport { 53, 80, 443 } accept
    iifname "$BR" drop
    oifname "$BR" ct state established,related accept
    oifname "$BR" drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr $SUBNET.0/24 oifname != "$BR" masquerade
  }
}
EOF
sysctl -qw "net.ipv4.conf.$BR.forwarding=1" "net.ipv4.conf.$UPLINK.forwarding=1"
log_info "bridge $BR $BR_IP/24 ($PROFILE): $(for host in "${HOSTS[@]}"; do printf '%s %s, ' "${MACHINE[$host]}" "${IP[$host]}"; done)client ${IP[client]}"

log_step "Root file system"
rootfs=$(CM_HOSTS_CACHE=$CACHE bash "$ROOT/test/hosts/rootfs.sh")
# systemd-nspawn keeps state in /run/systemd/nspawn and wants it on a tmpfs (a machine without
# systemd may have /run on disk).
install -d -m 0755 /run/systemd/nspawn
if [[ $(stat -f -c %T /run/systemd/nspawn) != tmpfs ]]; then
  mount -t tmpfs -o mode=0755 cmh-nspawn /run/systemd/nspawn
  MOUNTED_NSPAWN_RUN=1
  : >"$WORK/nspawn-run.mounted"
fi
resolvers=$(grep -E '^nameserver[[:space:]]' /etc/resolv.conf || true)
[[ -n $resolvers ]] || die "no nameserver in /etc/resolv.conf for the hosts"
for host in "${HOSTS[@]}"; do
  dir=$WORK/hosts/${MACHINE[$host]}
  cp -a "$rootfs" "$dir"
  printf '%s\n' "${MACHINE[$host]}" >"$dir/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "${MACHINE[$host]}" >"$dir/etc/hosts"
  # A persistent journal (a host's previous boot, shutdown included, is readable after a reboot
  # with journalctl -b -1, and copied to the logs when a check fails).
  install -d -m 0755 "$dir/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=persistent\n' >"$dir/etc/systemd/journald.conf.d/90-crud-master-test.conf"
  rm -f "$dir/etc/resolv.conf"
  printf '%s\n' "$resolvers" >"$dir/etc/resolv.conf"
  # The hosts trust what this machine trusts: a network that inspects TLS (as this test machine's
  # does) presents certificates of a local CA, installed here in /usr/local/share/ca-certificates;
  # without it npm in the hosts cannot reach the registry. (A real VM talks to the real registry.)
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    install -d -m 0755 "$dir/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
    chroot "$dir" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in ${MACHINE[$host]}"
    # npm's own TLS uses Node's built-in CA list unless told: point it at the system bundle.
    printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' >"$dir/etc/npmrc"
  fi
done

# /vagrant in the hosts: a snapshot of the working tree (as `vagrant rsync` makes one, without
# .env), bound read-only, so that edits made while the test runs do not reach the hosts half way.
# Nothing in it for others (o-rwx), as the Vagrantfile's rsync makes it.
SRC=$WORK/vagrant-src
rsync -a --delete --chmod=o-rwx --exclude=/.env --exclude=/.git/ --exclude=node_modules/ --exclude=dist/ --exclude='*.tsbuildinfo' \
  --exclude=/.vagrant/ --exclude='/.vagrant.*/' "$ROOT/" "$SRC/"

log_step "Boot"
for host in "${HOSTS[@]}"; do start_host "$host"; done
for host in "${HOSTS[@]}"; do
  check "${MACHINE[$host]} boots systemd" wait_booted "$host" 120
done
((failed == 0)) || die "the hosts did not boot (see $LOGS/*.console.log)"

# ---- provisioning -----------------------------------------------------------------------------------------
# Every .env value, with this test's addresses for the VMs: what the checks read (env_value).
mapfile -t PROVISION_ENV < <(
  env -i bash -c '
    source "$1/scripts/lib/common.sh"
    export GATEWAY_VM_IP=$2 INVENTORY_VM_IP=$3 BILLING_VM_IP=$4 INVENTORY_HOST=$3 RABBITMQ_HOST=$4 \
      INVENTORY_LISTEN_HOST=$3 BILLING_LISTEN_HOST=$4 GATEWAY_ADMIN_HOST=$2
    load_env "$1/.env" 2>/dev/null
    for key in $(sed -n -E "s/^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=.*/\2/p" "$1/.env"); do
      printf "%s=%s\n" "$key" "${!key}"
    done
  ' _ "$ROOT" "${IP[gateway]}" "${IP[inventory]}" "${IP[billing]}"
)
# What the Vagrantfile's provisioners would give each VM (its role's variables, CM_NODE,
# CM_PROVISION_KEYS), with this test's addresses and the profile's node counts: one file a host.
install -d -m 0700 "$WORK/env"
for host in "${HOSTS[@]}"; do
  env GATEWAY_VM_IP="${IP[gateway]}" INVENTORY_VM_IP="${IP[inventory]}" BILLING_VM_IP="${IP[billing]}" \
    INVENTORY_VM_2_IP="${IP[inventory2]}" BILLING_VM_2_IP="${IP[billing2]}" BILLING_VM_3_IP="${IP[billing3]}" \
    "${NODE_COUNTS[@]}" ruby "$ROOT/scripts/lib/provision_env.rb" env "${MACHINE[$host]}" >"$WORK/env/$host" ||
    die "scripts/lib/provision_env.rb env ${MACHINE[$host]} failed"
done
gateway_port=$(printf '%s\n' "${PROVISION_ENV[@]}" | sed -n 's/^GATEWAY_PORT=//p')
inventory_port=$(printf '%s\n' "${PROVISION_ENV[@]}" | sed -n 's/^INVENTORY_PORT=//p')
billing_port=$(printf '%s\n' "${PROVISION_ENV[@]}" | sed -n 's/^BILLING_PORT=//p')
rabbitmq_port=$(printf '%s\n' "${PROVISION_ENV[@]}" | sed -n 's/^RABBITMQ_PORT=//p')
billing_db=$(printf '%s\n' "${PROVISION_ENV[@]}" | sed -n 's/^BILLING_DB_NAME=//p')
inventory_db_port=$(printf '%s\n' "${PROVISION_ENV[@]}" | sed -n 's/^INVENTORY_DB_PORT=//p')
billing_db_port=$(printf '%s\n' "${PROVISION_ENV[@]}" | sed -n 's/^BILLING_DB_PORT=//p')
admin_port=$(printf '%s\n' "${PROVISION_ENV[@]}" | sed -n 's/^GATEWAY_ADMIN_PORT=//p')
# env_value NAME: NAME's value in the provisioners' environment.
env_value() {
  printf '%s\n' "${PROVISION_ENV[@]}" | sed -n "s/^$1=//p"
}

# provision HOST RUN: provision-common.sh then provision-<role>.sh inside HOST, as Vagrant runs
# them (with that VM's variables); output in $LOGS/<machine>-provision-<RUN>.log. Fails unless both
# end in changed=N.
provision() {
  local host=$1 log=$LOGS/${MACHINE[$1]}-provision-$2.log script host_env=()
  mapfile -t host_env <"$WORK/env/$host"
  : >"$log"
  for script in provision-common.sh "provision-${ROLE[$host]}.sh"; do
    printf '==> %s\n' "$script" >>"$log"
    if ! timeout 2400 nsenter --all -t "$(leader "$host")" -- /usr/bin/env -i PATH="$PATH_IN_HOST" \
      HOME=/root LANG=C.UTF-8 TERM=dumb USER=root LOGNAME=root "${host_env[@]}" \
      bash "/vagrant/scripts/$script" </dev/null >>"$log" 2>&1; then
      printf '<== %s FAILED\n' "$script" >>"$log"
      return 1
    fi
  done
}

# changes_in LOG: the sum of the changed=N counts in a provisioning log.
changes_in() {
  awk -F'changed=' '/^crud-master provision [a-z]+: changed=[0-9]+$/ { n += $2; c++ } END { if (c != 2) print "missing"; else print n + 0 }' "$1"
}

# provision_round RUN: every host provisioned (run RUN), stage after stage, the hosts of a stage at
# once, as `vagrant up` / `vagrant provision` would; prov_rc[HOST] holds each exit status (255: not
# run, because an earlier stage failed). Returns non-zero after the first stage with a failure.
provision_round() {
  local run=$1 stage host stage_hosts
  for host in "${HOSTS[@]}"; do prov_rc[$host]=255; done
  for stage in "${STAGES[@]}"; do
    read -r -a stage_hosts <<<"$stage"
    for host in "${stage_hosts[@]}"; do
      provision "$host" "$run" &
      prov_pid[$host]=$!
    done
    for host in "${stage_hosts[@]}"; do wait "${prov_pid[$host]}" && prov_rc[$host]=0 || prov_rc[$host]=$?; done
    for host in "${stage_hosts[@]}"; do ((prov_rc[$host] == 0)) || return 1; done
  done
}

log_step "Provisioning (as Vagrant does; hosts of a stage at once: ${STAGES[*]/%/;})"
t0=$SECONDS
provision_round 1 || true
for host in "${HOSTS[@]}"; do
  log=$LOGS/${MACHINE[$host]}-provision-1.log
  if ((prov_rc[$host] == 0)); then
    pass "${MACHINE[$host]} provisioned ($(changes_in "$log") changes)"
  elif ((prov_rc[$host] == 255)); then
    fail "${MACHINE[$host]} provisioned (not run: an earlier stage failed)"
  else
    fail "${MACHINE[$host]} provisioned (log: $log)"
    tail -n 40 "$log" >&2
  fi
done
log_info "first provisioning took $((SECONDS - t0)) s"
((failed == 0)) || die "provisioning failed"

# ---- from the client --------------------------------------------------------------------------------------
GW_URL=http://${IP[gateway]}:$gateway_port

# http CODE_VAR BODY_FILE METHOD URL [JSON]: one request from the client namespace, or from the
# namespace of host HTTP_FROM when set (the inventory's and billing's ports answer gateway-vm only).
http() {
  local -n _code=$1
  local body=$2 method=$3 url=$4 data=${5:-} addr ns=${NS[${HTTP_FROM:-client}]}
  addr=${url#http://}
  addr=${addr%%[:/]*}
  route_ok "$ns" "$addr" || return 1
  local -a args=(-s -m 20 -o "$body" -w '%{http_code}' -X "$method")
  [[ -n $data ]] && args+=(-H 'content-type: application/json' --data "$data")
  _code=$(in_ns "$ns" curl "${args[@]}" "$url" 2>/dev/null) || _code=000
}

wait_200() {
  local url=$1 timeout=$2 code deadline
  deadline=$((SECONDS + timeout))
  while true; do
    http code /dev/null GET "$url" || return 1
    [[ $code == 200 ]] && return 0
    ((SECONDS >= deadline)) && { log_error "$url: $code after $timeout s"; return 1; }
    sleep 1
  done
}

# tcp_open FROM_NS ADDR PORT: true when a TCP connection from FROM_NS to ADDR:PORT is accepted
# within 3 s.
tcp_open() {
  local ns=$1 addr=$2 port=$3
  route_ok "$ns" "$addr" || return 2
  in_ns "$ns" timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$addr" "$port" 2>/dev/null
}
tcp_closed() {
  local rc=0
  tcp_open "$@" || rc=$?
  ((rc == 1 || rc == 124))
}

# orders_rows USER_ID: rows of orders_db with that user_id, read on billing-vm as the users do.
orders_rows() {
  hexec billing sudo -u postgres psql -d "$billing_db" -Atc "SELECT count(*) FROM orders WHERE user_id = $1" 2>/dev/null
}
wait_rows() {
  local user=$1 want=$2 timeout=$3 deadline n
  deadline=$((SECONDS + timeout))
  while true; do
    n=$(orders_rows "$user" || true)
    [[ $n == "$want" ]] && return 0
    ((SECONDS >= deadline)) && { log_error "orders for user $user: '$n', want $want"; return 1; }
    sleep 1
  done
}

post_order() {
  local user=$1 code
  http code "$WORK/order.json" POST "$GW_URL/api/billing/" \
    "{\"user_id\":\"$user\",\"number_of_items\":\"5\",\"total_amount\":\"180\"}" || return 1
  [[ $code == 200 ]] || { log_error "POST /api/billing: $code $(cat "$WORK/order.json" 2>/dev/null)"; return 1; }
}

# host_pm2 HOST FUNCTION [ARG...]: one of scripts/lib/pm2.sh's functions, run inside HOST (from
# the snapshot at /vagrant) on root's PM2 daemon. Unlike `pm2 jlist` it never starts a daemon
# (one started from here would live outside pm2-root.service).
host_pm2() {
  local host=$1
  shift
  hexec "$host" bash -c 'source /vagrant/scripts/lib/pm2.sh && pm2_select /opt/crud-master && "$@"' _ "$@"
}

# pm2_status_in HOST APP: APP's PM2 status in HOST, "absent" when PM2 does not know it.
pm2_status_in() {
  local status
  status=$(host_pm2 "$1" pm2_app_status "$2" 2>/dev/null) || status=unknown
  printf '%s\n' "${status:-absent}"
}

declare -A APP=([gateway]=api_gateway [inventory]=inventory_app [billing]=billing_app
  [inventory2]=inventory_app [billing2]=billing_app [billing3]=billing_app)

log_step "Through the gateway"
check "gateway-vm: GET /health answers 200 from the client (inventory and RabbitMQ reachable)" \
  wait_200 "$GW_URL/health" 120

movie_roundtrip() {
  local code title="hosts-test $RANDOM$RANDOM"
  http code "$WORK/movie.json" POST "$GW_URL/api/movies/" "{\"title\":\"$title\",\"description\":\"made by test/hosts\"}" || return 1
  [[ $code == 200 ]] || { log_error "POST /api/movies: $code"; return 1; }
  http code "$WORK/movies.json" GET "$GW_URL/api/movies?title=${title// /%20}" || return 1
  [[ $code == 200 ]] && grep -q "$title" "$WORK/movies.json"
}
check "POST /api/movies through the gateway answers 200 and GET ?title= finds it" movie_roundtrip

order_roundtrip() {
  local user=$((100000 + RANDOM))
  post_order "$user" && wait_rows "$user" 1 60
}
check "POST /api/billing through the gateway: 200, and the order lands in orders_db" order_roundtrip

collection=$ROOT/postman/crud-master.postman_collection.json
if [[ -f $collection ]]; then
  run_newman() {
    local newman=$ROOT/node_modules/.bin/newman report=$WORK/newman.json
    [[ -x $newman ]] || { (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1; }
    route_ok "${NS[client]}" "${IP[gateway]}" || return 1
    rm -f "$report"
    in_ns "${NS[client]}" "$newman" run "$collection" --env-var "gateway_url=$GW_URL" \
      --reporters cli,json --reporter-json-export "$report" --timeout-request 20000 --color off \
      >"$LOGS/newman.log" 2>&1
    local rc=$? counts
    tail -n 25 "$LOGS/newman.log" >&2
    # Each of the collection's assertions counts as a test of its own.
    if counts=$(node -e '
      const r = require(process.argv[1]).run.stats.assertions;
      console.log(`${r.total - r.failed} ${r.failed}`);' "$report" 2>/dev/null); then
      read -r a_ok a_failed <<<"$counts"
      passed=$((passed + a_ok))
      failed=$((failed + a_failed))
      log_info "newman: $a_ok assertions passed, $a_failed failed"
    fi
    return "$rc"
  }
  check "Postman collection through the gateway host (newman; log: $LOGS/newman.log)" run_newman
else
  log_warn "no $collection: newman skipped"
fi

log_step "The users' audit on billing-vm (scaled: on every billing host, each runs a worker)"
audit() {
  local user=$((200000 + RANDOM)) n h
  for h in "${BILLING_HOSTS[@]}"; do
    hexec "$h" sudo pm2 stop billing_app >/dev/null || { log_error "${MACHINE[$h]}: sudo pm2 stop billing_app failed"; return 1; }
    [[ $(pm2_status_in "$h" billing_app) == stopped ]] || { log_error "${MACHINE[$h]}: billing_app is not stopped"; return 1; }
  done
  post_order "$user" || return 1
  log_info "POST /api/billing answered 200 with billing_app stopped"
  sleep 3
  n=$(orders_rows "$user")
  [[ $n == 0 ]] || { log_error "a row appeared while billing_app was stopped ($n)"; return 1; }
  log_info "no row in orders_db while billing_app is stopped (sudo -u postgres psql)"
  for h in "${BILLING_HOSTS[@]}"; do
    hexec "$h" sudo pm2 start billing_app >/dev/null || { log_error "${MACHINE[$h]}: sudo pm2 start billing_app failed"; return 1; }
  done
  wait_rows "$user" 1 60 && log_info "after sudo pm2 start billing_app the row is there"
}
check "audit: sudo pm2 stop billing_app, POST /api/billing -> 200, no row, sudo pm2 start billing_app, the row appears" audit

# shellcheck source=privileges.sh
source "$ROOT/test/hosts/privileges.sh"

log_step "Who reaches PostgreSQL and RabbitMQ"
check "gateway-vm cannot reach inventory-vm's PostgreSQL (:$inventory_db_port)" \
  tcp_closed "${NS[gateway]}" "${IP[inventory]}" "$inventory_db_port"
check "gateway-vm cannot reach billing-vm's PostgreSQL (:$billing_db_port)" \
  tcp_closed "${NS[gateway]}" "${IP[billing]}" "$billing_db_port"
check "the client cannot reach either PostgreSQL" \
  eval 'tcp_closed "${NS[client]}" "${IP[inventory]}" "$inventory_db_port" && tcp_closed "${NS[client]}" "${IP[billing]}" "$billing_db_port"'
check "gateway-vm reaches RabbitMQ on billing-vm (:$rabbitmq_port) and the inventory (:$inventory_port)" \
  eval 'tcp_open "${NS[gateway]}" "${IP[billing]}" "$rabbitmq_port" && tcp_open "${NS[gateway]}" "${IP[inventory]}" "$inventory_port"'
check "inventory-vm and the client cannot reach RabbitMQ (only gateway-vm and billing-vm may)" \
  eval 'tcp_closed "${NS[inventory]}" "${IP[billing]}" "$rabbitmq_port" && tcp_closed "${NS[client]}" "${IP[billing]}" "$rabbitmq_port"'
# listens_local_only HOST PORT [ADDRESS]: PORT on HOST listens on loopback (and ADDRESS) only.
listens_local_only() {
  local out also=${3:-127.0.0.1}
  out=$(hexec "$1" ss -Hltn "sport = :$2") || return 1
  [[ -n $out ]] && ! grep -vqE "^(127\.0\.0\.1|\[::1\]|$also):" <<<"$(awk '{ print $4 }' <<<"$out")"
}
if [[ $PROFILE == classic ]]; then
  check "PostgreSQL on inventory-vm and billing-vm listens on loopback only" \
    eval 'listens_local_only inventory "$inventory_db_port" && listens_local_only billing "$billing_db_port"'
else
  check "PostgreSQL on inventory-vm and billing-vm listens on loopback and its own private address only (scaled)" \
    eval 'listens_local_only inventory "$inventory_db_port" "${IP[inventory]}" && listens_local_only billing "$billing_db_port" "${IP[billing]}"'
fi

log_step "A second provisioning run changes nothing"
# state HOST: what must not change: PIDs of the PM2 app, PostgreSQL and RabbitMQ; the
# deployed files and configuration.
state() {
  local host=$1
  # shellcheck disable=SC2016  # JavaScript, for pm2_query
  host_pm2 "$host" pm2_query 'apps.map((a) => `${a.name} ${a.pid} ${a.pm2_env.restart_time}`)'
  hexec "$host" bash -c '
    for u in postgresql@17-main rabbitmq-server pm2-root crud-master-firewall; do
      echo "$u $(systemctl show -P MainPID $u 2>/dev/null) $(systemctl is-active $u 2>/dev/null) $(systemctl is-enabled $u 2>/dev/null)"
    done
    find /opt/crud-master -path /opt/crud-master/node_modules -prune -o -type f -printf "%P %s %T@\n" 2>/dev/null | sort | sha256sum
    cat /etc/postgresql/*/main/pg_hba.conf /etc/rabbitmq/rabbitmq.conf /etc/crud-master/* 2>/dev/null | sha256sum
    stat -c "%n %a %U:%G" /etc/crud-master/* /opt/crud-master 2>/dev/null
    dpkg-query -W -f "\${Package} \${Version}\n" | sha256sum
  '
}
declare -A before=()
for host in "${HOSTS[@]}"; do before[$host]=$(state "$host"); done
provision_round 2 || true
for host in "${HOSTS[@]}"; do
  log=$LOGS/${MACHINE[$host]}-provision-2.log
  if ((prov_rc[$host] == 255)); then
    fail "${MACHINE[$host]}: second provisioning run (not run: an earlier stage failed)"
    continue
  elif ((prov_rc[$host] != 0)); then
    fail "${MACHINE[$host]}: second provisioning run (log: $log)"
    tail -n 30 "$log" >&2
    continue
  fi
  n=$(changes_in "$log")
  after=$(state "$host")
  if [[ $n == 0 && $after == "${before[$host]}" ]]; then
    pass "${MACHINE[$host]}: second provisioning run is a no-op (changed=0, same PIDs, files, packages)"
  else
    fail "${MACHINE[$host]}: second provisioning run changed something (changed=$n; log: $log)"
    grep -E 'changed:|changed=' "$log" >&2 || true
    diff <(printf '%s\n' "${before[$host]}") <(printf '%s\n' "$after") >&2 || true
  fi
done

log_step "billing_app starts while RabbitMQ is down, and catches up when it comes"
late_broker() {
  local user=$((300000 + RANDOM)) status
  hexec billing systemctl stop rabbitmq-server || return 1
  hexec billing pm2 restart billing_app >/dev/null || return 1
  sleep 5
  status=$(pm2_status_in billing billing_app)
  case $status in
    online | launching | 'waiting restart') log_info "billing_app is '$status' with RabbitMQ down" ;;
    *) log_error "billing_app is '$status' with RabbitMQ down"; hexec billing systemctl start rabbitmq-server; return 1 ;;
  esac
  hexec billing systemctl start rabbitmq-server || return 1
  HTTP_FROM=gateway wait_200 "http://${IP[billing]}:$billing_port/health" 120 || return 1
  wait_200 "$GW_URL/health" 60 || return 1
  post_order "$user" && wait_rows "$user" 1 60
}
check "billing_app keeps retrying while RabbitMQ is down and consumes once it is up" late_broker

if [[ -z ${CM_HOSTS_SKIP_REBOOT:-} ]]; then
  log_step "Reboot: each host brings its PM2 app back (x$REBOOT_ROUNDS)"
  # reboot_host HOST ROUND: `systemctl reboot` inside HOST; systemd-nspawn exits when the
  # container's systemd reboots (nothing here restarts it), so boot it again on the same root file
  # system. Returns 1 when HOST did not go down within DOWN_LIMIT + 100 s or did not boot again,
  # 2 when it went down more slowly than DOWN_LIMIT s (it is waited for, to learn how long the
  # shutdown really took) but booted again.
  # Appends "host round down_s boot_s slowest_stop_unit its_s" to $LOGS/reboots.tsv.
  reboot_host() {
    local host=$1 round=$2 pid=${NSPAWN_PID[$1]} t0 down boot slow
    t0=${EPOCHREALTIME/[.,]/}
    hexec "$host" systemctl reboot || return 1
    while kill -0 "$pid" 2>/dev/null; do
      (($(elapsed_ms "$t0") < (DOWN_LIMIT + 100) * 1000)) || break
      sleep 0.2
    done
    down=$(elapsed_ms "$t0")
    if kill -0 "$pid" 2>/dev/null; then
      log_error "${MACHINE[$host]} did not go down in $((DOWN_LIMIT + 100)) s"
      keep_journal "$host"
      return 1
    fi
    wait "$pid" 2>/dev/null || true
    unset "NSPAWN_PID[$host]"
    # The boot that just ended is the last one in HOST's (persistent) journal: its slowest stop job.
    slow=$(host_journal "$host" -b 0 -o short-unix | awk -f "$ROOT/test/hosts/stop-jobs.awk" | sort -k2 -g -r | head -n 1)
    log_info "${MACHINE[$host]} went down in $(secs "$down") s (slowest stop job: ${slow:-none})"
    start_host "$host"
    wait_booted "$host" 180 || { printf '%s\t%s\t%s\t-\t%s\n' "$host" "$round" "$(secs "$down")" "${slow// /$'\t'}" >>"$LOGS/reboots.tsv"; return 1; }
    boot=$(elapsed_ms "$t0")
    printf '%s\t%s\t%s\t%s\t%s\n' "$host" "$round" "$(secs "$down")" "$(secs "$((boot - down))")" "${slow// /$'\t'}" >>"$LOGS/reboots.tsv"
    if ((down > DOWN_LIMIT * 1000)); then
      log_error "${MACHINE[$host]} took $(secs "$down") s to go down (limit $DOWN_LIMIT s)"
      keep_journal "$host" "reboot-$round"
      return 2
    fi
  }
  app_back() {
    local host=$1 url=$2 round=${3:-1} deadline rc=0
    reboot_host "$host" "$round" || rc=$?
    # A host that went down too slowly but booted again is still waited for, so that the checks
    # after this one see its app up and only this one fails.
    ((rc == 0 || rc == 2)) || return 1
    deadline=$((SECONDS + 120))
    until [[ $(pm2_status_in "$host" "${APP[$host]}") == online ]]; do
      ((SECONDS >= deadline)) && { log_error "${APP[$host]} is not online after the reboot"; keep_journal "$host"; return 1; }
      sleep 1
    done
    # (billing's and the inventory's /health answer gateway-vm only: asked from there.)
    HTTP_FROM=${HEALTH_FROM[$host]} wait_200 "$url" 120 || { keep_journal "$host"; return 1; }
    return "$rc"
  }
  : >"$LOGS/reboots.tsv"
  declare -A HEALTH_URL=([inventory]="http://${IP[inventory]}:$inventory_port/health"
    [billing]="http://${IP[billing]}:$billing_port/health" [gateway]="$GW_URL/health")
  declare -A HEALTH_FROM=([inventory]=gateway [billing]=gateway [gateway]=client)
  if ((REBOOT_ROUNDS == 1)); then
    check "inventory-vm rebooted: inventory_app back under PM2, /health 200" app_back inventory "${HEALTH_URL[inventory]}"
    check "billing-vm rebooted: billing_app back under PM2, /health 200" app_back billing "${HEALTH_URL[billing]}"
    check "gateway-vm rebooted: api_gateway back under PM2, /health 200" app_back gateway "${HEALTH_URL[gateway]}"
  else
    # CM_HOSTS_REBOOT_LOOP=N: N rounds, each host rebooted in turn, one check per host for all its
    # rounds (it stops at that host's first failed round). Bounded: a round of a host takes at
    # most DOWN_LIMIT + 100 + 180 + 120 + 120 s.
    declare -A loop_ok=([inventory]=1 [billing]=1 [gateway]=1)
    for ((round = 1; round <= REBOOT_ROUNDS; round++)); do
      for host in "${HOSTS[@]}"; do
        ((loop_ok[$host])) || continue
        if ! app_back "$host" "${HEALTH_URL[$host]}" "$round"; then
          loop_ok[$host]=0
          log_error "${MACHINE[$host]}: round $round of $REBOOT_ROUNDS failed"
        fi
      done
    done
    for host in "${HOSTS[@]}"; do
      check "${MACHINE[$host]} rebooted $REBOOT_ROUNDS times: each down within $DOWN_LIMIT s, ${APP[$host]} back under PM2, /health 200" \
        test "${loop_ok[$host]}" = 1
    done
  fi
  # count, slowest and median shutdown per host (seconds), from reboots.tsv
  awk -F'\t' '{ d[$1] = d[$1] " " $3 } END { for (h in d) print h d[h] }' "$LOGS/reboots.tsv" | while read -r host times; do
    # shellcheck disable=SC2086  # one number a word
    printf '%s\n' $times | sort -g | awk -v h="${MACHINE[$host]}" '{ v[NR] = $1 } END {
      m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%s: %d reboots, shutdown slowest %.1f s, median %.1f s\n", h, NR, v[NR], m }'
  done | while IFS= read -r line; do log_info "$line"; done
  log_info "every reboot: $LOGS/reboots.tsv (host, round, down s, boot s, slowest stop job, its s)"
  check "after the reboots: a movie and an order go through end to end" \
    eval 'movie_roundtrip && order_roundtrip'
  check "after the reboots: the gateway host still cannot reach either PostgreSQL (firewall loaded at boot)" \
    eval 'tcp_closed "${NS[gateway]}" "${IP[inventory]}" "$inventory_db_port" && tcp_closed "${NS[gateway]}" "${IP[billing]}" "$billing_db_port" && tcp_closed "${NS[client]}" "${IP[billing]}" "$rabbitmq_port"'
  check "after the reboots: each app still runs as its own user (pm2 resurrect kept uid/gid)" apps_run_as_their_users
  check "after the reboots: the firewall is default-deny again (client reaches only the gateway port and SSH)" client_reaches_only_gateway
fi

if [[ $PROFILE == scaled ]]; then
  # shellcheck source=scaled.sh
  source "$ROOT/test/hosts/scaled.sh"
fi

log_step "Done"
exit 0
}
