# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2119
# PostgreSQL from the distribution's archive: install, keep running (with or without systemd),
# and create an application's database with an owner role and a least-privilege app role.
# Needs common.sh.

[[ -n ${_CM_LIB_POSTGRES:-} ]] && return 0
_CM_LIB_POSTGRES=1
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

# The cluster the applications use (Debian creates "<version>/main" at install time).
: "${PG_CLUSTER_NAME:=main}"

postgres_install() {
  apt_install_missing postgresql
}

# postgres_version: prints the major version of the cluster to use: the newest version that has
# a cluster named $PG_CLUSTER_NAME, else the newest server version installed.
postgres_version() {
  local v
  v=$(pg_lsclusters -h 2>/dev/null | awk -v c="$PG_CLUSTER_NAME" '$2 == c { print $1 }' |
    sort -V | tail -n 1)
  if [[ -z $v ]]; then
    v=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null |
      awk -F/ '{ print $(NF-2) }' | sort -V | tail -n 1)
  fi
  [[ -n $v ]] || die "no PostgreSQL server installed (run postgres_install)"
  printf '%s\n' "$v"
}

# postgres_port: the port of the cluster postgres_version names.
postgres_port() {
  local v
  v=$(postgres_version)
  pg_lsclusters -h | awk -v v="$v" -v c="$PG_CLUSTER_NAME" '$1 == v && $2 == c { print $3 }'
}

# postgres_ensure_running: creates the cluster if it is missing, starts it if it is down (via
# systemd when systemd runs, else pg_ctlcluster), and waits up to 60 s for it to accept
# connections.
postgres_ensure_running() {
  require_root
  local v port status
  v=$(postgres_version)
  if ! pg_lsclusters -h | awk -v v="$v" -v c="$PG_CLUSTER_NAME" '$1 == v && $2 == c' | grep -q .; then
    log_info "creating PostgreSQL cluster $v/$PG_CLUSTER_NAME"
    pg_createcluster "$v" "$PG_CLUSTER_NAME" >/dev/null
  fi
  status=$(pg_lsclusters -h | awk -v v="$v" -v c="$PG_CLUSTER_NAME" '$1 == v && $2 == c { print $4 }')
  if has_systemd; then
    systemctl enable --quiet postgresql >/dev/null 2>&1 || true
    if [[ $status != online* ]]; then
      log_info "starting PostgreSQL $v/$PG_CLUSTER_NAME (systemd)"
      systemctl start "postgresql@$v-$PG_CLUSTER_NAME" || die "systemctl start postgresql@$v-$PG_CLUSTER_NAME failed"
    fi
  elif [[ $status != online* ]]; then
    log_info "starting PostgreSQL $v/$PG_CLUSTER_NAME (pg_ctlcluster, no systemd)"
    pg_ctlcluster "$v" "$PG_CLUSTER_NAME" start || die "pg_ctlcluster $v $PG_CLUSTER_NAME start failed"
  fi
  port=$(postgres_port)
  wait_until 60 pg_isready -q -h /var/run/postgresql -p "$port" ||
    die "PostgreSQL $v/$PG_CLUSTER_NAME is not accepting connections on port $port after 60 s (see /var/log/postgresql/)"
  log_info "PostgreSQL $v/$PG_CLUSTER_NAME is up on port $port"
}

# postgres_psql ARGS...: psql as the postgres superuser over the local socket (peer
# authentication), stopping at the first error, without reading any ~/.psqlrc.
postgres_psql() {
  local port
  port=$(postgres_port)
  (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" "$@")
}

# _postgres_pw_getter: the psql line that reads the password from CM_PG_PASSWORD (\getenv since
# psql 15, a fixed backquoted printenv before).
_postgres_pw_getter() {
  local psql_major
  psql_major=$(psql --version | awk '{ split($3, a, "."); print a[1] }')
  if ((psql_major >= 15)); then
    printf '%s\n' '\getenv pw CM_PG_PASSWORD'
  else
    # shellcheck disable=SC2016  # the backquotes are psql's, not the shell's
    printf '%s\n' '\set pw `printenv CM_PG_PASSWORD`'
  fi
}

# postgres_ensure_login_role ROLE PASSWORD
# Idempotent. ROLE is a LOGIN role with PASSWORD and no other power (NOSUPERUSER NOCREATEDB
# NOCREATEROLE NOREPLICATION NOBYPASSRLS, enforced again when the role exists). The name travels
# as a psql variable (quoted by psql, :"name"); the password through the environment of psql, so
# it never appears in a command line, in the script text or in psql's error output, and the
# session never writes a statement to the server log.
postgres_ensure_login_role() {
  local role=${1:?postgres_ensure_login_role: ROLE required}
  local password=${2:?postgres_ensure_login_role: PASSWORD required}
  require_root
  [[ $role != postgres ]] || die "PostgreSQL: refusing to manage the superuser role 'postgres' as an application role"
  if ! { _postgres_pw_getter; cat <<'SQL'; } | CM_PG_PASSWORD=$password postgres_psql -d postgres -v role="$role"; then
\set VERBOSITY terse
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET log_min_duration_statement = -1;
SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :'role') AS role_missing \gset
\if :role_missing
CREATE ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'pw';
\else
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'pw';
\endif
\unset pw
SQL
    die "PostgreSQL: could not set up role $role"
  fi
}

# postgres_ensure_db_roles OWNER OWNER_PASSWORD APP APP_PASSWORD DB
# Idempotent. The two roles of one database (both postgres_ensure_login_role):
#  - OWNER owns DB and its schema public and runs the migrations (migrate.js), which grant APP
#    its table rights;
#  - APP (the service's role) may only CONNECT to DB and use schema public: no CREATE, no
#    TEMPORARY, nothing owned. What it owned before this split (the database used to belong to
#    it) is handed to OWNER (REASSIGN OWNED), so it cannot DROP or ALTER a table it created.
# PUBLIC loses CONNECT and TEMPORARY on DB and CREATE on public.
postgres_ensure_db_roles() {
  local owner=${1:?postgres_ensure_db_roles: OWNER required} owner_pw=${2:?OWNER_PASSWORD required}
  local app=${3:?APP required} app_pw=${4:?APP_PASSWORD required} db=${5:?DB required}
  require_root
  [[ $owner != "$app" ]] || die "PostgreSQL: the owner role and the app role of $db must differ (both $app)"
  log_info "PostgreSQL: ensuring roles $owner (owner) and $app (app) of database $db"
  postgres_ensure_login_role "$owner" "$owner_pw"
  postgres_ensure_login_role "$app" "$app_pw"
  if ! postgres_psql -d postgres -v owner="$owner" -v app="$app" -v db="$db" <<'SQL' >/dev/null; then
\set VERBOSITY terse
SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = :'db') AS db_missing \gset
SELECT pg_catalog.pg_encoding_to_char(encoding) = 'UTF8' AS template_utf8
  FROM pg_catalog.pg_database WHERE datname = 'template1' \gset
\if :db_missing
\if :template_utf8
CREATE DATABASE :"db" WITH OWNER :"owner";
\else
CREATE DATABASE :"db" WITH OWNER :"owner" TEMPLATE template0 ENCODING 'UTF8'
  LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8';
\endif
\else
ALTER DATABASE :"db" OWNER TO :"owner";
\endif
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE ALL ON DATABASE :"db" FROM :"app";
GRANT CONNECT ON DATABASE :"db" TO :"app";
\connect :"db"
-- Tables, sequences and functions the app role created or owned before the split.
REASSIGN OWNED BY :"app" TO :"owner";
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM :"app";
GRANT USAGE ON SCHEMA public TO :"app";
SQL
    die "PostgreSQL: could not set up database $db for $owner / $app"
  fi
}

# postgres_check_login USER PASSWORD DB [HOST] [PORT]: true when USER can log in to DB over TCP
# with PASSWORD (what the applications do). The password goes through PGPASSWORD.
postgres_check_login() {
  local user=$1 password=$2 db=$3 host=${4:-127.0.0.1} port=${5:-$(postgres_port)}
  (cd / && PGPASSWORD=$password PGCONNECT_TIMEOUT=5 psql -X -q -w -h "$host" -p "$port" \
    -U "$user" -d "$db" -At -c 'SELECT 1' >/dev/null 2>&1)
}

# postgres_ensure_app_db OWNER OWNER_PASSWORD APP APP_PASSWORD DB: postgres_ensure_db_roles, then
# both roles must log in to DB over loopback TCP with their passwords, as migrate.js and the
# application do (dies otherwise: pg_hba.conf?). Returns 0 when one of them could not log in
# before (something was created or repaired), 1 when both already could (everything is
# asserted again anyway).
postgres_ensure_app_db() {
  local owner=$1 owner_pw=$2 app=$3 app_pw=$4 db=$5 port could=1
  port=$(postgres_port)
  postgres_check_login "$owner" "$owner_pw" "$db" 127.0.0.1 "$port" || could=0
  postgres_check_login "$app" "$app_pw" "$db" 127.0.0.1 "$port" || could=0
  postgres_ensure_db_roles "$owner" "$owner_pw" "$app" "$app_pw" "$db"
  postgres_check_login "$owner" "$owner_pw" "$db" 127.0.0.1 "$port" ||
    die "$owner cannot log in to $db on 127.0.0.1:$port (pg_hba.conf?)"
  postgres_check_login "$app" "$app_pw" "$db" 127.0.0.1 "$port" ||
    die "$app cannot log in to $db on 127.0.0.1:$port (pg_hba.conf?)"
  return "$could"
}

# postgres_ensure_extension DB EXTENSION: CREATE EXTENSION IF NOT EXISTS in DB as the superuser
# (the title search's trigram index needs pg_trgm: a trusted extension since PostgreSQL 13, so the
# database's owner could create it, but as postgres it works on older servers too and the
# migration does not depend on it). Returns 0 when it created it, 1 when DB already had it.
postgres_ensure_extension() {
  local db=$1 ext=$2 have
  have=$(postgres_psql -d "$db" -Atc "SELECT count(*) FROM pg_extension WHERE extname = '$ext'") ||
    die "PostgreSQL: cannot read the extensions of $db"
  [[ $have == 1 ]] && return 1
  postgres_psql -d "$db" -c "CREATE EXTENSION IF NOT EXISTS $ext" >/dev/null ||
    die "PostgreSQL: CREATE EXTENSION $ext in $db failed"
  log_info "PostgreSQL: created extension $ext in $db"
  return 0
}
