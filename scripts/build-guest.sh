#!/bin/bash
# scripts/build-guest.sh - build the nic-emu test guest from Debian bookworm packages.
#
# Usage: scripts/build-guest.sh            (root; ~1 s when up to date)
#
# Output:
#   $NE_CACHE/guest/vmlinux            uncompressed kernel ELF; QEMU boots it via
#                                      its PVH note (~3.5 s faster under TCG)
#   $NE_CACHE/guest/vmlinuz            the same kernel as shipped (bzImage)
#   $NE_CACHE/guest/initramfs.cpio.gz  busybox-static, e1000 + virtio_net +
#                                      virtio_pci modules (with dependencies),
#                                      iperf3 and ethtool + their libraries,
#                                      /init = scripts/guest-init.sh
#   $NE_CACHE/guest/kernel-version
#   $NE_CACHE/guest-root/              the unpacked initramfs tree, kept so the
#                                      host can run the guest's static busybox
#                                      (ping, nc, ...) and iperf3 (through the
#                                      tree's ld.so); see gbusybox/giperf3 in lib.sh
#
# How: `apt-get download` (host's bookworm sources) into $NE_CACHE/debs, then
# `dpkg-deb -x`; from the kernel package only boot/ and the network/virtio
# module directories are extracted. Nothing is installed on the host; host
# tools used: apt-get, dpkg-deb, tar, xz, gzip, ldd, sha256sum.
# Rebuilt only when an input changes: the debs, this script, guest-init.sh, lib.sh,
# NIC_EMU_EXTRA_PKGS/NIC_EMU_EXTRA_BINS.
#
# Env:
#   NIC_EMU_CACHE       cache dir (default /var/cache/nic-emu)
#   NIC_EMU_FORCE=1     rebuild even if up to date
#   NIC_EMU_EXTRA_PKGS  more bookworm packages to unpack into the staging tree
#   NIC_EMU_EXTRA_BINS  binaries (paths in the staging tree, e.g. /sbin/ethtool)
#                       to copy into the guest together with their libraries
# Exit codes: 0 ok, 1 failure.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEBS=$NE_CACHE/debs
STAGE=$NE_CACHE/guest-stage
MODS="e1000 virtio_net virtio_pci"
T0=$(date +%s.%N)

for t in apt-get apt-cache dpkg-deb tar xz gzip ldd sha256sum; do
  have "$t" || die "missing host tool: $t (provision.sh installs it)"
done
mkdir -p "$NE_CACHE" "$NE_GUEST" "$DEBS"
exec 9>"$NE_CACHE/.build-guest.lock"; flock 9

# --- 1. packages ------------------------------------------------------------------
kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1; }
KPKG=$(kpkg)
[ -n "$KPKG" ] || { log "apt-get update"; apt-get update -q >/dev/null; KPKG=$(kpkg); }
[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64"
PKGS="$KPKG busybox-static iperf3 libiperf0 libsctp1 libssl3 ethtool libmnl0 libc6 ${NIC_EMU_EXTRA_PKGS:-}"

guest_fetch_debs "$DEBS" $PKGS || die "cannot fetch the guest packages"

# --- 2. up to date? -----------------------------------------------------------------
STAMP=$({ cat "$0" "$NE_SCRIPTS/guest-init.sh" "$NE_SCRIPTS/lib.sh"
          echo "extra: ${NIC_EMU_EXTRA_PKGS:-} / ${NIC_EMU_EXTRA_BINS:-}"
          for p in $PKGS; do basename "$(guest_deb "$DEBS" "$p")"; done; } | sha256sum | cut -c1-16)
if [ "${NIC_EMU_FORCE:-0}" != 1 ] && [ -f "$NE_GUEST/stamp" ] && [ -d "$NE_GROOT" ] &&
   [ "$(cat "$NE_GUEST/stamp")" = "$STAMP" ]; then
  log "up to date: $NE_GUEST ($(cat "$NE_GUEST/kernel-version"), $(elapsed "$T0")s)"
  exit 0
fi

# --- 3. unpack ----------------------------------------------------------------------
rm -rf "$STAGE"; mkdir -p "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
for p in $PKGS; do
  [ "$p" = "$KPKG" ] || dpkg-deb -x "$(guest_deb "$DEBS" "$p")" "$STAGE"
done
# kernel: only what the guest needs (the whole package unpacks to ~400 MB)
dpkg-deb --fsys-tarfile "$(guest_deb "$DEBS" "$KPKG")" | tar -x -C "$STAGE" --wildcards \
  './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/net/*' \
  './lib/modules/*/kernel/drivers/virtio/*' './lib/modules/*/kernel/net/core/*' \
  './lib/modules/*/modules.builtin*' './lib/modules/*/modules.order'
KV=$(ls "$STAGE/lib/modules")
log "kernel $KV"

# --- 4. kernel images -----------------------------------------------------------------
cp "$STAGE/boot/vmlinuz-$KV" "$NE_GUEST/vmlinuz.new"
# The bzImage payload is xz (with the x86 BCJ filter, which busybox unxz lacks):
# find its magic and decompress with the host's xz. xz complains about the
# trailing bytes after the stream; the output is complete all the same.
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$NE_GUEST/vmlinuz.new" | head -n1 | cut -d: -f1 || true)
rm -f "$NE_GUEST/vmlinux.new"
[ -n "$off" ] && tail -c "+$((off + 1))" "$NE_GUEST/vmlinuz.new" | xz -dc >"$NE_GUEST/vmlinux.new" 2>/dev/null || true
if [ "$(head -c4 "$NE_GUEST/vmlinux.new" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
  mv "$NE_GUEST/vmlinux.new" "$NE_GUEST/vmlinux"
else
  warn "no ELF vmlinux extracted; boot-guest.sh will use the slower bzImage"
  rm -f "$NE_GUEST/vmlinux.new" "$NE_GUEST/vmlinux"
fi
mv "$NE_GUEST/vmlinuz.new" "$NE_GUEST/vmlinuz"
echo "$KV" >"$NE_GUEST/kernel-version"

# --- 5. initramfs tree ----------------------------------------------------------------
R=$NE_GROOT.new
rm -rf "$R"; mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,ne,lib64,"lib/modules/$KV"}
cp "$STAGE/bin/busybox" "$R/bin/busybox"
MD=lib/modules/$KV
cp "$STAGE/$MD"/modules.builtin* "$STAGE/$MD/modules.order" "$R/$MD/" 2>/dev/null || true

guest_add_modules "$STAGE" "$R" "$KV" $MODS
"$R/bin/busybox" depmod -b "$R" "$KV"

LIBPATH=$STAGE/lib/x86_64-linux-gnu:$STAGE/usr/lib/x86_64-linux-gnu
add_binary() { # path inside the staging tree
  local b=$1 lib rel
  [ -e "$STAGE$b" ] || die "binary $b not in the staging tree"
  mkdir -p "$R$(dirname "$b")"; cp -L "$STAGE$b" "$R$b"
  # resolve with the host's ldd, but against the staging tree's libraries
  for lib in $(LD_LIBRARY_PATH=$LIBPATH ldd "$STAGE$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
    rel=${lib#"$STAGE"}
    [ -e "$STAGE$rel" ] || die "$b needs $lib, which is not from the staged packages"
    mkdir -p "$R$(dirname "$rel")"; cp -L "$STAGE$rel" "$R$rel"
  done
}
add_binary /usr/bin/iperf3
add_binary /sbin/ethtool
for b in ${NIC_EMU_EXTRA_BINS:-}; do add_binary "$b"; done
cp -L "$STAGE/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$R/lib64/ld-linux-x86-64.so.2"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
printf '127.0.0.1\tlocalhost\n' >"$R/etc/hosts"
cp "$NE_SCRIPTS/guest-init.sh" "$R/init"; chmod 755 "$R/init"

# --- 6. pack (the guest's own busybox cpio: the host needs no cpio) ---------------------
(cd "$R" && find . | LC_ALL=C sort | "$R/bin/busybox" cpio -o -H newc -R 0:0 2>/dev/null) |
  gzip -6 >"$NE_GUEST/initramfs.cpio.gz.new"
mv "$NE_GUEST/initramfs.cpio.gz.new" "$NE_GUEST/initramfs.cpio.gz"
rm -rf "$NE_GROOT"; mv "$R" "$NE_GROOT"
echo "$STAMP" >"$NE_GUEST/stamp"
log "built: kernel $KV, initramfs $(du -h "$NE_GUEST/initramfs.cpio.gz" | cut -f1)," \
    "modules: $(cd "$NE_GROOT/$MD" && find kernel -name '*.ko*' -printf '%f ' )($(elapsed "$T0")s)"
