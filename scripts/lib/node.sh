# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2119
# Node.js, npm and PM2: install from the distribution's archive / the npm registry, install the
# repository's dependencies when they are missing or out of date. Needs common.sh.

[[ -n ${_CM_LIB_NODE:-} ]] && return 0
_CM_LIB_NODE=1
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

# Lowest Node.js major version the services run on (root package.json: engines.node).
: "${CM_NODE_MIN_MAJOR:=20}"

# node_install: installs nodejs and npm from the distribution's archive when node (or npm) is
# missing (Debian 13 ships Node.js 20), then checks the version.
node_install() {
  if ! command -v node >/dev/null 2>&1; then
    apt_install_missing nodejs npm ca-certificates
  elif ! command -v npm >/dev/null 2>&1; then
    apt_install_missing npm ca-certificates
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= CM_NODE_MIN_MAJOR)) ||
    die "Node.js $(node --version) is too old: crud-master needs Node.js >= $CM_NODE_MIN_MAJOR (Debian 13 ships it)"
  log_info "Node.js $(node --version), npm $(npm --version)"
}

# pm2_pinned_version [ROOT]: the pm2 version in ROOT/package.json's devDependencies.
pm2_pinned_version() {
  local root=${1:-$(cm_repo_root)}
  node -e '
    const pkg = require(require("path").join(process.argv[1], "package.json"));
    const v = (pkg.devDependencies || {}).pm2 || (pkg.dependencies || {}).pm2;
    if (!v) { console.error("pm2 is not in package.json"); process.exit(1); }
    console.log(v);
  ' "$root"
}

# pm2_install_global [ROOT]: 'npm install -g pm2@<pinned version>' when no pm2 is on PATH, so
# that 'sudo pm2 ...' works and talks to the same daemon (same version) as the repository's own.
pm2_install_global() {
  local root=${1:-$(cm_repo_root)} version
  if command -v pm2 >/dev/null 2>&1; then
    log_info "pm2 already on PATH: $(command -v pm2)"
    return 0
  fi
  require_root
  version=$(pm2_pinned_version "$root") || die "cannot read the pinned pm2 version from $root/package.json"
  log_info "npm install -g pm2@$version"
  # (A clean environment, as for npm ci: no credential for pm2's install scripts.)
  node_clean_env npm install -g --no-audit --no-fund --loglevel=error "pm2@$version" >/dev/null ||
    die "npm install -g pm2@$version failed"
  command -v pm2 >/dev/null 2>&1 || die "pm2 was installed but is not on PATH ($(npm prefix -g)/bin)"
}

# npm_deps_in_sync ROOT: true when ROOT/node_modules holds exactly the versions
# ROOT/package-lock.json asks for (compares npm's own record, node_modules/.package-lock.json,
# entry by entry, and checks each folder is there). Optional packages npm skipped (other
# platforms' binaries) do not count.
npm_deps_in_sync() {
  local root=${1:?npm_deps_in_sync: ROOT required}
  [[ -d $root/node_modules ]] || return 1
  node -e '
    const fs = require("fs"), path = require("path");
    const root = process.argv[1];
    const read = (f) => JSON.parse(fs.readFileSync(path.join(root, f), "utf8")).packages || {};
    let want, have;
    try { want = read("package-lock.json"); have = read("node_modules/.package-lock.json"); }
    catch { process.exit(1); }
    for (const [key, w] of Object.entries(want)) {
      if (!/(^|\/)node_modules\//.test(key)) continue;      // the root and workspace folders
      const h = have[key];
      if (!h) { if (w.optional) continue; process.exit(1); }
      if (w.link ? (!h.link || h.resolved !== w.resolved) : (w.version && h.version !== w.version))
        process.exit(1);
      if (!fs.existsSync(path.join(root, key))) process.exit(1);
    }
  ' "$root"
}

# node_clean_env [NAME=VALUE...] COMMAND...: COMMAND with only PATH, HOME (the current user's),
# LANG, the proxy and CA settings npm may need, and NAME=VALUE...: none of the .env values a
# caller exported (load_env) or Vagrant passed reaches npm, the lifecycle scripts of the
# dependencies, tsc or migrate.js.
node_clean_env() {
  local home var
  home=$(getent passwd "$(id -un)" | cut -d: -f6)
  local -a keep=(PATH="$PATH" HOME="${home:-/root}" LANG=C.UTF-8)
  for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY NODE_EXTRA_CA_CERTS; do
    [[ -n ${!var:-} ]] && keep+=("$var=${!var}")
  done
  env -i "${keep[@]}" "$@"
}

# npm_ci_if_needed ROOT: 'npm ci' (exactly the lock file, devDependencies included) when node_modules is missing or does
# not match package-lock.json; otherwise nothing.
npm_ci_if_needed() {
  local root=${1:?npm_ci_if_needed: ROOT required}
  if npm_deps_in_sync "$root"; then
    log_info "node_modules matches package-lock.json, skipping npm ci"
    return 0
  fi
  log_info "npm ci (node_modules missing or out of date)"
  # --include=dev: the build needs typescript, whatever NODE_ENV the caller has. A clean
  # environment: no credential for the dependencies' install scripts.
  (cd "$root" && node_clean_env npm ci --include=dev --no-audit --no-fund --loglevel=error) || die "npm ci failed in $root"
}

# node_build ROOT SERVICE_DIR...: `tsc -b srcs/<dir>...` in ROOT (tsc builds packages/* through
# the project references and does nothing when the output is up to date), then, when a
# srcs/<dir>/dist/main.js is missing anyway (a dist/ deleted next to a surviving *.tsbuildinfo
# makes tsc -b think it is done), once more with --force.
node_build() {
  local root=$1 dir projects=()
  shift
  for dir; do projects+=("srcs/$dir"); done
  log_info "tsc -b ${projects[*]}"
  (cd "$root" && node_clean_env node_modules/.bin/tsc -b "${projects[@]}") || die "the build failed (tsc -b ${projects[*]})"
  _node_build_outputs "$root" "$@" && return 0
  log_warn "a dist/main.js is missing after tsc -b: rebuilding with --force"
  (cd "$root" && node_clean_env node_modules/.bin/tsc -b --force "${projects[@]}") || die "the build failed (tsc -b --force)"
  _node_build_outputs "$root" "$@" || die "the build did not produce srcs/{$(IFS=,; echo "$*")}/dist/main.js"
}

_node_build_outputs() {
  local root=$1 dir
  shift
  for dir; do
    [[ -f $root/srcs/$dir/dist/main.js ]] || return 1
  done
}
