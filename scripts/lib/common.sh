# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2119
# Shared helpers for crud-master's scripts: start-local.sh, stop-local.sh, test.sh, the per-host
# provisioning scripts (provision-*.sh) and the host test. Source it; it defines functions only and changes
# no shell option of the caller. Works on Debian/Ubuntu with or without systemd running.

[[ -n ${_CM_LIB_COMMON:-} ]] && return 0
_CM_LIB_COMMON=1

# ---- logging ----------------------------------------------------------------------------------
# Everything goes to stderr so that functions can print results on stdout.
# CM_LOG_TAG names the calling script in every line (defaults to the script's file name).
: "${CM_LOG_TAG:=$(basename -- "${0:-crud-master}" .sh)}"

_cm_log() {
  local level=$1
  shift
  printf '%s [%s] %-5s %s\n' "$(date +%H:%M:%S)" "$CM_LOG_TAG" "$level" "$*" >&2
}
log_info() { _cm_log INFO "$@"; }
log_warn() { _cm_log WARN "$@"; }
log_error() { _cm_log ERROR "$@"; }
# A visible heading for each step of a long script.
log_step() { printf '\n' >&2; _cm_log '==>' "$@"; }
die() {
  log_error "$@"
  exit 1
}

# ---- environment --------------------------------------------------------------------------------
# require_root [HINT]: dies unless running as root; HINT says how to (e.g. "sudo npm start").
# shellcheck disable=SC2120  # HINT is optional
require_root() {
  [[ $(id -u) -eq 0 ]] || die "this must run as root${1:+ (try: $1)}"
}

# has_systemd: true when systemd is PID 1 and running (the test sd_booted(3) uses).
has_systemd() {
  [[ -d /run/systemd/system ]]
}

# The repository root: two levels above this file (scripts/lib/common.sh).
cm_repo_root() {
  (cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
}

# Names of the variables load_env exported (it skips those already set): callers that must not
# hand credentials on to a child process (pm2 stores its apps' environment) unset these.
CM_ENV_KEYS=()

# load_env FILE
# Reads a dotenv file the way the services' dotenv does, for the simple syntax .env uses:
# blank lines and lines starting with '#' are skipped, an optional leading 'export ' is allowed,
# the line is split on its first '=', surrounding whitespace is trimmed, a value wrapped in
# matching single or double quotes loses the quotes (kept verbatim inside), and an unquoted
# value ends at the first '#' (an inline comment, as in dotenv). Nothing is evaluated.
# A variable already present in the environment wins and is left untouched. The others are
# exported and their names appended to CM_ENV_KEYS.
load_env() {
  local file=${1:?load_env: file argument required}
  local line key value n=0
  [[ -r $file ]] || die "cannot read environment file $file"
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%$'\r'}
    line=${line#"${line%%[![:space:]]*}"}
    [[ -z $line || $line == '#'* ]] && continue
    if [[ $line =~ ^export[[:space:]]+(.*)$ ]]; then
      line=${BASH_REMATCH[1]}
    fi
    if [[ $line != *=* ]]; then
      log_warn "$file:$n: no '=' on this line, ignored"
      continue
    fi
    key=${line%%=*}
    value=${line#*=}
    key=${key%"${key##*[![:space:]]}"}
    if [[ ! $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
      log_warn "$file:$n: '$key' is not a valid variable name, ignored"
      continue
    fi
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    if [[ ${#value} -ge 2 && ${value:0:1} == '"' && ${value: -1} == '"' ]] ||
      [[ ${#value} -ge 2 && ${value:0:1} == "'" && ${value: -1} == "'" ]]; then
      value=${value:1:${#value}-2}
    else
      value=${value%%#*}
      value=${value%"${value##*[![:space:]]}"}
    fi
    if [[ -v $key ]]; then
      continue
    fi
    export "$key=$value"
    CM_ENV_KEYS+=("$key")
  done <"$file"
}

# require_env VAR...: dies naming every variable that is unset or empty.
require_env() {
  local var missing=()
  for var; do
    [[ -n ${!var:-} ]] || missing+=("$var")
  done
  ((${#missing[@]} == 0)) || die "missing configuration (set it in .env): ${missing[*]}"
}

# ---- packages -----------------------------------------------------------------------------------
_CM_APT_UPDATED=

# pkg_installed PKG: true when dpkg has PKG fully installed.
pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# apt_missing PKG...: those of PKG that are not installed, one a line.
apt_missing() {
  local pkg
  for pkg; do
    pkg_installed "$pkg" || printf '%s\n' "$pkg"
  done
}

# apt_install_missing PKG...: installs those of PKG that are not installed yet, from the
# distribution's own archive, non-interactively; runs 'apt-get update' once per process, and
# only when something is missing. Waits up to 5 minutes for another apt/dpkg (e.g. a VM's
# unattended-upgrades at first boot) to release its lock.
apt_install_missing() {
  local missing=()
  mapfile -t missing < <(apt_missing "$@")
  ((${#missing[@]} == 0)) && return 0
  require_root
  local -a apt_opts=(-q -y -o DPkg::Lock::Timeout=300)
  if [[ -z $_CM_APT_UPDATED ]]; then
    log_info "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update >/dev/null 2>&1 ||
      die "apt-get update failed"
    _CM_APT_UPDATED=1
  fi
  log_info "apt-get install ${missing[*]}"
  local out
  out=$(mktemp)
  if ! DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    install --no-install-recommends "${missing[@]}" >"$out" 2>&1; then
    tail -n 30 "$out" >&2
    rm -f "$out"
    die "apt-get install ${missing[*]} failed"
  fi
  rm -f "$out"
}

# apt_install_no_start PKG...: apt_install_missing, leaving stopped the services the packages
# would start as they install: for the duration, a policy-rc.d answers 101 ("action forbidden")
# to invoke-rc.d and deb-systemd-invoke (one already there is put back). For `npm test`, whose
# harness starts private PostgreSQL and RabbitMQ instances of its own.
apt_install_no_start() {
  local missing=()
  mapfile -t missing < <(apt_missing "$@")
  ((${#missing[@]})) || return 0
  require_root
  (
    policy=/usr/sbin/policy-rc.d
    backup=
    if [[ -e $policy ]]; then
      backup=$(mktemp /usr/sbin/policy-rc.d.crud-master.XXXXXX)
      cp -p "$policy" "$backup"
    fi
    # (A subshell with its own EXIT trap: the policy is restored even when apt-get fails.)
    trap 'if [[ -n $backup ]]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi' EXIT
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    apt_install_missing "${missing[@]}"
  )
}

# ---- waiting ------------------------------------------------------------------------------------
# wait_until SECONDS COMMAND...: runs COMMAND every second until it succeeds (returns 0) or
# SECONDS have passed (returns 1). COMMAND's output is discarded.
wait_until() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout))
  while true; do
    "$@" >/dev/null 2>&1 && return 0
    ((SECONDS >= deadline)) && return 1
    sleep 1
  done
}

# http_status URL: prints the HTTP status code of a GET to URL (000 when nothing answers within
# 3 s). Uses curl when present, else node.
http_status() {
  local url=$1
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -m 3 -w '%{http_code}' "$url" 2>/dev/null || true
  else
    node -e '
      const req = require("http").get(process.argv[1], { timeout: 3000 }, (res) => {
        res.resume(); process.stdout.write(String(res.statusCode));
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => process.stdout.write("000"));
    ' "$url" 2>/dev/null || printf '000'
  fi
}

# http_ok URL: true when GET URL answers 200.
http_ok() {
  [[ $(http_status "$1") == 200 ]]
}

# http_wait URL SECONDS [any]: waits for GET URL to answer 200 (or, with "any", any HTTP status),
# checking every second; logs the outcome. Returns 1 when it did not within SECONDS.
http_wait() {
  local url=$1 timeout=$2 mode=${3:-200} deadline status
  deadline=$((SECONDS + timeout))
  while true; do
    status=$(http_status "$url")
    if [[ $status == 200 ]] || [[ $mode == any && $status != 000 ]]; then
      log_info "$url answers $status"
      return 0
    fi
    ((SECONDS >= deadline)) && break
    sleep 1
  done
  log_error "$url did not answer ${mode/any/at all} within $timeout s (last: $status)"
  return 1
}
