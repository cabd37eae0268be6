# shellcheck shell=bash disable=SC2154,SC2034,SC2016
# Sourced by test/hosts/run.sh after the users' audit (it uses run.sh's check, hexec, host_pm2,
# http, route_ok, in_ns, NS, IP, APP, the ports and env_value): issue 13's least privilege, each
# point proven from inside the namespace it is about.
#   - each app's process runs as its own system user, PM2's daemon as root; `sudo pm2 list`;
#   - the env files: modes and owners; the services cannot read /vagrant/.env nor change their code;
#   - no host holds another host's credentials outside /vagrant (gateway-vm: no database password);
#   - the firewall: who reaches which port (open, or dropped: no answer at all);
#   - the gateway's RabbitMQ user cannot consume, purge, delete or declare billing_queue;
#   - the app roles cannot DROP, ALTER or (billing) DELETE;
#   - /health bodies carry no address, /metrics is not on the gateway's public port.

declare -A SVC=([gateway]=gateway [inventory]=inventory [billing]=billing
  [inventory2]=inventory [billing2]=billing [billing3]=billing)

# app_user HOST: "user pid" of HOST's PM2 app process, from ps inside HOST.
app_user() {
  local host=$1 pid
  # shellcheck disable=SC2016  # JavaScript, for pm2_query
  pid=$(host_pm2 "$host" pm2_query 'apps.filter((a) => a.name === arg).map((a) => a.pid)' "${APP[$host]}" 2>/dev/null)
  [[ $pid =~ ^[1-9][0-9]*$ ]] || { log_error "${APP[$host]}: no PID from PM2 ('$pid')"; return 1; }
  # (user:32: ps prints a uid instead of a name longer than its column.)
  printf '%s %s\n' "$(hexec "$host" ps -o user:32= -p "$pid" | tr -d ' ')" "$pid"
}

# apps_run_as_their_users: in each host, ps shows the app's process as cm-<service> (not root)
# and PM2's daemon (God) as root.
apps_run_as_their_users() {
  local host user pid god ok=0
  for host in "${HOSTS[@]}"; do
    read -r user pid < <(app_user "$host") || { ok=1; continue; }
    god=$(hexec "$host" ps -eo user:32=,args= | awk '/PM2 .*God Daemon/ { print $1; exit }')
    if [[ $user == "cm-${SVC[$host]}" && $god == root ]]; then
      log_info "${MACHINE[$host]}: ${APP[$host]} (PID $pid) runs as $user, PM2's daemon as root"
    else
      log_error "${MACHINE[$host]}: ${APP[$host]} (PID $pid) runs as '$user', PM2's daemon as '$god'"
      ok=1
    fi
  done
  return "$ok"
}

# sudo_pm2_list: `sudo pm2 list` in each host shows its app online (its user column, when the
# table is wide enough to have one, is logged).
sudo_pm2_list() {
  local host out ok=0
  for host in "${HOSTS[@]}"; do
    out=$(hexec "$host" sudo pm2 list 2>&1) || { log_error "${MACHINE[$host]}: sudo pm2 list failed"; ok=1; continue; }
    if grep -F "${APP[$host]}" <<<"$out" | grep -q online; then
      log_info "${MACHINE[$host]}: $(grep -F "${APP[$host]}" <<<"$out" | tr -s ' ')"
    else
      log_error "${MACHINE[$host]}: sudo pm2 list does not show ${APP[$host]} online:"
      printf '%s\n' "$out" >&2
      ok=1
    fi
  done
  return "$ok"
}

# env_files_locked: /etc/crud-master/<service>.env is 0400 and its service user's; the migrate
# files 0400 root's; the service user can read its own file, not /vagrant/.env, and cannot write
# its code.
env_files_locked() {
  local host svc want got ok=0
  for host in "${HOSTS[@]}"; do
    svc=${SVC[$host]}
    want="400 cm-$svc:cm-$svc"
    # (the migrations run on each role's first host only; scaled, the others have no owner password)
    [[ $host == gateway || ${NODE[$host]} != 1 ]] || want+=$'\n'"400 root:root"
    got=$(hexec "$host" bash -c 'stat -c "%a %U:%G" "/etc/crud-master/$1.env"; [[ $2 == no ]] || stat -c "%a %U:%G" "/etc/crud-master/$1-migrate.env"
      [[ $2 == yes || ! -e /etc/crud-master/$1-migrate.env ]] || echo "unexpected $1-migrate.env"' _ "$svc" "$([[ $host == gateway || ${NODE[$host]} != 1 ]] && echo no || echo yes)")
    [[ $got == "$want" ]] || { log_error "${MACHINE[$host]}: env file modes '$got', want '$want'"; ok=1; }
    hexec "$host" runuser -u "cm-$svc" -- test -r "/etc/crud-master/$svc.env" ||
      { log_error "${MACHINE[$host]}: cm-$svc cannot read its own env file"; ok=1; }
    if hexec "$host" runuser -u "cm-$svc" -- cat /vagrant/.env >/dev/null 2>&1; then
      log_error "${MACHINE[$host]}: cm-$svc can read /vagrant/.env"
      ok=1
    fi
    if hexec "$host" runuser -u "cm-$svc" -- bash -c 'test -w /opt/crud-master/ecosystem.config.js || test -w /opt/crud-master/srcs || test -w /opt/crud-master/node_modules'; then
      log_error "${MACHINE[$host]}: cm-$svc may change its code in /opt/crud-master"
      ok=1
    fi
  done
  return "$ok"
}

# no_foreign_secrets HOST VAR...: none of the VARs' values (passwords) is in a file under /etc,
# /opt/crud-master (node_modules aside), /var/lib/crud-master, /root or /tmp on HOST (/vagrant,
# the synced checkout, is the one place the whole .env is, closed to the services).
no_foreign_secrets() {
  local host=$1 var values=() found
  shift
  for var; do
    values+=("$(env_value "$var")")
    [[ -n ${values[-1]} ]] || { log_error "$var has no value"; return 1; }
  done
  # (-D skip: no sockets or FIFOs; root's npm cache is the test's download cache.)
  found=$(printf '%s\n' "${values[@]}" | hexec "$host" bash -c '
    grep -rlF -D skip -f /dev/stdin /etc /opt/crud-master /var/lib/crud-master /root /tmp \
      --exclude-dir=node_modules --exclude-dir=journal --exclude-dir=.npm 2>/dev/null' || true)
  [[ -z $found ]] || { log_error "${MACHINE[$host]}: ${*} found in: $(tr '\n' ' ' <<<"$found")"; return 1; }
}

# tcp_probe NS ADDR PORT: "open" (connected), "refused" (the host answered: nothing listens, the
# firewall let it through) or "dropped" (no answer within 2 s: the firewall).
tcp_probe() {
  local ns=$1 addr=$2 port=$3 rc=0
  route_ok "$ns" "$addr" || { printf 'unsafe\n'; return; }
  in_ns "$ns" timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$addr" "$port" 2>/dev/null || rc=$?
  case $rc in
    0) printf 'open\n' ;;
    124) printf 'dropped\n' ;;
    *) printf 'refused\n' ;;
  esac
}

# expect_probe FROM HOST PORT WANT...: tcp_probe from FROM's namespace to HOST:PORT is one of WANT.
expect_probe() {
  local from=$1 host=$2 port=$3 got
  shift 3
  got=$(tcp_probe "${NS[$from]}" "${IP[$host]}" "$port")
  if [[ " $* " == *" $got "* ]]; then
    log_info "$from -> ${MACHINE[$host]}:$port $got"
  else
    log_error "$from -> ${MACHINE[$host]}:$port is '$got', want: $*"
    return 1
  fi
}

# client_reaches_only_gateway: from the client namespace, the gateway port is open and SSH is not
# dropped (the test hosts run no sshd: "refused" means the firewall let it through); every
# internal port of the three hosts is dropped.
client_reaches_only_gateway() {
  local ok=0 host port
  expect_probe client gateway "$gateway_port" open || ok=1
  for host in "${HOSTS[@]}"; do expect_probe client "$host" 22 open refused || ok=1; done
  expect_probe client gateway "$admin_port" dropped || ok=1
  expect_probe client inventory "$inventory_port" dropped || ok=1
  expect_probe client inventory "$inventory_db_port" dropped || ok=1
  for port in "$billing_port" "$rabbitmq_port" "$billing_db_port" 4369 25672; do
    expect_probe client billing "$port" dropped || ok=1
  done
  return "$ok"
}

# mq_gateway_denied: test/hosts/mq-gateway-denied.js on gateway-vm as cm-gateway (its own env file).
mq_gateway_denied() {
  local out rc=0
  out=$(hexec gateway bash -c 'cd / && exec runuser -u cm-gateway -- node - /etc/crud-master/gateway.env' \
    <"$ROOT/test/hosts/mq-gateway-denied.js" 2>&1) || rc=$?
  while IFS= read -r line; do log_info "gateway_mq: $line"; done <<<"$out"
  return "$rc"
}

# mq_permissions: rabbitmqctl on billing-vm lists exactly the two users' exact-name patterns
# (those of packages/billing-contract/src/topology.ts, rabbitPermissions).
mq_permissions() {
  local out want q gw bl
  q=$(env_value RABBITMQ_QUEUE)
  gw=$(env_value RABBITMQ_GATEWAY_USER)
  bl=$(env_value RABBITMQ_BILLING_USER)
  out=$(hexec billing bash -c 'cd /var/lib/rabbitmq && runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq rabbitmqctl -q list_permissions -p / --no-table-headers' | sort)
  want=$(printf '%s\t%s\t%s\t%s\n' "$bl" "^${q}(\\.dead)?\$" "^${q}(\\.dead)?\$" "^${q}(\\.dead)?\$" \
    "$gw" '^$' "^${q}\$" '^$' | sort)
  [[ $out == "$want" ]] || { log_error "permissions on /:"$'\n'"$out"$'\n'"want:"$'\n'"$want"; return 1; }
}

# db_denied HOST PREFIX TABLE SQL...: as the app role (its own env file, inside HOST), each SQL
# statement fails with "permission denied" or "must be owner" (each in a transaction rolled back).
db_denied() {
  local host=$1 prefix=$2 sql out ok=0
  shift 2
  for sql; do
    out=$(hexec "$host" bash -c '
      set -a; . "/etc/crud-master/$1.env"; set +a
      user=${2}_DB_USER pw=${2}_DB_PASSWORD db=${2}_DB_NAME
      cd / && PGPASSWORD=${!pw} psql -X -w -h 127.0.0.1 -U "${!user}" -d "${!db}" -v ON_ERROR_STOP=1 \
        -c "BEGIN" -c "$3" -c "ROLLBACK"' _ "${SVC[$host]}" "$prefix" "$sql" 2>&1) &&
      { log_error "${MACHINE[$host]}: '$sql' as the app role succeeded"; ok=1; continue; }
    if grep -qE 'must be owner|permission denied' <<<"$out"; then
      log_info "${MACHINE[$host]}: '$sql' refused: $(grep -m1 -E 'ERROR' <<<"$out")"
    else
      log_error "${MACHINE[$host]}: '$sql' failed otherwise: $out"
      ok=1
    fi
  done
  return "$ok"
}

# health_bodies_clean: the public /health (client) and the inventory's and billing's /health
# (from gateway-vm) name no address (IPv4, "localhost", a URL); /metrics is not served on the
# gateway's public port.
health_bodies_clean() {
  local url from from_url code ok=0
  for from_url in "client $GW_URL/health" "gateway http://${IP[inventory]}:$inventory_port/health" \
    "gateway http://${IP[billing]}:$billing_port/health"; do
    read -r from url <<<"$from_url"
    HTTP_FROM=$from http code "$WORK/health.json" GET "$url" || { ok=1; continue; }
    log_info "$url ($code): $(head -c 300 "$WORK/health.json")"
    if grep -qE '[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+|localhost|https?://|ECONN|ETIMEDOUT' "$WORK/health.json"; then
      log_error "$url reveals an address or error text"
      ok=1
    fi
  done
  http code "$WORK/metrics.txt" GET "$GW_URL/metrics" || ok=1
  [[ $code != 200 ]] || { log_error "$GW_URL/metrics answers 200 on the public port"; ok=1; }
  return "$ok"
}

# admin_port_local: gateway-vm itself reaches its admin listener's /metrics (GATEWAY_ADMIN_HOST).
admin_port_local() {
  local code
  code=$(hexec gateway curl -s -m 5 -o /dev/null -w '%{http_code}' "http://${IP[gateway]}:$admin_port/metrics") || true
  [[ $code == 200 ]] || { log_error "gateway-vm: its own admin /metrics answers '$code'"; return 1; }
}

log_step "Least privilege (issue 13)"
check "each app's process runs as its own user (ps: cm-gateway, cm-inventory, cm-billing), PM2's daemon as root" \
  apps_run_as_their_users
check "sudo pm2 list on each host shows its app online, with its user" sudo_pm2_list
check "env files: <service>.env 0400 cm-<service>, <service>-migrate.env 0400 root; services cannot read /vagrant/.env nor write their code" \
  env_files_locked
check "gateway-vm holds no database password (/etc, /opt/crud-master, /root, /var/lib/crud-master, /tmp)" \
  no_foreign_secrets gateway INVENTORY_DB_PASSWORD INVENTORY_DB_OWNER_PASSWORD BILLING_DB_PASSWORD BILLING_DB_OWNER_PASSWORD
check "inventory-vm holds no billing or RabbitMQ credential; billing-vm no inventory credential" \
  eval 'no_foreign_secrets inventory BILLING_DB_PASSWORD BILLING_DB_OWNER_PASSWORD RABBITMQ_GATEWAY_PASSWORD RABBITMQ_BILLING_PASSWORD &&
    no_foreign_secrets billing INVENTORY_DB_PASSWORD INVENTORY_DB_OWNER_PASSWORD'
check "gateway-vm reaches inventory:$inventory_port and billing:$billing_port; billing-vm cannot reach inventory:$inventory_port, inventory-vm cannot reach billing:$billing_port" \
  eval 'expect_probe gateway inventory "$inventory_port" open && expect_probe gateway billing "$billing_port" open &&
    expect_probe billing inventory "$inventory_port" dropped && expect_probe inventory billing "$billing_port" dropped'
check "AMQP, PostgreSQL and Erlang's ports: gateway-vm reaches only AMQP, inventory-vm nothing of billing-vm" \
  eval 'expect_probe gateway billing "$rabbitmq_port" open && expect_probe inventory billing "$rabbitmq_port" dropped &&
    expect_probe gateway billing 4369 dropped && expect_probe gateway billing 25672 dropped &&
    expect_probe gateway billing "$billing_db_port" dropped && expect_probe gateway inventory "$inventory_db_port" dropped'
check "the client reaches only the gateway port and SSH (8080, 8090, 5672, 5432, 4369, 25672, 9100 dropped)" \
  client_reaches_only_gateway
check "gateway-vm reaches its own admin listener (/metrics on GATEWAY_ADMIN_HOST:$admin_port)" admin_port_local
check "RabbitMQ: exactly two users with exact-name permissions (rabbitmqctl list_permissions)" mq_permissions
check "RabbitMQ: the gateway's user cannot consume, purge, delete or declare billing_queue, nor publish to the default exchange (amqplib on gateway-vm as cm-gateway)" \
  mq_gateway_denied
check "PostgreSQL: the inventory's app role cannot DROP TABLE, ALTER TABLE or CREATE TABLE" \
  db_denied inventory INVENTORY 'DROP TABLE movies' 'ALTER TABLE movies ADD COLUMN x int' 'CREATE TABLE x (id int)'
check "PostgreSQL: billing's app role cannot DROP, DELETE from or UPDATE orders" \
  db_denied billing BILLING 'DROP TABLE orders' 'DELETE FROM orders' 'UPDATE orders SET user_id = user_id'
check "/health bodies name no internal address or error text; /metrics is not on the gateway's public port" \
  health_bodies_clean
