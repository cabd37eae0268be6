# frozen_string_literal: true
#
# The machines of crud-master and what each one's provisioners receive, from .env: used by the
# Vagrantfile and by the host test (test/hosts/run.sh runs this file), so that both give each host
# the same variables. Plain Ruby, no gem.
#
#   ruby scripts/lib/provision_env.rb machines            the machines, one a line:
#                                                         name ip role node memory cpus
#   ruby scripts/lib/provision_env.rb env MACHINE         KEY=VALUE lines MACHINE's provisioners get
#   ruby scripts/lib/provision_env.rb names MACHINE       only the names (no value)
#
# Each VM gets only what its role needs (README, "Security"): the addresses and node counts (no
# secret), and the variables of the services it runs, as scripts/lib/services.sh
# (cm_service_vars) hands them on, plus what its provisioning itself needs: the database owner's
# password only where the migrations run (node 1 of its role), RabbitMQ's gateway user on
# billing-vm (which creates the users of the cluster), the Erlang cookie on the billing hosts of a
# cluster. CM_NODE says which host of its role a VM is; CM_PROVISION_KEYS lists the names passed,
# in .env's order (scripts/lib/hosts.sh, cm_load_host_env).
module CrudMaster
  # Variables the shell may set over .env when running vagrant (addresses, node counts, boxes),
  # e.g. BILLING_NODES=3 INVENTORY_NODES=2 vagrant up; nothing else of the user's shell leaks in.
  OVERRIDABLE = %w[GATEWAY_VM_IP INVENTORY_VM_IP BILLING_VM_IP INVENTORY_VM_2_IP BILLING_VM_2_IP
                   BILLING_VM_3_IP INVENTORY_NODES BILLING_NODES VM_BOX VM_BOX_LIBVIRT].freeze

  # .env: KEY=VALUE lines; blank lines and '#' comments skipped; split on the first '='; an
  # optional `export `, surrounding whitespace and matching quotes removed; an unquoted value ends
  # at an inline ' #' comment. The same rules as the services' own loader and scripts/lib/common.sh.
  def self.read_dotenv(path)
    values = {}
    File.readlines(path, chomp: true).each_with_index do |raw, index|
      line = raw.strip
      next if line.empty? || line.start_with?("#")
      line = line.sub(/\Aexport\s+/, "")
      key, value = line.split("=", 2)
      if value.nil? || key.strip !~ /\A[A-Za-z_][A-Za-z0-9_]*\z/
        warn "#{path}:#{index + 1}: ignored (not KEY=VALUE)"
        next
      end
      values[key.strip] = unquote(value.strip)
    end
    values
  end

  def self.unquote(value)
    if value.length >= 2 && ((value.start_with?('"') && value.end_with?('"')) ||
                             (value.start_with?("'") && value.end_with?("'")))
      value[1..-2]
    else
      value.sub(/\s*#.*\z/, "")
    end
  end

  # .env with the shell's OVERRIDABLE variables over it.
  def self.load(path, shell = ENV)
    values = read_dotenv(path)
    OVERRIDABLE.each { |name| values[name] = shell[name] if shell[name] && !shell[name].empty? }
    values
  end

  def self.fetch!(env, name)
    value = env[name].to_s
    raise ArgumentError, "#{name} is not set in .env" if value.empty?
    value
  end

  # The machines, in the order Vagrant provisions them (VirtualBox: one after the other): each
  # role's node 1 before its other nodes (they use its database, join its RabbitMQ), the gateway
  # last (its health check then sees the others up). npm ci and tsc run on every VM: 1 GiB at least.
  def self.machines(env)
    inventory = Integer(env.fetch("INVENTORY_NODES", "1"))
    billing = Integer(env.fetch("BILLING_NODES", "1"))
    raise ArgumentError, "INVENTORY_NODES=#{inventory}: 1 or 2" unless [1, 2].include?(inventory)
    raise ArgumentError, "BILLING_NODES=#{billing}: 1 or 3" unless [1, 3].include?(billing)
    list = []
    (1..inventory).each { |k| list << node(env, "inventory", k, k == 1 ? 1536 : 1024, 2) }
    (1..billing).each { |k| list << node(env, "billing", k, k == 1 ? 2048 : 1536, 2) }
    list << node(env, "gateway", 1, 1024, 1)
  end

  def self.node(env, role, k, memory, cpus)
    name = k == 1 ? "#{role}-vm" : "#{role}-vm-#{k}"
    ip_var = k == 1 ? "#{role.upcase}_VM_IP" : "#{role.upcase}_VM_#{k}_IP"
    { name: name, ip: fetch!(env, ip_var), role: role, node: k, memory: memory, cpus: cpus }
  end

  GATEWAY_KEYS = %w[INVENTORY_HOST INVENTORY_PORT RABBITMQ_HOST RABBITMQ_PORT RABBITMQ_VHOST
                    RABBITMQ_QUEUE RABBITMQ_GATEWAY_USER RABBITMQ_GATEWAY_PASSWORD].freeze
  BILLING_MQ_KEYS = %w[RABBITMQ_HOST RABBITMQ_PORT RABBITMQ_VHOST RABBITMQ_QUEUE RABBITMQ_QUEUE_TYPE
                       RABBITMQ_DELIVERY_LIMIT RABBITMQ_BILLING_USER RABBITMQ_BILLING_PASSWORD].freeze

  # Whether KEY reaches the provisioners of MACHINE (see the head of this file).
  def self.role_key?(key, machine, env)
    return true if key =~ /\A(NODE_ENV|LOG_LEVEL|[A-Z]+_VM_IP|[A-Z]+_VM_[0-9]+_IP|[A-Z]+_NODES)\z/
    first = machine[:node] == 1
    case machine[:role]
    when "gateway" then key.start_with?("GATEWAY_") || GATEWAY_KEYS.include?(key)
    when "inventory" then key.start_with?("INVENTORY_") && (first || !key.start_with?("INVENTORY_DB_OWNER"))
    when "billing"
      (key.start_with?("BILLING_") && (first || !key.start_with?("BILLING_DB_OWNER"))) ||
        BILLING_MQ_KEYS.include?(key) ||
        (first && %w[RABBITMQ_GATEWAY_USER RABBITMQ_GATEWAY_PASSWORD].include?(key)) ||
        (key == "RABBITMQ_ERLANG_COOKIE" && Integer(env.fetch("BILLING_NODES", "1")) > 1)
    else false
    end
  end

  # The environment of MACHINE's two provisioners (provision-common.sh, provision-<role>.sh).
  def self.provision_env(env, machine)
    picked = env.select { |key, _| role_key?(key, machine, env) }
    picked.merge("CM_NODE" => machine[:node].to_s, "CM_PROVISION_KEYS" => picked.keys.join(" "))
  end

  def self.machine!(env, name)
    machines(env).find { |m| m[:name] == name } or raise ArgumentError, "no machine #{name}"
  end

  def self.main(argv)
    env = load(File.expand_path("../../.env", __dir__))
    case argv[0]
    when "machines"
      machines(env).each { |m| puts m.values_at(:name, :ip, :role, :node, :memory, :cpus).join(" ") }
    when "env"
      provision_env(env, machine!(env, argv[1])).each { |k, v| puts "#{k}=#{v}" }
    when "names"
      puts provision_env(env, machine!(env, argv[1])).keys
    else
      warn "usage: ruby #{$PROGRAM_NAME} machines | env MACHINE | names MACHINE"
      exit 2
    end
  rescue ArgumentError => e
    warn "crud-master: #{e.message}"
    exit 1
  end
end

CrudMaster.main(ARGV) if $PROGRAM_NAME == __FILE__
