# shellcheck shell=bash disable=SC2154,SC2034,SC2016
# Sourced by test/hosts/run.sh in the scaled profile (CM_HOSTS_PROFILE=scaled), after the checks
# both profiles share (newman through the gateway, the audit, least privilege, a second
# provisioning run that changes nothing). Uses run.sh's check, hexec, host_pm2, http, route_ok,
# in_ns, tcp_probe/expect_probe (privileges.sh), NS, IP, MACHINE, ROLE, the ports and env_value.
#   - the RabbitMQ cluster: three running nodes, billing_queue and billing_queue.dead quorum
#     queues with a replica on each; the addresses each service got;
#   - least privilege on the new hosts: who reaches which port, no foreign credential;
#   - a backlog published to the three subscribed workers is shared by the three;
#   - a message every consumer returns is dead-lettered by RabbitMQ at the delivery limit;
#   - inventory-vm-2 powered off under steady GETs: the non-200 answers are counted (a blip);
#   - billing-vm-2 (the RabbitMQ node the gateway publishes to first, and a worker; not the host
#     of orders_db) powered off under steady POSTs: every confirmed order stored exactly once;
#   - both hosts powered on again: the node is back in the cluster, the inventory in the pool.
# Every loop is bounded in count and time; every address is one of this test's namespaces.

# rmq_in HOST ARGS...: rabbitmqctl inside HOST (as the rabbitmq user, its cookie).
rmq_in() {
  local host=$1
  shift
  hexec "$host" bash -c 'cd /var/lib/rabbitmq && runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq timeout 60 rabbitmqctl "$@"' _ "$@"
}

# cluster_running HOST N: HOST's cluster has N running nodes, each rabbit@billing-vm[-k].
cluster_running() {
  local out n
  out=$(rmq_in "$1" -q cluster_status --formatter json 2>/dev/null) || return 1
  n=$(node -e 'const s = JSON.parse(process.argv[1]); console.log((s.running_nodes || []).length)' "$out" 2>/dev/null) || return 1
  log_info "${MACHINE[$1]}: $n running RabbitMQ nodes"
  [[ $n == "$2" ]]
}
wait_cluster() {
  local host=$1 n=$2 timeout=$3 deadline=$((SECONDS + $3))
  until cluster_running "$host" "$n"; do
    ((SECONDS < deadline)) || { log_error "${MACHINE[$host]}: not $n running nodes after $timeout s"; return 1; }
    sleep 3
  done
}

# quorum_members: billing_queue and billing_queue.dead are quorum queues with the three nodes as
# members (logs the leader).
quorum_members() {
  local out q ok=0 line leaders name k
  q=$(env_value RABBITMQ_QUEUE)
  out=$(rmq_in billing -q list_queues --no-table-headers name type members) || return 1
  # (the leader, for the log only)
  leaders=$(rmq_in billing -q list_queues --no-table-headers name leader 2>/dev/null | tr '\t\n' ': ') || true
  log_info "quorum leaders: ${leaders:-?}"
  for name in "$q" "$q.dead"; do
    line=$(awk -F'\t' -v q="$name" '$1 == q' <<<"$out")
    log_info "queue: $line"
    [[ $(cut -f2 <<<"$line") == quorum ]] || { log_error "$name is not a quorum queue"; ok=1; }
    for k in billing-vm billing-vm-2 billing-vm-3; do
      grep -qE "rabbit@${k}[],]" <<<"$(cut -f3 <<<"$line")" || { log_error "$name has no replica on $k"; ok=1; }
    done
  done
  return "$ok"
}

# env_of HOST SERVICE VAR: VAR in HOST's /etc/crud-master/SERVICE.env.
env_of() {
  hexec "$1" sed -n "s/^$3=//p" "/etc/crud-master/$2.env"
}
service_addresses() {
  local ok=0 got
  got=$(env_of gateway gateway INVENTORY_HOST)
  [[ $got == "${IP[inventory]},${IP[inventory2]}" ]] || { log_error "gateway INVENTORY_HOST=$got"; ok=1; }
  got=$(env_of gateway gateway RABBITMQ_HOST)
  [[ $got == "${IP[billing2]},${IP[billing3]},${IP[billing]}" ]] || { log_error "gateway RABBITMQ_HOST=$got"; ok=1; }
  got=$(env_of inventory2 inventory INVENTORY_DB_HOST)
  [[ $got == "${IP[inventory]}" ]] || { log_error "inventory-vm-2 INVENTORY_DB_HOST=$got"; ok=1; }
  got=$(env_of billing3 billing BILLING_DB_HOST)/$(env_of billing3 billing RABBITMQ_HOST)/$(env_of billing3 billing RABBITMQ_QUEUE_TYPE)
  [[ $got == "${IP[billing]}/${IP[billing3]},${IP[billing]},${IP[billing2]}/quorum" ]] || { log_error "billing-vm-3: $got"; ok=1; }
  ((ok == 0)) && log_info "gateway: inventories ${IP[inventory]},${IP[inventory2]}, RabbitMQ ${IP[billing2]},${IP[billing3]},${IP[billing]}; billing-vm-3: orders_db on ${IP[billing]}, its own node first, quorum"
  return "$ok"
}

log_step "Scaled profile: the RabbitMQ cluster and the addresses"
check "RabbitMQ: billing-vm, billing-vm-2 and billing-vm-3 are one cluster, three nodes running" \
  cluster_running billing 3
check "billing_queue and billing_queue.dead are quorum queues with a replica on each node" quorum_members
check "the services' addresses: the gateway has both inventories and the three nodes (billing-vm-2 first), the extra hosts use node 1's database" \
  service_addresses

log_step "Scaled profile: least privilege on the new hosts"
check "inventory-vm-2 reaches movies_db on inventory-vm (:$inventory_db_port); gateway-vm, billing-vm and the client do not" \
  eval 'expect_probe inventory2 inventory "$inventory_db_port" open && expect_probe gateway inventory "$inventory_db_port" dropped &&
    expect_probe billing inventory "$inventory_db_port" dropped && expect_probe client inventory "$inventory_db_port" dropped'
check "billing-vm-2 and -3 reach orders_db on billing-vm (:$billing_db_port); gateway-vm, inventory-vm-2 and the client do not" \
  eval 'expect_probe billing2 billing "$billing_db_port" open && expect_probe billing3 billing "$billing_db_port" open &&
    expect_probe gateway billing "$billing_db_port" dropped && expect_probe inventory2 billing "$billing_db_port" dropped &&
    expect_probe client billing "$billing_db_port" dropped'
check "Erlang's ports (4369, 25672) between the billing hosts only: open from billing-vm-2/-3, dropped from gateway-vm, inventory-vm-2 and the client" \
  eval 'expect_probe billing2 billing 25672 open && expect_probe billing3 billing2 4369 open && expect_probe billing billing3 25672 open &&
    expect_probe gateway billing2 25672 dropped && expect_probe gateway billing3 4369 dropped &&
    expect_probe inventory2 billing2 25672 dropped && expect_probe client billing3 25672 dropped'
check "AMQP on billing-vm-2/-3 from gateway-vm and the other billing hosts only; inventory-vm-2:$inventory_port from gateway-vm only" \
  eval 'expect_probe gateway billing2 "$rabbitmq_port" open && expect_probe billing billing3 "$rabbitmq_port" open &&
    expect_probe inventory2 billing2 "$rabbitmq_port" dropped && expect_probe client billing3 "$rabbitmq_port" dropped &&
    expect_probe gateway inventory2 "$inventory_port" open && expect_probe billing inventory2 "$inventory_port" dropped &&
    expect_probe client inventory2 "$inventory_port" dropped && expect_probe inventory2 billing2 "$billing_port" dropped'
check "inventory-vm-2 holds no owner password nor billing credential; billing-vm-2/-3 no owner password, no gateway or inventory credential" \
  eval 'no_foreign_secrets inventory2 INVENTORY_DB_OWNER_PASSWORD BILLING_DB_PASSWORD RABBITMQ_BILLING_PASSWORD RABBITMQ_ERLANG_COOKIE &&
    no_foreign_secrets billing2 BILLING_DB_OWNER_PASSWORD RABBITMQ_GATEWAY_PASSWORD INVENTORY_DB_PASSWORD &&
    no_foreign_secrets billing3 BILLING_DB_OWNER_PASSWORD RABBITMQ_GATEWAY_PASSWORD INVENTORY_DB_PASSWORD'
check "gateway-vm holds no Erlang cookie" no_foreign_secrets gateway RABBITMQ_ERLANG_COOKIE

# ---- competing workers ----------------------------------------------------------------------------------------
# mq_tool ARGS...: test/hosts/mq-tool.js on billing-vm, as root, with billing's env file.
mq_tool() {
  hexec billing bash -c 'cd / && exec node - /etc/crud-master/billing.env "$@"' _ "$@" <"$ROOT/test/hosts/mq-tool.js"
}
workers() {
  local action=$1 h pids=() rc=0
  # at about the same moment on the three hosts
  for h in "${BILLING_HOSTS[@]}"; do
    hexec "$h" pm2 "$action" billing_app >/dev/null 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return "$rc"
}
# inserted HOST: billing_orders_inserted_total of HOST's worker (its /metrics, asked from gateway-vm).
inserted() {
  local code
  HTTP_FROM=gateway http code "$WORK/metrics-$1.txt" GET "http://${IP[$1]}:$billing_port/metrics" || return 1
  [[ $code == 200 ]] || return 1
  # (prom-client labels it: billing_orders_inserted_total{service="billing-app"} N)
  awk '$1 ~ /^billing_orders_inserted_total([{]|$)/ { printf "%d\n", $2 }' "$WORK/metrics-$1.txt"
}
BACKLOG=${CM_HOSTS_BACKLOG:-6000}
# consumers_of_queue: how many consumers billing_queue has (rabbitmqctl on billing-vm).
consumers_of_queue() {
  rmq_in billing -q list_queues --no-table-headers name consumers 2>/dev/null |
    awk -F'\t' -v q="$(env_value RABBITMQ_QUEUE)" '$1 == q { print $2 }'
}
# wait_consumers N SECONDS: until billing_queue has N consumers.
wait_consumers() {
  local want=$1 deadline=$((SECONDS + $2)) n=
  while ((SECONDS < deadline)); do
    n=$(consumers_of_queue) || n=
    [[ $n == "$want" ]] && return 0
    sleep 1
  done
  log_error "billing_queue has ${n:-?} consumers after $2 s, not $want"
  return 1
}
# The three workers are restarted (their counters start at 0; RabbitMQ has seen the old consumers
# go) and must all be subscribed before
# the backlog is published: a worker that subscribes a few seconds after the others finds nothing
# left (6,000 orders drain in about 4 s; on 2026-12-04 billing-vm-3's worker, started with the
# others but slower to subscribe on a loaded machine, took 0 of 6,000). The backlog is then
# published faster than three workers write it; RabbitMQ hands it out among the three consumers.
backlog_shared() {
  local user=$((400000 + RANDOM)) out h n total=0 ok=0 shares=()
  workers stop && wait_consumers 0 60 || return 1
  workers start && wait_consumers "${#BILLING_HOSTS[@]}" 120 || return 1
  out=$(mq_tool backlog "$BACKLOG" "backlog-$user" "$user" 2>&1) || { log_error "mq-tool backlog: $out"; return 1; }
  log_info "$out (user $user) with the three workers subscribed"
  wait_rows "$user" "$BACKLOG" 240 || return 1
  for h in "${BILLING_HOSTS[@]}"; do
    n=$(inserted "$h") || n=
    shares+=("${MACHINE[$h]} ${n:-?}")
    [[ $n =~ ^[0-9]+$ ]] && ((n > 0)) || ok=1
    total=$((total + ${n:-0}))
  done
  log_info "backlog of $BACKLOG: ${shares[*]} (inserted, total $total; rows for the user: $(orders_rows "$user"))"
  ((ok == 0 && total == BACKLOG))
}
log_step "Scaled profile: three competing workers"
check "a backlog of $BACKLOG orders published to three subscribed workers is shared: each host's worker inserts some, $BACKLOG rows, none twice" \
  backlog_shared

poison_dead_lettered() {
  local out limit rc=0
  limit=$(env_value RABBITMQ_DELIVERY_LIMIT)
  workers stop || return 1
  out=$(mq_tool poison "poison-$RANDOM$RANDOM" 60 2>&1) || rc=1
  workers start || rc=1
  log_info "poison message: $out (RABBITMQ_DELIVERY_LIMIT=$limit)"
  # (limit + 1 deliveries on RabbitMQ 3.x; counted as the e2e test does, limit on either side of the last)
  local re='^deliveries ([0-9]+) reason delivery_limit queue '
  ((rc == 0)) && [[ $out =~ $re ]] || return 1
  local n=${BASH_REMATCH[1]}
  ((n >= limit && n <= limit + 1))
}
check "a message every consumer returns is dead-lettered to billing_queue.dead by RabbitMQ after RABBITMQ_DELIVERY_LIMIT deliveries (x-death reason delivery_limit)" \
  poison_dead_lettered

# ---- failures under traffic --------------------------------------------------------------------------------------
# traffic METHOD COUNT FILE [USER_BASE]: COUNT requests from the client, one after the other, each
# bounded to 10 s, 50 ms apart; one line each: "start_s code time_s" (a POST's user_id is
# USER_BASE + i). Runs in the background; its PID in traffic_pid.
traffic() {
  local method=$1 count=$2 file=$3 base=${4:-0}
  route_ok "${NS[client]}" "${IP[gateway]}" || return 1
  : >"$file"
  in_ns "${NS[client]}" bash -c '
    url=$1 method=$2 count=$3 file=$4 base=$5
    for ((i = 1; i <= count; i++)); do
      args=(-s -o /dev/null -m 10 -w "%{http_code} %{time_total}" -X "$method")
      [[ $method == POST ]] && args+=(-H "content-type: application/json" --data "{\"user_id\":\"$((base + i))\",\"number_of_items\":\"1\",\"total_amount\":\"1\"}")
      t=$EPOCHREALTIME
      out=$(curl "${args[@]}" "$url") || true
      printf "%s %s\n" "$t" "${out:-000 0}" >>"$file"
      sleep 0.05
    done' _ "$5" "$method" "$count" "$file" "$base" &
  traffic_pid=$!
  prov_pid[traffic]=$traffic_pid
}

# power_off HOST: `systemctl poweroff` inside HOST; waits (up to 120 s) for its machine to end.
power_off() {
  local host=$1 pid=${NSPAWN_PID[$1]} deadline=$((SECONDS + 120))
  # (the command may lose its host before it answers)
  hexec "$host" systemctl poweroff || true
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || { log_error "${MACHINE[$host]} did not power off in 120 s"; return 1; }
    sleep 0.5
  done
  wait "$pid" 2>/dev/null || true
  unset "NSPAWN_PID[$host]"
}

# summary FILE: "N requests, K not 200 (codes), longest gap between two 200s G s, slowest T s".
summary() {
  awk '{ n++; if ($2 != 200) { bad++; codes[$2]++ } else { if (last && $1 - last > gap) gap = $1 - last; last = $1 }
      if ($3 > slow) slow = $3 }
    END { c = ""; for (k in codes) c = c k "x" codes[k] " "
      printf "%d requests, %d not 200 (%s), longest gap between two 200s %.1f s, slowest %.2f s\n", n, bad, c, gap, slow }' "$1"
}

INV_BLIP_MAX=${CM_HOSTS_BLIP_MAX:-5}
inventory_power_off() {
  local file=$WORK/traffic-get.txt bad
  traffic GET 400 "$file" 0 "$GW_URL/api/movies?title=hosts-test" || return 1
  sleep 5
  log_info "powering off inventory-vm-2 under GET traffic"
  power_off inventory2 || return 1
  wait "$traffic_pid" || true
  unset "prov_pid[traffic]"
  log_info "GET /api/movies through the gateway: $(summary "$file")"
  bad=$(awk '$2 != 200' "$file" | wc -l)
  ((bad <= INV_BLIP_MAX)) && [[ $(wc -l <"$file") == 400 ]]
}
log_step "Scaled profile: an inventory host powered off under steady GETs"
check "inventory-vm-2 powered off during 400 GETs through the gateway: at most $INV_BLIP_MAX answers other than 200" \
  inventory_power_off

# gateway_on_billing2: the gateway's publishing connection is on billing-vm-2, the first node of
# its list (it may have started while that node was still joining: restarted so it begins there).
gateway_on_billing2() {
  local gw
  gw=$(env_value RABBITMQ_GATEWAY_USER)
  hexec gateway pm2 restart api_gateway >/dev/null || return 1
  wait_200 "$GW_URL/health" 60 || return 1
  # (host: the node's address the connection reached)
  rmq_in billing2 -q list_connections --no-table-headers user peer_host host |
    awk -F'\t' -v u="$gw" -v ip="${IP[gateway]}" -v node="${IP[billing2]}" '$1 == u && $2 == ip && $3 == node { found = 1 } END { exit !found }' ||
    { log_error "no connection of $gw from gateway-vm on rabbit@billing-vm-2"; return 1; }
  log_info "the gateway ($gw) publishes through rabbit@billing-vm-2"
}
rabbit_power_off() {
  local file=$WORK/traffic-post.txt base=$((500000 + RANDOM * 10)) confirmed rows twice missing
  gateway_on_billing2 || return 1
  traffic POST 400 "$file" "$base" "$GW_URL/api/billing/" || return 1
  sleep 5
  log_info "powering off billing-vm-2 (RabbitMQ node the gateway publishes to first, and a worker) under POST traffic"
  power_off billing2 || return 1
  wait "$traffic_pid" || true
  unset "prov_pid[traffic]"
  log_info "POST /api/billing through the gateway: $(summary "$file")"
  confirmed=$(awk '$2 == 200' "$file" | wc -l)
  # every confirmed order stored (bounded wait), then: none twice, none confirmed missing
  local deadline=$((SECONDS + 180)) sql="SELECT count(*) FROM orders WHERE user_id::bigint BETWEEN $((base + 1)) AND $((base + 400))"
  until rows=$(hexec billing sudo -u postgres psql -d "$billing_db" -Atc "$sql" 2>/dev/null) && ((rows >= confirmed)); do
    ((SECONDS < deadline)) || { log_error "rows $rows < confirmed $confirmed after 180 s"; return 1; }
    sleep 2
  done
  twice=$(hexec billing sudo -u postgres psql -d "$billing_db" -Atc \
    "SELECT count(*) FROM (SELECT user_id FROM orders WHERE user_id::bigint BETWEEN $((base + 1)) AND $((base + 400)) GROUP BY user_id HAVING count(*) > 1) d")
  missing=0
  local stored
  stored=$(hexec billing sudo -u postgres psql -d "$billing_db" -Atc \
    "SELECT user_id FROM orders WHERE user_id::bigint BETWEEN $((base + 1)) AND $((base + 400))" | sort -u)
  local start code rest i=0
  while read -r start code rest; do
    i=$((i + 1))
    [[ $code == 200 ]] || continue
    grep -qx "$((base + i))" <<<"$stored" || missing=$((missing + 1))
  done <"$file"
  log_info "orders_db: SELECT count(*) = $rows for $confirmed confirmed orders; $twice stored twice, $missing confirmed but missing"
  ((twice == 0 && missing == 0 && rows - confirmed <= $(wc -l <"$file") - confirmed))
}
log_step "Scaled profile: a RabbitMQ node powered off under steady POSTs"
check "billing-vm-2 powered off during 400 POST /api/billing: the gateway goes on confirming, and every confirmed order is in orders_db once (none lost, none doubled)" \
  rabbit_power_off

power_on_again() {
  start_host inventory2
  start_host billing2
  wait_booted inventory2 180 && wait_booted billing2 180 || return 1
  wait_cluster billing 3 180 || return 1
  HTTP_FROM=gateway wait_200 "http://${IP[inventory2]}:$inventory_port/health" 180 || return 1
  HTTP_FROM=gateway wait_200 "http://${IP[billing2]}:$billing_port/health" 180 || return 1
  quorum_members
}
log_step "Scaled profile: the two hosts powered on again"
check "inventory-vm-2 and billing-vm-2 powered on: the node is back in the cluster (3 running, replicas on all), both apps healthy" \
  power_on_again
