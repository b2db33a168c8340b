#!/bin/bash
# scripts/provision.sh - one command to make a fresh Debian 12 machine ready for
# the nic-emu end-to-end tests. Non-interactive, idempotent, root.
#
# Usage: scripts/provision.sh [--check]
#   --check   also boot the guest once (`--nic none uname -a`, --accel auto),
#             which runs and caches the one-time KVM probe (<= ~15 s)
# Steps:
#   1. host packages, only those missing: debootstrap xz-utils iproute2
#      util-linux (flock, unshare) coreutils gzip gcc libc6-dev (apt-get update
#      only if an install needs it)
#   2. scripts/setup-qemu.sh     QEMU 11.x with vfio-user-pci (~26 s first time)
#   3. scripts/build-guest.sh    guest kernel + initramfs     (~7 s first time)
#   4. scripts/build-overlays.sh initramfs overlays for the driver tests: uio/vfio
#                                modules + uio_intx, DPDK testpmd (~20 s first time)
#   5. prints where everything is
# Cached runs take a few seconds.
#
# Env: NIC_EMU_CACHE (default /var/cache/nic-emu) and the NIC_EMU_* variables
#      of setup-qemu.sh / build-guest.sh.
# Exit codes: 0 ready, 1 a step failed (its log tail is printed).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
CHECK=0
case ${1:-} in --check) CHECK=1;; "") ;; *) die "usage: provision.sh [--check]";; esac
T0=$(date +%s.%N)
export DEBIAN_FRONTEND=noninteractive
mkdir -p "$NE_CACHE/logs"

missing=()
for p in debootstrap xz-utils iproute2 util-linux coreutils gzip gcc libc6-dev; do
  dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  if ! apt-get install -y -q "${missing[@]}" >"$NE_CACHE/logs/host-apt.log" 2>&1; then
    apt-get update -q >>"$NE_CACHE/logs/host-apt.log" 2>&1 &&
      apt-get install -y -q "${missing[@]}" >>"$NE_CACHE/logs/host-apt.log" 2>&1 ||
      { tail -n 20 "$NE_CACHE/logs/host-apt.log" >&2; die "host package install failed"; }
  fi
fi

"$NE_SCRIPTS/setup-qemu.sh"
"$NE_SCRIPTS/build-guest.sh"
"$NE_SCRIPTS/build-overlays.sh"
if [ "$CHECK" = 1 ]; then
  "$NE_SCRIPTS/boot-guest.sh" --nic none --timeout 120 'uname -a'
fi

QV=$("$NE_QEMU" --version | head -n1)
cat <<EOF
nic-emu rig ready ($(elapsed "$T0")s)
  cache        $NE_CACHE ($(du -sh "$NE_CACHE" 2>/dev/null | cut -f1))
  qemu         $NE_QEMU  [$QV]
  kernel       $NE_GUEST/vmlinux (PVH), $NE_GUEST/vmlinuz  [$(cat "$NE_GUEST/kernel-version")]
  initramfs    $NE_GUEST/initramfs.cpio.gz
  guest tree   $NE_GROOT  (host use: $NE_GROOT/bin/busybox ping|nc ..., iperf3 via giperf3 in lib.sh)
  overlays     $NE_CACHE/overlays/{drivers,dpdk}.cpio.gz  (boot-guest.sh --overlay NAME)
  kvm probe    $(sed -n 2p "$NE_CACHE/kvm-probe" 2>/dev/null || echo 'not run yet (first --accel auto boot runs it)')
  boot         $NE_SCRIPTS/boot-guest.sh --nic none|vfio-user --socket S|qemu-e1000|virtio|dgram-e1000 'cmd'
EOF
