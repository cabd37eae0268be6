# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2119
# Running crud-master's apps under PM2 as root, from the repository's ecosystem.config.js.
# Needs common.sh (and node.sh's pm2_install_global for 'pm2 on PATH' on the VMs).

[[ -n ${_CM_LIB_PM2:-} ]] && return 0
_CM_LIB_PM2=1
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

# The contract's process names, in start order.
# shellcheck disable=SC2034  # used by the scripts that source this file
CM_PM2_APPS=(inventory_app billing_app api_gateway)

# One daemon for root however the script was reached (sudo may keep the caller's HOME): the one
# 'sudo pm2 list' talks to.
_cm_pm2_home() {
  local home
  home=$(getent passwd "$(id -un)" | cut -d: -f6)
  printf '%s/.pm2\n' "${home:-$HOME}"
}

# pm2_select [ROOT]: sets PM2_BIN to ROOT/node_modules/.bin/pm2 when present (so 'npx pm2 ...'
# sees the same daemon and version), else to the pm2 on PATH; exports PM2_HOME.
pm2_select() {
  local root=${1:-$(cm_repo_root)}
  if [[ -x $root/node_modules/.bin/pm2 ]]; then
    PM2_BIN=$root/node_modules/.bin/pm2
  elif command -v pm2 >/dev/null 2>&1; then
    PM2_BIN=$(command -v pm2)
  else
    die "pm2 not found: run 'npm ci' in $root or install it (pm2_install_global)"
  fi
  export PM2_HOME=${PM2_HOME:-$(_cm_pm2_home)}
}

# pm2_run ARGS...: runs pm2 without the credentials load_env exported (CM_ENV_KEYS) and without
# npm's npm_* variables: PM2 copies its caller's environment into its apps and into
# dump.pm2 ('pm2 save'), and the services read their credentials from .env themselves.
pm2_run() {
  [[ -n ${PM2_BIN:-} ]] || pm2_select "$(cm_repo_root)"
  local -a unset_args=()
  local var
  for var in "${CM_ENV_KEYS[@]}"; do
    unset_args+=(-u "$var")
  done
  while IFS= read -r var; do
    [[ $var == npm_* ]] && unset_args+=(-u "$var")
  done < <(compgen -e)
  env "${unset_args[@]}" "$PM2_BIN" "$@"
}

# pm2_daemon_running: true when PM2_HOME's daemon is alive (its pid file names a live process).
# Checked before asking the daemon anything: any pm2 command would start one otherwise.
pm2_daemon_running() {
  [[ -n ${PM2_HOME:-} ]] || pm2_select "$(cm_repo_root)"
  local pid
  pid=$(cat -- "$PM2_HOME/pm2.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# pm2_query JS [ARG]: the one reader of `pm2 jlist`. JS is an expression over `apps` (the
# daemon's process list) and `arg` (ARG) that yields an array; each element is printed on a line.
# Prints nothing when no daemon runs (this does not start one) or its answer cannot be read.
pm2_query() {
  [[ -n ${PM2_BIN:-} ]] || pm2_select "$(cm_repo_root)"
  pm2_daemon_running || return 0
  pm2_run jlist 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      let apps;
      try { apps = JSON.parse(s.slice(s.indexOf("["))); } catch { return; }
      const lines = new Function("apps", "arg", `return (${process.argv[1]});`)(apps, process.argv[2]);
      for (const line of lines) console.log(line);
    });' "$1" "${2:-}"
}

# pm2_app_names: the names of all apps the daemon knows, one a line.
pm2_app_names() {
  pm2_query 'apps.map((a) => a.name)'
}

# pm2_app_status NAME: the app's PM2 status (online, stopped, errored, waiting restart, ...), or
# nothing when PM2 does not know it.
pm2_app_status() {
  pm2_query 'apps.filter((a) => a.name === arg).map((a) => a.pm2_env.status)' "$1"
}

# pm2_start_apps ECOSYSTEM APP...: (re)starts the APPs of ECOSYSTEM with exactly the current
# environment (less what pm2_run strips). An APP PM2 already runs is deleted first rather than
# reloaded: 'pm2 reload --update-env' merges the new environment into the old one, so a variable
# set for an earlier start (e.g. GATEWAY_PORT=3100 npm start) would outlive it. In fork mode a
# reload is a stop and a start anyway, so this costs no extra downtime.
pm2_start_apps() {
  local ecosystem=${1:?pm2_start_apps: ECOSYSTEM required}
  shift
  local only
  only=$(IFS=,; printf '%s' "$*")
  CM_PM2_QUIET_ABSENT=1 pm2_delete_apps "$@"
  log_info "pm2 start $(basename -- "$ecosystem") --only $only"
  pm2_run start "$ecosystem" --only "$only" >/dev/null || die "pm2 could not start $only"
}

# pm2_delete_apps APP...: stops and removes each APP that PM2 knows (in one pm2 call); other
# apps of the daemon, and the daemon itself, are left alone.
pm2_delete_apps() {
  local app known
  local -a present=()
  known=$(pm2_app_names)
  for app; do
    if grep -qxF -- "$app" <<<"$known"; then
      present+=("$app")
    elif [[ -z ${CM_PM2_QUIET_ABSENT:-} ]]; then
      log_info "$app is not running under pm2"
    fi
  done
  ((${#present[@]})) || return 0
  log_info "pm2 delete ${present[*]}"
  pm2_run delete "${present[@]}" >/dev/null || log_warn "pm2 delete ${present[*]} failed"
}

# pm2_logs_tail APP [LINES]: the last LINES (default 40) lines of APP's error log and of its
# output log, read from the files PM2 writes (no daemon round trip, no colour codes).
pm2_logs_tail() {
  local app=$1 lines=${2:-40} file
  [[ -n ${PM2_BIN:-} ]] || pm2_select "$(cm_repo_root)"
  pm2_daemon_running || return 0
  while IFS= read -r file; do
    [[ -n $file && -f $file ]] || continue
    printf -- '--- %s (last %s lines)\n' "$file" "$lines"
    tail -n "$lines" -- "$file"
  done < <(pm2_query 'apps.filter((a) => a.name === arg).flatMap((a) => [...new Set([a.pm2_env.pm_err_log_path, a.pm2_env.pm_out_log_path])])' "$app")
}

# pm2_startup_unit: 'pm2 startup' for root: writes /etc/systemd/system/pm2-root.service
# (ExecStart pm2 resurrect, ExecStop pm2 kill) and enables it; it does not start it. Needs a pm2
# on PATH for the unit (pm2_install_global).
pm2_startup_unit() {
  require_root
  [[ -n ${PM2_BIN:-} ]] || pm2_select "$(cm_repo_root)"
  local pm2_path home
  pm2_path=$(command -v pm2) || die "pm2_startup_unit: pm2 is not on PATH (pm2_install_global)"
  home=$(dirname -- "$PM2_HOME")
  log_info "pm2 startup systemd (user root)"
  env PM2_HOME="$PM2_HOME" "$pm2_path" startup systemd -u root --hp "$home" >/dev/null ||
    die "pm2 startup failed"
}

# pm2_logrotate_install: rotates PM2's log files (the apps' access and error logs and the
# daemon's own, under PM2_HOME) with Debian's logrotate: a file is rotated once it passes 20 MB,
# or after a day, and 7 compressed generations are kept. copytruncate, because PM2 holds its log
# files open (in append mode, so it goes on writing at the start of the truncated file). On
# systemd hosts logrotate.timer is made hourly, so the size limit is checked every hour (Debian's
# default is daily); without systemd nothing runs logrotate by itself and a warning says so.
# CM_LOGROTATE_CONF (default /etc/logrotate.d/crud-master-pm2) names the file, for tests.
# Returns 0 when it changed something, 1 when everything was already in place.
pm2_logrotate_install() {
  [[ -n ${PM2_HOME:-} ]] || pm2_select "$(cm_repo_root)"
  local conf=${CM_LOGROTATE_CONF:-/etc/logrotate.d/crud-master-pm2} changed=1 want
  local dropin=/etc/systemd/system/logrotate.timer.d/crud-master-hourly.conf timer
  if ! command -v logrotate >/dev/null 2>&1; then
    apt_install_missing logrotate
    changed=0
  fi
  want=$(printf '%s\n' \
    "# crud-master: PM2's logs (scripts/lib/pm2.sh, pm2_logrotate_install; rewritten by it)" \
    "$PM2_HOME/logs/*.log $PM2_HOME/pm2.log {" \
    '    daily' '    maxsize 20M' '    rotate 7' '    compress' '    delaycompress' \
    '    missingok' '    notifempty' '    copytruncate' '}')
  if [[ $(cat -- "$conf" 2>/dev/null) != "$want" ]]; then
    install -d -m 0755 "$(dirname -- "$conf")"
    printf '%s\n' "$want" >"$conf"
    chmod 0644 "$conf"
    log_info "logrotate: $conf (PM2's logs: 20 MB or daily, 7 kept)"
    changed=0
  fi
  [[ -z ${CM_LOGROTATE_CONF:-} ]] || return "$changed"
  if has_systemd; then
    timer=$'[Timer]\nOnCalendar=\nOnCalendar=hourly\nAccuracySec=1m'
    if [[ $(cat -- "$dropin" 2>/dev/null) != "$timer" ]]; then
      install -d -m 0755 "$(dirname -- "$dropin")"
      printf '%s\n' "$timer" >"$dropin"
      systemctl daemon-reload
      changed=0
    fi
    if ! systemctl is-enabled --quiet logrotate.timer 2>/dev/null || ! systemctl is-active --quiet logrotate.timer; then
      systemctl enable --now logrotate.timer >/dev/null 2>&1 || log_warn "could not enable logrotate.timer"
      changed=0
    fi
  else
    log_warn "no systemd: nothing runs logrotate periodically here; run 'logrotate $conf' from cron to rotate PM2's logs"
  fi
  return "$changed"
}
