#!/usr/bin/env bash
# Prints the path of a Debian 13 (trixie) root file system for the three-host test, building it
# first with debootstrap from Debian's archive when the cached one is missing or was made with
# another package list. The cache lives in CM_HOSTS_CACHE (default /var/cache/crud-master) and is
# kept between runs: a build takes a couple of minutes, a reuse nothing.
#
# What is in it: a minimal Debian 13 that boots systemd, like the base of a Vagrant box (systemd,
# dbus, iproute2, sudo, ca-certificates, curl, procps). Everything the provisioning scripts need
# beyond that they install themselves, as on a real VM.
set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=../../scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
CM_LOG_TAG=${CM_LOG_TAG:-hosts-rootfs}

CACHE=${CM_HOSTS_CACHE:-/var/cache/crud-master}
SUITE=trixie
MIRROR=${CM_HOSTS_MIRROR:-http://deb.debian.org/debian}
INCLUDE=systemd,systemd-sysv,dbus,libpam-systemd,iproute2,sudo,ca-certificates,curl,procps,less
DEST=$CACHE/rootfs-$SUITE
STAMP="suite=$SUITE include=$INCLUDE version=1"

require_root
if [[ -f $DEST/.crud-master-rootfs && $(cat "$DEST/.crud-master-rootfs") == "$STAMP" ]]; then
  log_info "cached root file system: $DEST"
  printf '%s\n' "$DEST"
  exit 0
fi

apt_install_missing debootstrap debian-archive-keyring
install -d -m 0755 "$CACHE"
tmp=$DEST.tmp.$$
trap 'rm -rf --one-file-system -- "$tmp"' EXIT
log_info "debootstrap $SUITE from $MIRROR into $tmp (a few minutes)"
if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$tmp" "$MIRROR" >"$tmp.log" 2>&1; then
  tail -n 30 "$tmp.log" >&2
  die "debootstrap failed (log: $tmp.log)"
fi
rm -f "$tmp.log"
# Each host gets its machine id at first boot (as a fresh VM does), and its own hostname and
# resolv.conf from the test.
: >"$tmp/etc/machine-id"
rm -f "$tmp/var/lib/dbus/machine-id"
chroot "$tmp" apt-get clean
printf '%s\n' "$STAMP" >"$tmp/.crud-master-rootfs"
rm -rf --one-file-system -- "$DEST"
mv "$tmp" "$DEST"
trap - EXIT
log_info "built $DEST ($(du -sh "$DEST" | cut -f1))"
printf '%s\n' "$DEST"
