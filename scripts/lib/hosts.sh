# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2119
# Helpers for the per-host provisioning scripts (provision-common.sh, provision-gateway.sh,
# provision-inventory.sh, provision-billing.sh). Source it after common.sh; functions only.
#
# Every step of a provisioning script is idempotent, and each one that actually changes the
# machine calls cm_changed. The script ends with cm_summary, which prints one line
#   crud-master provision <role>: changed=N
# on stdout: a second `vagrant provision` (and the three-host test, test/hosts/run.sh) expects N=0.

[[ -n ${_CM_LIB_HOSTS:-} ]] && return 0
_CM_LIB_HOSTS=1
# The provisioning scripts source only this file; it brings every library they use.
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=node.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/node.sh"
# shellcheck source=postgres.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/postgres.sh"
# shellcheck source=rabbitmq.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/rabbitmq.sh"
# shellcheck source=pm2.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/pm2.sh"
# shellcheck source=services.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/services.sh"
# shellcheck source=firewall.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/firewall.sh"
# shellcheck source=topology.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/topology.sh"

# Where the application is deployed on a VM (a copy of the synced folder, see cm_deploy_sources).
: "${CM_APP_DIR:=/opt/crud-master}"
# Provisioning state (fingerprints of what PM2 runs).
: "${CM_STATE_DIR:=/var/lib/crud-master}"

CM_CHANGED=0
CM_CHANGES=()

# cm_changed WHAT: records that this run changed something on the machine.
cm_changed() {
  CM_CHANGED=$((CM_CHANGED + 1))
  CM_CHANGES+=("$*")
  log_info "changed: $*"
}

# cm_summary ROLE: the last line of every provisioning script (on stdout, machine-readable).
cm_summary() {
  local role=$1 c
  for c in "${CM_CHANGES[@]}"; do
    log_info "  - $c"
  done
  printf 'crud-master provision %s: changed=%d\n' "$role" "$CM_CHANGED"
}

# cm_provision_begin [ROLE]: what every provisioning script does first: report the failing line,
# insist on root, find the repository (REPO, see cm_repo_dir), read its configuration
# (cm_load_host_env) and set the addresses of ROLE's host in the topology (topology.sh).
cm_provision_begin() {
  trap 'log_error "failed at line $LINENO: $BASH_COMMAND"' ERR
  require_root "sudo bash $0"
  REPO=$(cm_repo_dir)
  log_step "Configuration"
  cm_load_host_env "$REPO"
  cm_topology "${1:-common}"
}

# cm_apt_install PKG...: apt_install_missing, counting a change when something was missing.
cm_apt_install() {
  local missing=()
  mapfile -t missing < <(apt_missing "$@")
  ((${#missing[@]})) || return 0
  apt_install_missing "${missing[@]}"
  cm_changed "installed ${missing[*]}"
}

# cm_write_file DEST MODE [OWNER[:GROUP]] < CONTENT
# Writes standard input to DEST (atomically, through a temporary file in the same folder) only
# when DEST is missing or differs, or its mode/owner differ. Returns 0 when it changed DEST,
# 1 when DEST was already so (callers restart/reload a service only on 0).
cm_write_file() {
  local dest=$1 mode=$2 owner=${3:-root:root} tmp
  install -d -m 0755 "$(dirname -- "$dest")"
  tmp=$(mktemp "$dest.cm-new.XXXXXX")
  cat >"$tmp"
  if [[ -f $dest ]] && cmp -s "$tmp" "$dest" &&
    [[ $(stat -c '%a %U:%G' "$dest") == "${mode#0} $owner" ]]; then
    rm -f "$tmp"
    return 1
  fi
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  mv -f "$tmp" "$dest"
  cm_changed "wrote $dest"
  return 0
}

# cm_env_keys FILE: the variable names FILE defines, in order (same rules as load_env).
cm_env_keys() {
  sed -n -E 's/^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=.*/\2/p' "$1"
}

# _cm_env_quote VALUE: VALUE as a dotenv value that reads back verbatim (services.sh writes the
# services' env files with it).
_cm_env_quote() {
  local v=$1
  if [[ $v =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
    printf '%s' "$v"
  elif [[ $v != *"'"* ]]; then
    printf "'%s'" "$v"
  else
    printf '"%s"' "$v"
  fi
}

# cm_load_host_env REPO: the configuration the provisioner passed (the Vagrantfile passes each VM
# only its role's variables, and CM_PROVISION_KEYS, their names in .env's order: the synced folder
# carries no .env), or else REPO/.env (run by hand on a checkout that has one; values in the
# environment win). Every one of those names is a variable pm2_run strips (the services read their
# own file in /etc/crud-master, so no credential ends up in PM2's dump). The addresses that follow
# from the VM addresses are set afterwards by cm_topology.
cm_load_host_env() {
  local repo=$1
  if [[ -n ${CM_PROVISION_KEYS:-} ]]; then
    read -r -a CM_ENV_KEYS <<<"$CM_PROVISION_KEYS"
    local key
    for key in "${CM_ENV_KEYS[@]}"; do
      [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "CM_PROVISION_KEYS: '$key' is not a variable name"
      [[ -v $key ]] && export "${key?}"
    done
  elif [[ -r $repo/.env ]]; then
    load_env "$repo/.env"
    mapfile -t CM_ENV_KEYS < <(cm_env_keys "$repo/.env")
  else
    die "no configuration: neither CM_PROVISION_KEYS from the provisioner (vagrant provision) nor $repo/.env"
  fi
  export NODE_ENV
}

# cm_repo_dir: the repository as the VM sees it: CM_REPO_DIR, else the folder holding this
# scripts/ (Vagrant runs `bash /vagrant/scripts/provision-*.sh`).
cm_repo_dir() {
  if [[ -n ${CM_REPO_DIR:-} ]]; then
    printf '%s\n' "$CM_REPO_DIR"
  else
    cm_repo_root
  fi
}

# ---- deploying the application --------------------------------------------------------------

# cm_deploy_sources REPO GROUP: copies the repository (sources, lock file, ecosystem.config.js;
# not .git, node_modules, build output, .env, .vagrant) to CM_APP_DIR with rsync, deleting files
# that are gone from REPO but keeping CM_APP_DIR's own node_modules and build output. Nothing in
# it is for others, nothing is writable by the group (g-w,o-rwx, whatever modes the synced
# folder shows): the files belong to root and group GROUP (the service's), so the service reads
# its code and cannot change it. Why a copy and not a build in /vagrant: the
# synced folder is the user's checkout (a vboxsf share or an rsync target that `vagrant
# rsync`/`reload` overwrites): npm's workspace symlinks and root-owned node_modules built for the
# VM would land in it (or be wiped under the running apps), and the three VMs would build into
# the same node_modules/dist at once. Returns 0 when it changed files.
cm_deploy_sources() {
  local repo=$1 group=$2 out
  [[ -d $CM_APP_DIR ]] || install -d -m 0750 -o root -g "$group" "$CM_APP_DIR"
  # -O: directory times are not copied (writing node_modules changes the folders' own).
  # --chmod: the modes wanted here, so that an unchanged file is not "changed" by its mode.
  out=$(rsync -rlpt -O --chmod=g-w,o-rwx --delete --itemize-changes \
    --exclude=/.git/ --exclude=/.vagrant/ --exclude=node_modules/ --exclude=dist/ \
    --exclude='*.tsbuildinfo' --exclude=/.env --exclude='/.env.*' --exclude=/.ci/ \
    --exclude=/test-results/ --exclude='*.log' \
    "$repo/" "$CM_APP_DIR/") || die "rsync $repo/ -> $CM_APP_DIR/ failed"
  # A deployment made before the services had files of their own kept every credential here.
  if [[ -e $CM_APP_DIR/.env ]]; then
    rm -f -- "$CM_APP_DIR/.env"
    cm_changed "removed $CM_APP_DIR/.env (each service reads /etc/crud-master/<service>.env)"
  fi
  if [[ -n $out ]]; then
    log_info "rsync: $(head -n 10 <<<"$out" | tr '\n' ' ')$( (($(wc -l <<<"$out") > 10)) && echo '...')"
    cm_changed "copied $(wc -l <<<"$out") changed path(s) from $repo to $CM_APP_DIR"
    return 0
  fi
  return 1
}

# cm_app_permissions GROUP: every file under CM_APP_DIR (npm ci's and tsc's output included)
# owned by root, group GROUP (read only), nothing for others. chown/chmod touch no modification
# time.
cm_app_permissions() {
  chown -R "root:$1" "$CM_APP_DIR"
  chmod -R g-w,o-rwx "$CM_APP_DIR"
}

# cm_build SERVICE_DIR...: npm ci when node_modules does not match the lock file, then
# `tsc -b srcs/<dir>` for each service this VM runs (tsc -b builds packages/common through the
# project references, and does nothing when the output is up to date). Both run with a clean
# environment (node.sh: node_clean_env): no .env value reaches the lifecycle scripts of the
# dependencies. Counts a change when the build output changed.
cm_build() {
  local before after dir projects=()
  for dir; do projects+=("srcs/$dir"); done
  before=$(_cm_tree_hash "${projects[@]/%//dist}" packages/common/dist)
  if ! npm_deps_in_sync "$CM_APP_DIR"; then
    npm_ci_if_needed "$CM_APP_DIR"
    cm_changed "npm ci in $CM_APP_DIR"
  fi
  node_build "$CM_APP_DIR" "$@"
  after=$(_cm_tree_hash "${projects[@]/%//dist}" packages/common/dist)
  [[ $before == "$after" ]] || cm_changed "built ${projects[*]}"
}

# _cm_tree_hash PATH...: one checksum over the files under CM_APP_DIR/PATH... (names and contents).
_cm_tree_hash() {
  (
    cd "$CM_APP_DIR" || exit 1
    local p present=()
    for p; do [[ -e $p ]] && present+=("$p"); done
    if ((${#present[@]})); then
      find "${present[@]}" -type f -print0 | sort -z | xargs -0 -r sha256sum
    fi | sha256sum | cut -d' ' -f1
  )
}

# Seconds systemd gives pm2-root.service's `pm2 kill` at shutdown: PM2 stops the VM's one app with
# SIGINT and SIGKILLs it after ecosystem.config.js's kill_timeout (15 s), which is longer than the
# app's own graceful shutdown (10 s, packages/common/src/http-server.ts); 25 s leaves room for the
# CLI itself. (systemd's default, 90 s, is what a stuck stop would cost otherwise.)
: "${CM_PM2_STOP_TIMEOUT:=25}"

# cm_systemd_dropin UNIT < CONTENT: /etc/systemd/system/UNIT.d/crud-master.conf (cm_write_file),
# systemd reloaded when it changed.
cm_systemd_dropin() {
  local unit=$1
  if cm_write_file "/etc/systemd/system/$unit.d/crud-master.conf" 0644 root:root; then
    if has_systemd; then systemctl daemon-reload; fi
  fi
  return 0
}

# cm_pm2_unit [UNIT...]: PM2's daemon runs as pm2-root.service, which systemd starts at boot
# (`pm2 resurrect`) and stops at shutdown (`pm2 kill`):
#  - `pm2 startup` writes and enables the unit (it does not start it);
#  - a drop-in orders it After= the local services its app uses (UNIT..., e.g. postgresql.service,
#    rabbitmq-server.service): at shutdown systemd stops units in reverse order, so the app stops
#    (drains its consumer, closes its pool) while its database and broker are still up instead of
#    racing them; and it bounds the stop (CM_PM2_STOP_TIMEOUT);
#  - the daemon is the unit's main process. `pm2 start` from a provisioning shell would otherwise
#    spawn it in that shell's cgroup (Vagrant's SSH session scope; the host test's nsenter): no
#    unit stops it in order at the first shutdown, it is only signalled with whatever is left at
#    the very end. A daemon found running outside the unit is saved, killed and resurrected by it.
cm_pm2_unit() {
  has_systemd || return 0
  if ! systemctl is-enabled --quiet pm2-root 2>/dev/null; then
    pm2_startup_unit
    cm_changed "pm2 startup (systemd unit pm2-root, enabled at boot)"
  fi
  local after=
  (($#)) && after="After=$*"
  cm_systemd_dropin pm2-root.service <<EOF
# crud-master (written by provisioning).
[Unit]
# Stopped before the local services the app uses (systemd stops in reverse start order).
$after

[Service]
# pm2 kill: the app's kill_timeout (15 s in ecosystem.config.js) plus the CLI's own time.
TimeoutStopSec=$CM_PM2_STOP_TIMEOUT
EOF
  local main pid
  main=$(systemctl show -P MainPID pm2-root 2>/dev/null || true)
  pid=$(cat -- "$PM2_HOME/pm2.pid" 2>/dev/null || true)
  if systemctl is-active --quiet pm2-root && [[ -n $pid && $main == "$pid" ]] && pm2_daemon_running; then
    return 0
  fi
  if systemctl is-active --quiet pm2-root; then
    systemctl stop pm2-root || die "systemctl stop pm2-root failed"
  fi
  if pm2_daemon_running; then
    log_info "PM2's daemon (PID $pid) runs outside pm2-root.service: saving its list, handing it to systemd"
    pm2_run save >/dev/null || die "pm2 save failed"
    pm2_run kill >/dev/null || die "pm2 kill failed"
  fi
  systemctl start pm2-root || die "systemctl start pm2-root failed (journalctl -u pm2-root)"
  cm_changed "PM2's daemon runs as pm2-root.service"
}

# cm_pm2_ensure APP SERVICE_DIR SERVICE [UNIT...]: makes PM2 (as root, its daemon pm2-root.service
# ordered after the local UNITs APP uses, see cm_pm2_unit) run APP from
# CM_APP_DIR/ecosystem.config.js as the system user cm-SERVICE with its own file
# CM_ENV_DIR/SERVICE.env (ecosystem.config.js does both when CM_ENV_DIR is set). (Re)starts it
# only when it is not running, or when what it runs changed since it was started (build output,
# its env file, ecosystem file, node_modules, its user's uid): the fingerprint of those is kept
# in CM_STATE_DIR. Then saves the process list (pm2 save) when it changed or lacks APP, so APP
# comes back after a reboot.
cm_pm2_ensure() {
  local app=$1 dir=$2 service=$3 fp old status
  shift 3
  pm2_select "$CM_APP_DIR"
  install -d -m 0700 "$CM_STATE_DIR"
  cm_pm2_unit "$@"
  fp=$(_cm_tree_hash "srcs/$dir/dist" packages/common/dist "$CM_ENV_DIR/$service.env" ecosystem.config.js \
    node_modules/.package-lock.json)
  fp="$fp $(id -u "cm-$service"):$(id -g "cm-$service")"
  old=$(cat "$CM_STATE_DIR/$app.fingerprint" 2>/dev/null || true)
  status=$(pm2_app_status "$app")
  case $status in
    online | launching | 'waiting restart') ;;
    *) old="(not running: ${status:-unknown to pm2})" ;;
  esac
  local saved=1
  if [[ $fp != "$old" ]]; then
    # (pm2_start_apps deletes the app first, so it starts with exactly this environment.)
    # (CM_ENV_DIR is exported, see services.sh: ecosystem.config.js reads it.)
    pm2_start_apps "$CM_APP_DIR/ecosystem.config.js" "$app"
    printf '%s\n' "$fp" >"$CM_STATE_DIR/$app.fingerprint"
    cm_changed "pm2 started $app (was: ${old:-not started by provisioning})"
    saved=0
  else
    log_info "$app runs under pm2 with the current build and configuration: left alone"
  fi
  if pm2_logrotate_install; then cm_changed "logrotate for PM2's logs"; fi
  if ((saved == 0)) || [[ ! -s ${PM2_HOME}/dump.pm2 ]] || ! grep -qE "\"name\": *\"$app\"" "$PM2_HOME/dump.pm2"; then
    pm2_run save >/dev/null || die "pm2 save failed"
    ((saved == 0)) || cm_changed "pm2 save"
  fi
}

# ---- PostgreSQL, local only --------------------------------------------------------------------

# cm_postgres_local_only DB OWNER APP [LISTEN_IP CLIENT_IP...]: the cluster listens on localhost
# only, and pg_hba.conf lets in only the postgres superuser over the local socket (peer:
# `sudo -u postgres psql`) and OWNER (migrate.js) and APP (the service) to DB over loopback TCP with
# their passwords. Anything else has no line, so it is rejected. With LISTEN_IP and CLIENT_IPs (the
# scaled profile: the same service on other hosts), the cluster also listens on LISTEN_IP, and APP
# alone (never OWNER: migrations run here) may connect from each CLIENT_IP; the firewall lets those
# hosts alone reach the port. Restarts (listen_addresses) or reloads (pg_hba.conf) only when a file
# changed.
cm_postgres_local_only() {
  local db=$1 owner=$2 app=$3 listen_ip=${4:-} v conf_dir hba listen=localhost remote="" ip
  shift 3
  (($#)) && shift
  v=$(postgres_version)
  conf_dir=/etc/postgresql/$v/$PG_CLUSTER_NAME
  hba=$conf_dir/pg_hba.conf
  if [[ -n $listen_ip ]]; then
    listen="localhost, $listen_ip"
    remote="# the application's role on the other hosts of its role (scaled profile), with its password"
    for ip; do remote+=$'\n'"host    $db       $app       $ip/32            scram-sha-256"; done
    remote+=$'\n'
    # Listening on the private address needs it configured before PostgreSQL starts at boot.
    cm_systemd_dropin "postgresql@.service" <<'EOF'
# crud-master (written by provisioning): listen_addresses names this host's private address.
[Unit]
Wants=network-online.target
After=network-online.target
EOF
  fi
  local restart=0 reload=0
  # listen_addresses needs a restart; Debian's postgresql.conf includes conf.d/*.conf last.
  if cm_write_file "$conf_dir/conf.d/90-crud-master.conf" 0644 postgres:postgres <<EOF; then restart=1; fi
# crud-master (written by provisioning): the app runs on this host and connects over loopback
# (and, scaled, from the other hosts pg_hba.conf names), so nothing else may open a connection.
listen_addresses = '$listen'
password_encryption = 'scram-sha-256'
EOF
  if cm_write_file "$hba" 0640 postgres:postgres <<EOF; then reload=1; fi
# crud-master (written by provisioning; rewritten on every run).
# TYPE  DATABASE        USER            ADDRESS                 METHOD
# the administrator: 'sudo -u postgres psql' on this host
local   all             postgres                                peer
# the owner role (migrations, run by provisioning) and the application's role, on this host,
# over loopback, with their passwords
host    $db       $owner       127.0.0.1/32            scram-sha-256
host    $db       $owner       ::1/128                 scram-sha-256
host    $db       $app       127.0.0.1/32            scram-sha-256
host    $db       $app       ::1/128                 scram-sha-256
${remote}# nothing else: a connection that matches no line is rejected
EOF
  if ((restart)); then
    log_info "restarting PostgreSQL $v/$PG_CLUSTER_NAME (listen_addresses)"
    if has_systemd; then
      systemctl restart "postgresql@$v-$PG_CLUSTER_NAME" || die "PostgreSQL restart failed"
    else
      pg_ctlcluster "$v" "$PG_CLUSTER_NAME" restart || die "PostgreSQL restart failed"
    fi
    wait_until 60 pg_isready -q -h /var/run/postgresql -p "$(postgres_port)" || die "PostgreSQL did not come back"
  elif ((reload)); then
    log_info "reloading PostgreSQL (pg_hba.conf)"
    postgres_psql -d postgres -c 'SELECT pg_reload_conf()' >/dev/null || die "PostgreSQL reload failed"
  fi
}

# cm_local_postgres PREFIX VM [CLIENT_IP...]: the PostgreSQL a service keeps on its own VM, from the service's
# PREFIX_DB_HOST/_PORT/_NAME/_OWNER/_OWNER_PASSWORD/_USER/_PASSWORD: installed from Debian's
# archive (PostgreSQL 17 in Debian 13; contrib modules such as pg_trgm are part of the server
# package), started and enabled at boot (the app needs it after every reboot), open only to the
# two roles over loopback (cm_postgres_local_only), the owner role owning the database and its
# schema, the app role with CONNECT only until migrate.js grants it its tables
# (postgres_ensure_app_db). Counts a change only when a role could not log in before. With
# CLIENT_IPs (the scaled profile), the cluster also listens on this host's address (CM_OWN_IP) and
# the app role may connect from those hosts (cm_postgres_local_only).
cm_local_postgres() {
  local prefix=$1 vm=$2 pg_port
  shift 2
  local host_var=${prefix}_DB_HOST port_var=${prefix}_DB_PORT db_var=${prefix}_DB_NAME
  local owner_var=${prefix}_DB_OWNER owner_pw_var=${prefix}_DB_OWNER_PASSWORD
  local user_var=${prefix}_DB_USER password_var=${prefix}_DB_PASSWORD
  require_env "$port_var" "$db_var" "$owner_var" "$owner_pw_var" "$user_var" "$password_var"
  local host=${!host_var:-127.0.0.1}
  # The service connects to its database on this host; anything else would need the database
  # opened to the network, which these VMs do not do.
  [[ $host =~ ^(127\.0\.0\.1|localhost|::1)$ ]] ||
    die "$host_var=$host: this PostgreSQL runs on $vm and accepts local connections only"
  cm_apt_install postgresql
  postgres_ensure_running
  pg_port=$(postgres_port)
  [[ $pg_port == "${!port_var}" ]] ||
    die "$port_var=${!port_var} but the PostgreSQL cluster listens on $pg_port"
  if (($#)); then
    cm_postgres_local_only "${!db_var}" "${!owner_var}" "${!user_var}" "$CM_OWN_IP" "$@"
  else
    cm_postgres_local_only "${!db_var}" "${!owner_var}" "${!user_var}"
  fi
  if postgres_ensure_app_db "${!owner_var}" "${!owner_pw_var}" "${!user_var}" "${!password_var}" "${!db_var}"; then
    cm_changed "PostgreSQL roles ${!owner_var} (owner) and ${!user_var} (app), database ${!db_var}"
  fi
}
