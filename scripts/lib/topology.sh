# shellcheck shell=bash source-path=SCRIPTDIR
# The hosts and who talks to whom, for the classic profile (three VMs) and the scaled one
# (INVENTORY_NODES=2, BILLING_NODES=3 in .env: README, "Scaling out"). Everything here follows from
# the VM addresses in .env, the two node counts and CM_NODE (which host of its role this is, 1 by
# default; the Vagrantfile passes it). Sourced by hosts.sh; functions only.
#
#   role       node 1 (classic)                   nodes 2.. (scaled)
#   inventory  inventory-vm: app + movies_db      inventory-vm-2: app on movies_db of inventory-vm
#   billing    billing-vm: worker + orders_db     billing-vm-2, -3: worker on orders_db of
#              + RabbitMQ node                    billing-vm + RabbitMQ node (one cluster)

[[ -n ${_CM_LIB_TOPOLOGY:-} ]] && return 0
_CM_LIB_TOPOLOGY=1

# cm_nodes ROLE: how many hosts ROLE has (INVENTORY_NODES / BILLING_NODES, default 1; 1 for the
# gateway).
cm_nodes() {
  case $1 in
    inventory) printf '%s\n' "${INVENTORY_NODES:-1}" ;;
    billing) printf '%s\n' "${BILLING_NODES:-1}" ;;
    *) printf '1\n' ;;
  esac
}

# cm_node_ip ROLE K: the private address of ROLE's host K (ROLE_VM_IP for 1, ROLE_VM_K_IP after).
cm_node_ip() {
  local prefix=${1^^} var
  var=${prefix}_VM_IP
  (($2 == 1)) || var=${prefix}_VM_$2_IP
  [[ -n ${!var:-} ]] || die "$var is not set in .env (${prefix}_NODES=$(cm_nodes "$1"))"
  printf '%s\n' "${!var}"
}

# cm_node_name ROLE K: the host name of ROLE's host K (inventory-vm, inventory-vm-2, ...): the
# Vagrant machine name, and the host part of a RabbitMQ node name (rabbit@billing-vm-2).
cm_node_name() {
  if (($2 == 1)); then printf '%s-vm\n' "$1"; else printf '%s-vm-%s\n' "$1" "$2"; fi
}

# cm_node_ips ROLE [FIRST]: the addresses of ROLE's hosts, comma-separated, starting at host FIRST
# (default 1) and wrapping round: the list the gateway and the workers are given.
cm_node_ips() {
  local role=$1 first=${2:-1} n k i out=()
  n=$(cm_nodes "$role")
  for ((i = 0; i < n; i++)); do
    k=$(((first - 1 + i) % n + 1))
    out+=("$(cm_node_ip "$role" "$k")")
  done
  (IFS=,; printf '%s\n' "${out[*]}")
}

# cm_nft_set "IP IP...": the space-separated addresses as an nftables set, `{ IP, IP }`.
cm_nft_set() {
  printf '{ %s }\n' "${1// /, }"
}

# cm_other_ips ROLE K: the addresses of ROLE's hosts other than K, space-separated (for nftables
# sets and pg_hba.conf lines).
cm_other_ips() {
  local role=$1 k n i out=()
  n=$(cm_nodes "$role")
  for ((i = 1; i <= n; i++)); do
    ((i == $2)) || out+=("$(cm_node_ip "$role" "$i")")
  done
  printf '%s\n' "${out[*]}"
}

# cm_topology ROLE: checks the node counts and CM_NODE, then sets the addresses that follow from
# them (they follow the VM addresses even if .env says otherwise, as in the classic profile):
#   INVENTORY_HOST     every inventory host (the gateway balances across them)
#   RABBITMQ_HOST      every billing host; the gateway's list starts at billing-vm-2 when there
#                      are three (its publishing connection stays off the host that also runs
#                      orders_db), a worker's at its own node
#   GATEWAY_ADMIN_HOST the gateway VM's address
#   <ROLE>_LISTEN_HOST this host's address; <ROLE>_DB_HOST loopback on node 1, else node 1's address
#   RABBITMQ_QUEUE_TYPE quorum whenever there are several billing hosts (a classic queue lives on
#                      one node only)
#   CM_NODE, CM_OWN_IP this host's number and address within its role
cm_topology() {
  local role=$1 n
  [[ ${INVENTORY_NODES:-1} =~ ^[12]$ ]] || die "INVENTORY_NODES=$INVENTORY_NODES: 1 (classic) or 2"
  [[ ${BILLING_NODES:-1} =~ ^[13]$ ]] ||
    die "BILLING_NODES=$BILLING_NODES: 1 (classic) or 3 (a RabbitMQ cluster needs a majority: 2 of 3)"
  : "${CM_NODE:=1}"
  n=$(cm_nodes "$role")
  [[ $CM_NODE =~ ^[1-9]$ ]] || die "CM_NODE=$CM_NODE: a host number from 1"
  if [[ $role == inventory || $role == billing ]] && ((CM_NODE > n)); then die "CM_NODE=$CM_NODE: $role has $n host(s)"; fi
  export CM_NODE INVENTORY_NODES=${INVENTORY_NODES:-1} BILLING_NODES=${BILLING_NODES:-1}
  export INVENTORY_HOST RABBITMQ_HOST GATEWAY_ADMIN_HOST=${GATEWAY_VM_IP:-${GATEWAY_ADMIN_HOST:-}}
  INVENTORY_HOST=$(cm_node_ips inventory)
  case $role in
    billing) RABBITMQ_HOST=$(cm_node_ips billing "$CM_NODE") ;;
    gateway) RABBITMQ_HOST=$(cm_node_ips billing "$((BILLING_NODES > 1 ? 2 : 1))") ;;
    *) RABBITMQ_HOST=$(cm_node_ips billing) ;;
  esac
  export CM_OWN_IP=
  case $role in
    inventory | billing)
      local p=${role^^}
      CM_OWN_IP=$(cm_node_ip "$role" "$CM_NODE")
      export "${p}_LISTEN_HOST=$CM_OWN_IP"
      if ((CM_NODE == 1)); then
        local db_host=${p}_DB_HOST
        # node 1 keeps .env's local address (127.0.0.1 or localhost)
        export "${p}_DB_HOST=${!db_host:-127.0.0.1}"
      else
        export "${p}_DB_HOST=$(cm_node_ip "$role" 1)"
      fi
      ;;
  esac
  if ((BILLING_NODES > 1)); then export RABBITMQ_QUEUE_TYPE=quorum; fi
  local which=$role
  [[ -z $CM_OWN_IP ]] || which="$role host $CM_NODE of $n ($CM_OWN_IP)"
  log_info "topology: $which; inventory $INVENTORY_HOST; RabbitMQ $RABBITMQ_HOST"
}

# cm_etc_hosts_block ROLE: /etc/hosts gets a block naming ROLE's hosts (RabbitMQ's nodes find each
# other by host name: rabbit@billing-vm-2). Lines outside the block are kept as they are.
cm_etc_hosts_block() {
  local role=$1 n i begin="# crud-master $1 hosts (written by provisioning)" end="# crud-master end"
  n=$(cm_nodes "$role")
  {
    awk -v b="$begin" -v e="$end" '$0 == b { skip = 1; next } $0 == e { skip = 0; next } !skip' /etc/hosts
    printf '%s\n' "$begin"
    for ((i = 1; i <= n; i++)); do
      printf '%s\t%s\n' "$(cm_node_ip "$role" "$i")" "$(cm_node_name "$role" "$i")"
    done
    printf '%s\n' "$end"
  } | cm_write_file /etc/hosts 0644 root:root || true
}
