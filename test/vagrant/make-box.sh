#!/usr/bin/env bash
# Builds a Debian 13 (trixie) Vagrant box for the libvirt provider from Debian's archive alone
# (debootstrap), for the real-Vagrant test (test/vagrant/run.sh), and prints its path. Cached in
# CM_VAGRANT_CACHE (default /var/cache/crud-master/vagrant): rebuilt only when missing.
#
# What makes it a Vagrant box: a user `vagrant` with passwordless sudo and Vagrant's insecure
# public key (Vagrant swaps it for a new key at the first `vagrant up`); sshd; an empty
# /etc/machine-id (each VM makes its own at first boot); the root file system found by UUID (the
# disk's device name differs between hypervisors); systemd-networkd with a catch-all DHCP network
# file named 99-* so that the files Vagrant writes for its private networks (50-vagrant-*) sort
# first and win; rsync for Vagrant's rsync synced folder.
# The box also trusts this machine's local CAs (/usr/local/share/ca-certificates), as the
# three-host test's hosts do: this machine's network inspects TLS.
set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=../../scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

CACHE=${CM_VAGRANT_CACHE:-/var/cache/crud-master/vagrant}
BOX=$CACHE/debian-trixie-libvirt.box
SIZE_GB=${CM_BOX_SIZE_GB:-12}
MIRROR=${CM_HOSTS_MIRROR:-http://deb.debian.org/debian}
INCLUDE=systemd-sysv,systemd-resolved,dbus,libpam-systemd,linux-image-amd64,grub-pc,initramfs-tools,openssh-server,sudo,rsync,ca-certificates,curl,iproute2,procps,less

require_root
if [[ -s $BOX ]]; then
  log_info "cached box: $BOX"
  printf '%s\n' "$BOX"
  exit 0
fi
apt_install_missing debootstrap debian-archive-keyring qemu-utils fdisk e2fsprogs vagrant
key=$(find /usr/share/rubygems-integration /usr/share/vagrant /opt/vagrant -path '*keys/vagrant.pub' 2>/dev/null | head -n 1 || true)
[[ -n $key ]] || die "Vagrant's insecure public key (keys/vagrant.pub) not found"

install -d -m 0755 "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
mnt=$work/mnt
loop=
cleanup() {
  local m
  for m in dev/pts dev proc sys run; do
    mountpoint -q "$mnt/$m" 2>/dev/null && umount -l "$mnt/$m"
  done
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  [[ -n $loop ]] && losetup -d "$loop" 2>/dev/null
  rm -rf --one-file-system -- "$work"
}
trap cleanup EXIT

log_info "disk image (${SIZE_GB} GiB, sparse): one bootable ext4 partition"
truncate -s "${SIZE_GB}G" "$work/disk.raw"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$work/disk.raw"
loop=$(losetup --find --show --partscan "$work/disk.raw")
part=${loop}p1
# (Some kernels do not scan a loop device's partitions by themselves: ask explicitly.)
[[ -b $part ]] || partx -a "$loop" 2>/dev/null || true
for _ in 1 2 3 4 5; do [[ -b $part ]] && break; sleep 1; done
[[ -b $part ]] || die "no partition device $part"
mkfs.ext4 -q -L root "$part"
uuid=$(blkid -s UUID -o value "$part")
mkdir -p "$mnt"
mount "$part" "$mnt"

log_info "debootstrap trixie (a few minutes)"
debootstrap --variant=minbase --include="$INCLUDE" trixie "$mnt" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

log_info "configuring: fstab by UUID, grub, networkd, vagrant user, sshd"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$mnt/etc/fstab"
printf 'vagrant-debian\n' >"$mnt/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvagrant-debian\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$mnt/etc/hosts"
printf 'deb %s trixie main\n' "$MIRROR" >"$mnt/etc/apt/sources.list"
: >"$mnt/etc/machine-id"
rm -f "$mnt/var/lib/dbus/machine-id"
# Catch-all DHCP for every Ethernet interface, sorting after Vagrant's 50-vagrant-*.network.
cat >"$mnt/etc/systemd/network/99-dhcp-catch-all.network" <<'EOF'
[Match]
Type=ether
Name=en* eth*

[Network]
DHCP=yes
EOF
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$mnt/usr/local/share/ca-certificates/"
  # npm's own TLS uses Node's built-in CA list unless told: point it at the system bundle.
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' >"$mnt/etc/npmrc"
fi
install -m 0644 "$key" "$work/vagrant.pub"
for m in dev dev/pts proc sys run; do
  mkdir -p "$mnt/$m"
  mount --bind "/$m" "$mnt/$m"
done
cat >"$mnt/tmp/setup.sh" <<EOF
set -e
export DEBIAN_FRONTEND=noninteractive
systemctl enable systemd-networkd systemd-resolved ssh
ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf.new && mv -f /etc/resolv.conf.new /etc/resolv.conf
update-ca-certificates >/dev/null
useradd -m -s /bin/bash -U vagrant
echo 'vagrant:vagrant' | chpasswd
printf 'vagrant ALL=(ALL) NOPASSWD: ALL\nDefaults:vagrant !requiretty\n' >/etc/sudoers.d/vagrant
chmod 0440 /etc/sudoers.d/vagrant
install -d -m 0700 -o vagrant -g vagrant /home/vagrant/.ssh
printf 'UseDNS no\n' >/etc/ssh/sshd_config.d/vagrant.conf
cat >/etc/default/grub <<'GRUB'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 net.ifnames=1"
GRUB_TERMINAL="console serial"
GRUB_DISABLE_OS_PROBER=true
GRUB
grub-install --target=i386-pc --modules="part_msdos ext2" $loop
update-grub
EOF
chroot "$mnt" /bin/bash /tmp/setup.sh >"$work/setup.log" 2>&1 || { tail -n 40 "$work/setup.log" >&2; die "box setup failed"; }
install -m 0600 -o 1000 -g 1000 "$work/vagrant.pub" "$mnt/home/vagrant/.ssh/authorized_keys"
chown 1000:1000 "$mnt/home/vagrant/.ssh/authorized_keys"
# grub-mkconfig names the root device as it sees it (the loop device) unless it finds it by UUID.
# (The check below also catches a grub.cfg that was never written: a box built while the loop
# partition device was stale stopped at GRUB's prompt.)
sed -i -E "s#root=/dev/loop[0-9]+p1#root=UUID=$uuid#g" "$mnt/boot/grub/grub.cfg"
grep -q "root=UUID=$uuid" "$mnt/boot/grub/grub.cfg" || die "grub.cfg does not name the root file system by UUID"
chroot "$mnt" apt-get clean
rm -f "$mnt/tmp/setup.sh" "$mnt/etc/ssh/ssh_host_"*
# sshd's host keys are made at first boot, not shared by every VM of the box.
mkdir -p "$mnt/etc/systemd/system/ssh.service.d"
# (The empty ExecStartPre= drops the unit's own `sshd -t`, which fails without keys, and puts it
# back after the key generation.)
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  >"$mnt/etc/systemd/system/ssh.service.d/host-keys.conf"
for m in run sys proc dev/pts dev; do umount -l "$mnt/$m"; done
umount "$mnt"
losetup -d "$loop"
loop=

log_info "qcow2 and box"
qemu-img convert -O qcow2 "$work/disk.raw" "$work/box.img"
rm -f "$work/disk.raw"
printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$SIZE_GB" >"$work/metadata.json"
cat >"$work/Vagrantfile" <<'EOF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
  end
end
EOF
tar -C "$work" -czf "$BOX.tmp" metadata.json Vagrantfile box.img
mv -f "$BOX.tmp" "$BOX"
log_info "built $BOX ($(du -h "$BOX" | cut -f1))"
printf '%s\n' "$BOX"
