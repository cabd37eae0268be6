# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2119
# What each service gets on its VM: a system user of its own (cm-<service>), a file with only its
# own variables (/etc/crud-master/<service>.env, 0400, that user's), and for the services with a
# database a root-only file for their migrations (<service>-migrate.env), run by provisioning.
# Sourced by hosts.sh (it uses cm_write_file and cm_changed from there); functions only.

[[ -n ${_CM_LIB_SERVICES:-} ]] && return 0
_CM_LIB_SERVICES=1

# Where the services' env files live. Exported: ecosystem.config.js, evaluated by `pm2 start`,
# runs each app as cm-<service> with CM_ENV_FILE=$CM_ENV_DIR/<service>.env when it is set.
: "${CM_ENV_DIR:=/etc/crud-master}"
export CM_ENV_DIR

# cm_service_user SERVICE: the system user and group cm-SERVICE (no login shell, no password),
# its home /var/lib/cm-SERVICE (0750; PM2 sets HOME to it). Idempotent.
cm_service_user() {
  local user=cm-$1 home=/var/lib/cm-$1
  if ! getent passwd "$user" >/dev/null; then
    useradd --system --user-group --home-dir "$home" --no-create-home \
      --shell /usr/sbin/nologin --comment "crud-master $1 service" "$user" ||
      die "useradd $user failed"
    cm_changed "system user $user"
  fi
  if [[ ! -d $home || $(stat -c '%a %U:%G' "$home") != "750 $user:$user" ]]; then
    install -d -m 0750 -o "$user" -g "$user" "$home"
    cm_changed "home $home of $user"
  fi
}

# cm_service_vars FILE: the names of the variables FILE holds, in .env's order (CM_ENV_KEYS), as
# the interface between the services and the hosts fixes them (README, "Security"). FILE is one
# of gateway, inventory, billing (a service's own file) or inventory-migrate, billing-migrate
# (the owner role of its database, and the app role's name to grant to). The VMs' own addresses
# (*_VM_IP, *_VM_<n>_IP), the node counts (*_NODES), RabbitMQ's Erlang cookie and the owner roles
# go to no service.
cm_service_vars() {
  local file=$1 key
  for key in "${CM_ENV_KEYS[@]}"; do
    case $file:$key in
      *:*_VM_IP | *:*_VM_[0-9]*_IP | *:*_NODES | *:RABBITMQ_ERLANG_COOKIE) continue ;;
      *:NODE_ENV | *:LOG_LEVEL) ;;
      gateway:GATEWAY_* | gateway:INVENTORY_HOST | gateway:INVENTORY_PORT) ;;
      gateway:RABBITMQ_GATEWAY_USER | gateway:RABBITMQ_GATEWAY_PASSWORD) ;;
      billing:RABBITMQ_BILLING_USER | billing:RABBITMQ_BILLING_PASSWORD) ;;
      gateway:RABBITMQ_HOST | gateway:RABBITMQ_PORT | gateway:RABBITMQ_VHOST | gateway:RABBITMQ_QUEUE) ;;
      billing:RABBITMQ_HOST | billing:RABBITMQ_PORT | billing:RABBITMQ_VHOST | billing:RABBITMQ_QUEUE) ;;
      billing:RABBITMQ_QUEUE_TYPE | billing:RABBITMQ_DELIVERY_LIMIT) ;;
      inventory:INVENTORY_DB_OWNER*) continue ;;
      inventory:INVENTORY_*) ;;
      billing:BILLING_DB_OWNER*) continue ;;
      billing:BILLING_*) ;;
      inventory-migrate:INVENTORY_DB_HOST | inventory-migrate:INVENTORY_DB_PORT | inventory-migrate:INVENTORY_DB_NAME) ;;
      inventory-migrate:INVENTORY_DB_OWNER | inventory-migrate:INVENTORY_DB_OWNER_PASSWORD | inventory-migrate:INVENTORY_DB_USER) ;;
      billing-migrate:BILLING_DB_HOST | billing-migrate:BILLING_DB_PORT | billing-migrate:BILLING_DB_NAME) ;;
      billing-migrate:BILLING_DB_OWNER | billing-migrate:BILLING_DB_OWNER_PASSWORD | billing-migrate:BILLING_DB_USER) ;;
      *) continue ;;
    esac
    printf '%s\n' "$key"
  done
}

# cm_render_service_env FILE: FILE's variables (cm_service_vars) with their values in this
# process's environment (.env, with what the provisioner passed winning), as a dotenv file.
cm_render_service_env() {
  local key
  printf '# crud-master: the variables of %s only, from .env (written by provisioning, rewritten on\n' "$1"
  printf '# every run: edit .env in the repository and provision again).\n'
  while IFS= read -r key; do
    [[ -v $key ]] || continue
    printf '%s=%s\n' "$key" "$(_cm_env_quote "${!key}")"
  done < <(cm_service_vars "$1")
}

# cm_service_env SERVICE: writes CM_ENV_DIR/SERVICE.env, mode 0400, owned by cm-SERVICE: the
# only configuration the service reads on its VM (ecosystem.config.js: CM_ENV_FILE). Returns 0
# when it changed the file.
cm_service_env() {
  install -d -m 0755 "$CM_ENV_DIR"
  cm_render_service_env "$1" | cm_write_file "$CM_ENV_DIR/$1.env" 0400 "cm-$1:cm-$1"
}

# cm_migrate SERVICE SERVICE_DIR: writes CM_ENV_DIR/SERVICE-migrate.env (0400, root's: the owner
# role's password) and runs `node srcs/SERVICE_DIR/dist/migrate.js` with it, as root in a clean
# environment, before PM2 (re)starts the app: the knex migrations as the owner role, then the
# app role's grants. migrate.js ends with "migrations: N applied"; N > 0 counts as a change.
cm_migrate() {
  local service=$1 dir=$2 file out last
  file=$CM_ENV_DIR/$service-migrate.env
  install -d -m 0755 "$CM_ENV_DIR"
  cm_render_service_env "$service-migrate" | cm_write_file "$file" 0400 root:root || true
  log_info "node srcs/$dir/dist/migrate.js (CM_ENV_FILE=$file)"
  out=$(cd "$CM_APP_DIR" && node_clean_env CM_ENV_FILE="$file" node "srcs/$dir/dist/migrate.js" 2>&1) || {
    printf '%s\n' "$out" | tail -n 30 >&2
    die "the migrations of $service failed (node srcs/$dir/dist/migrate.js)"
  }
  last=$(tail -n 1 <<<"$out")
  [[ $last =~ ^migrations:\ ([0-9]+)\ applied$ ]] ||
    die "migrate.js of $service: last line is '$last', expected 'migrations: N applied'"
  local applied=${BASH_REMATCH[1]}
  log_info "$service: $last"
  ((applied == 0)) || cm_changed "$service: $last"
}

# cm_local_url HOST PORT PATH: the URL this VM reaches a service on that listens on HOST
# (0.0.0.0 or empty: loopback).
cm_local_url() {
  local host=$1
  [[ -z $host || $host == 0.0.0.0 ]] && host=127.0.0.1
  printf 'http://%s:%s%s\n' "$host" "$2" "$3"
}
