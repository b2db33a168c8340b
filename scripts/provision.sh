#!/bin/bash
# scripts/provision.sh - one command to make a fresh Debian 12 machine ready for
# the nic-emu end-to-end tests. Non-interactive, idempotent, root.
#
# Usage: scripts/provision.sh [--check]
#   --check   also boot each guest once (`--nic none uname -a`; x86 with --accel
#             auto, which runs and caches the one-time KVM probe (<= ~15 s); arm64
#             and riscv64 under TCG, ~5 s and ~3 s)
# Three guests, Debian kernels with busybox and the kernel's own e1000 module:
#   x86_64   bookworm's linux-image-amd64; -machine pc or q35 on qemu-system-x86_64
#            (KVM when usable, else TCG)
#   aarch64  bookworm's linux-image-arm64; -machine virt on qemu-system-aarch64 under
#            TCG, -cpu cortex-a57, 1 vCPU, kernel booted directly (no firmware); the
#            NIC's INTx goes through the GIC. `boot-guest.sh --arch aarch64`;
#            tests/e2e_platforms/virt.rs
#   riscv64  trixie's linux-image-riscv64 (riscv64 is a Debian release architecture
#            from trixie on); -machine virt on qemu-system-riscv64 under TCG, 1 vCPU,
#            kernel booted with -kernel over QEMU's default firmware (OpenSBI); the
#            NIC's INTx goes through the PLIC. `boot-guest.sh --arch riscv64`;
#            tests/e2e_platforms/virt.rs
# Steps:
#   1. host packages, only those missing: debootstrap xz-utils iproute2
#      util-linux (flock, unshare) coreutils gzip gcc libc6-dev, and the tools the
#      tests call: tcpdump, valgrind (tests/program/c_api.rs), systemd (systemd-socket-activate),
#      curl (the README's metrics example, tests/program/readme.rs), ethtool (the VXLAN tests
#      and the README's VXLAN example turn a Linux vxlan device's checksum offload off)
#      and Python's prometheus_client (tests/e2e_faults/control.rs; pip for a python3 of
#      its own such as pyenv's, Debian's python3-prometheus-client for the system
#      one); apt-get update only if an install needs it
#   2. scripts/setup-qemu.sh     QEMU 11.x with vfio-user-pci, x86_64, aarch64 and
#                                riscv64 (~40 s first time)
#   3. scripts/build-guest.sh    x86 guest kernel + initramfs  (~8 s first time)
#   4. scripts/build-guest-arch.sh arm64, then riscv64: those guests' kernel +
#                                initramfs, each from a private apt configuration
#                                for its architecture; the host's dpkg is left
#                                alone (~10 s each first time)
#   5. scripts/build-overlays.sh initramfs overlays for the driver tests (x86): uio/vfio
#                                modules + uio_intx, DPDK testpmd (~20 s first time)
#   6. prints where everything is
# Cached runs take a few seconds.
#
# Env: NIC_EMU_CACHE (default /var/cache/nic-emu) and the NIC_EMU_* variables
#      of setup-qemu.sh / build-guest.sh / build-guest-arch.sh.
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
for p in debootstrap xz-utils iproute2 util-linux coreutils gzip gcc libc6-dev \
         tcpdump valgrind systemd python3 curl ethtool; do
  dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
done
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  # A python3 that is not Debian's (pyenv) takes pip; Debian's refuses pip (PEP 668).
  if [ "$(command -v python3 || true)" = /usr/bin/python3 ] \
      || ! python3 -m pip install -q prometheus_client >"$NE_CACHE/logs/host-pip.log" 2>&1; then
    missing+=(python3-prometheus-client)
  fi
fi
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
"$NE_SCRIPTS/build-guest-arch.sh" arm64
"$NE_SCRIPTS/build-guest-arch.sh" riscv64
"$NE_SCRIPTS/build-overlays.sh"
if [ "$CHECK" = 1 ]; then
  "$NE_SCRIPTS/boot-guest.sh" --nic none --timeout 120 'uname -a'
  "$NE_SCRIPTS/boot-guest.sh" --arch aarch64 --nic none --timeout 120 'uname -a'
  "$NE_SCRIPTS/boot-guest.sh" --arch riscv64 --nic none --timeout 120 'uname -a'
fi

QV=$("$NE_QEMU" --version | head -n1)
QVA=$("$NE_QEMU_AARCH64" --version 2>/dev/null | head -n1 || echo 'missing: see setup-qemu.sh warnings')
QVR=$("$NE_QEMU_RISCV64" --version 2>/dev/null | head -n1 || echo 'missing: see setup-qemu.sh warnings')
cat <<EOF
nic-emu rig ready ($(elapsed "$T0")s)
  cache        $NE_CACHE ($(du -sh "$NE_CACHE" 2>/dev/null | cut -f1))
  qemu         $NE_QEMU  [$QV]
  kernel       $NE_GUEST/vmlinux (PVH), $NE_GUEST/vmlinuz  [$(cat "$NE_GUEST/kernel-version")]
  initramfs    $NE_GUEST/initramfs.cpio.gz
  arm64 qemu   $NE_QEMU_AARCH64  [$QVA]
  arm64 guest  $NE_GUEST_ARM64/{vmlinuz,initramfs.cpio.gz}  [$(cat "$NE_GUEST_ARM64/kernel-version")]
  riscv64 qemu $NE_QEMU_RISCV64  [$QVR]
  riscv64 guest $NE_GUEST_RISCV64/{vmlinuz,initramfs.cpio.gz}  [$(cat "$NE_GUEST_RISCV64/kernel-version")]
  guest tree   $NE_GROOT  (host use: $NE_GROOT/bin/busybox ping|nc ..., iperf3 via giperf3 in lib.sh)
  overlays     $NE_CACHE/overlays/{drivers,dpdk}.cpio.gz  (boot-guest.sh --overlay NAME)
  kvm probe    $(sed -n 2p "$NE_CACHE/kvm-probe" 2>/dev/null || echo 'not run yet (first --accel auto boot runs it)')
  boot         $NE_SCRIPTS/boot-guest.sh [--arch aarch64|riscv64] --nic none|vfio-user --socket S|qemu-e1000|virtio|dgram-e1000 'cmd'
EOF
