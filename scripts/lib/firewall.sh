# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2119
# The VMs' firewall: one nftables table, default-deny input. Sourced by hosts.sh (it uses
# cm_write_file, cm_apt_install and cm_changed from there); functions only.

[[ -n ${_CM_LIB_FIREWALL:-} ]] && return 0
_CM_LIB_FIREWALL=1

: "${CM_FIREWALL_FILE:=/etc/crud-master/firewall.nft}"

# cm_firewall_ruleset RULES: the whole file for `nft -f`: table "inet crud_master" whose input
# chain drops whatever is not accepted: loopback, replies to what this host sent, ICMP (path MTU,
# IPv6 neighbour discovery), DHCP replies (Vagrant's NAT interface gets its address by DHCP),
# SSH (`vagrant ssh`), then RULES (nft syntax, one accept rule a line: the role's own ports and
# who may reach them). The table is deleted and made again in one transaction, so a reload never
# leaves a moment without it.
cm_firewall_ruleset() {
  cat <<EOF
#!/usr/sbin/nft -f
# crud-master (written by provisioning; rewritten on every run): default-deny input. Loaded at
# boot by crud-master-firewall.service. Only this table is replaced; see README, "Security".
table inet crud_master
delete table inet crud_master
table inet crud_master {
  chain input {
    type filter hook input priority filter; policy drop;
    iif "lo" accept
    ct state established,related accept
    ct state invalid drop
    meta l4proto { icmp, ipv6-icmp } accept
    udp dport { 68, 546 } accept
    tcp dport 22 accept
    ${1//$'\n'/$'\n'    }
  }
}
EOF
}

# cm_firewall RULES: installs cm_firewall_ruleset RULES as CM_FIREWALL_FILE and a systemd unit
# that loads it at every boot, before the network comes up and after nftables.service (whose
# /etc/nftables.conf starts with `flush ruleset`). Applies it now when the file changed or the
# table is missing. Idempotent.
cm_firewall() {
  local rules=$1 apply=0
  cm_apt_install nftables
  if cm_firewall_ruleset "$rules" | cm_write_file "$CM_FIREWALL_FILE" 0644 root:root; then apply=1; fi
  cm_write_file /etc/systemd/system/crud-master-firewall.service 0644 root:root <<EOF || true
[Unit]
Description=crud-master firewall (nftables table inet crud_master, default-deny input)
Documentation=file://$CM_FIREWALL_FILE
DefaultDependencies=no
Before=network-pre.target
Wants=network-pre.target
After=nftables.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f $CM_FIREWALL_FILE
ExecStop=/usr/sbin/nft delete table inet crud_master

[Install]
WantedBy=sysinit.target
EOF
  if has_systemd; then
    systemctl daemon-reload
    if ! systemctl is-enabled --quiet crud-master-firewall; then
      systemctl enable --quiet crud-master-firewall
      cm_changed "enabled crud-master-firewall.service"
    fi
  fi
  if ((apply)) || ! nft list table inet crud_master >/dev/null 2>&1; then
    nft -f "$CM_FIREWALL_FILE" || die "nft -f $CM_FIREWALL_FILE failed"
    if has_systemd; then systemctl start crud-master-firewall 2>/dev/null || true; fi
    cm_changed "loaded firewall table inet crud_master"
  fi
}
