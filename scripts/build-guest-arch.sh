#!/bin/bash
# scripts/build-guest-arch.sh - build a test guest of another architecture from Debian
# packages, for `boot-guest.sh --arch aarch64|riscv64` (QEMU's `virt` machine under TCG
# on the x86_64 host).
#
# Usage: scripts/build-guest-arch.sh arm64|riscv64
#        (root, after build-guest.sh; ~0.5 s when up to date)
#
# The two guests:
#   arm64    the host's Debian release (bookworm): linux-image-arm64, whose vmlinuz
#            is an uncompressed arm64 Image
#   riscv64  trixie, the first release with riscv64 as an official architecture:
#            linux-image-riscv64, whose vmlinux is an uncompressed RISC-V Image
#            (EFI stub included); its modules are .ko.xz, unpacked here so the
#            guest's busybox modprobe loads them as they are
# Both kernels have the PCIe host driver of the `virt` machine built in
# (PCI_HOST_GENERIC) and e1000 as a module; QEMU boots them with -kernel (arm64: no
# firmware; riscv64: QEMU's default -bios, OpenSBI, from the opensbi package).
#
# Output, with ARCH the Debian architecture name:
#   $NE_CACHE/guest-ARCH/vmlinuz            the kernel image, as QEMU's -kernel takes it
#   $NE_CACHE/guest-ARCH/initramfs.cpio.gz  busybox-static, e1000 + virtio_net +
#                                           virtio_pci modules (with dependencies),
#                                           /init = scripts/guest-init.sh
#   $NE_CACHE/guest-ARCH/kernel-version
#   $NE_CACHE/guest-ARCH/stamp
# The guest has busybox only (ping, nc, wget, md5sum, ...): no iperf3.
#
# How: the packages (the kernel family's linux-image-<abi>-ARCH, resolved from
# linux-image-ARCH, and busybox-static) come through a private apt configuration in
# $NE_CACHE/apt-ARCH (APT_CONFIG: its own sources for ARCH only, lists, status and
# cache), so the host's dpkg and apt setup stay as they are: no `dpkg
# --add-architecture`. Its sources are the host's Debian mirror (release, -updates,
# and -security when the host has a security source); its lists are refreshed when
# older than a week, or when a download fails. `apt-get download` puts the debs in
# $NE_CACHE/debs-ARCH; `dpkg-deb -x` unpacks them. Modules are resolved from each
# .ko's depends= and modules.dep is written by the x86 guest's static busybox (depmod,
# cpio), run on the host: build-guest.sh first.
# Rebuilt only when an input changes: the debs, this script, guest-init.sh, lib.sh.
#
# Env:
#   NIC_EMU_CACHE          cache dir (default /var/cache/nic-emu)
#   NIC_EMU_FORCE=1        rebuild even if up to date (and refresh the apt lists)
#   NIC_EMU_MIRROR         Debian mirror (default: the host's, else deb.debian.org)
#   NIC_EMU_ARM64_SUITE    arm64 guest's Debian release (default: the host's
#                          VERSION_CODENAME)
#   NIC_EMU_RISCV64_SUITE  riscv64 guest's Debian release (default trixie)
# Exit codes: 0 ok, 1 failure, 2 usage. Log: $NE_CACHE/logs/apt-ARCH.log (apt-get update).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARCH=${1:-}
HOST_SUITE=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
case $ARCH in
  arm64|aarch64) ARCH=arm64 SUITE=${NIC_EMU_ARM64_SUITE:-${HOST_SUITE:-bookworm}};;
  riscv64) SUITE=${NIC_EMU_RISCV64_SUITE:-trixie};;
  *) DIE_RC=2 die "usage: build-guest-arch.sh arm64|riscv64";;
esac
A=$NE_CACHE/apt-$ARCH
DEBS=$NE_CACHE/debs-$ARCH
OUT=$NE_CACHE/guest-$ARCH
STAGE=$NE_CACHE/guest-$ARCH-stage
MODS="e1000 virtio_net virtio_pci"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
T0=$(date +%s.%N)

for t in apt-get apt-cache dpkg-deb tar gzip xz sha256sum; do
  have "$t" || die "missing host tool: $t (provision.sh installs it)"
done
[ -x "$NE_GROOT/bin/busybox" ] || die "no $NE_GROOT/bin/busybox: run scripts/build-guest.sh first"
[ -f "$KEYRING" ] || die "no $KEYRING (package debian-archive-keyring)"
mkdir -p "$NE_CACHE" "$OUT" "$DEBS"
exec 9>"$NE_CACHE/.build-guest-$ARCH.lock"; flock 9

# --- 1. a private apt configuration for ARCH -----------------------------------------
MIRROR=${NIC_EMU_MIRROR:-$(host_mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=$(host_mirror debian-security)
mkdir -p "$A/etc/apt.conf.d" "$A/etc/preferences.d" "$A/etc/sources.list.d" \
  "$A/lists/partial" "$A/cache/archives/partial"
[ -f "$A/status" ] || : >"$A/status"
opts="[arch=$ARCH signed-by=$KEYRING]"
{ echo "deb $opts $MIRROR $SUITE main"
  echo "deb $opts $MIRROR $SUITE-updates main"
  [ -z "$SECURITY" ] || echo "deb $opts $SECURITY $SUITE-security main"; } >"$A/etc/sources.list.new"
# apt reads $APT_CONFIG before anything else: every path below is the private one, and
# no apt.conf.d of the host's is read (Dir::Etc::Parts is ours, and empty).
cat >"$A/apt.conf.new" <<EOF
Dir::Etc "$A/etc";
Dir::Etc::Parts "$A/etc/apt.conf.d";
Dir::State "$A";
Dir::State::Lists "$A/lists";
Dir::State::status "$A/status";
Dir::Cache "$A/cache";
APT::Architecture "$ARCH";
APT::Architectures { "$ARCH"; };
Acquire::Languages "none";
Acquire::GzipIndexes "true";
EOF
changed=0
for f in etc/sources.list apt.conf; do
  if cmp -s "$A/$f.new" "$A/$f"; then rm "$A/$f.new"; else mv "$A/$f.new" "$A/$f"; changed=1; fi
done
export APT_CONFIG=$A/apt.conf
apt_update() {
  log "apt-get update ($ARCH lists, $SUITE)"
  apt-get -q update >"$NE_CACHE/logs/apt-$ARCH.log" 2>&1 ||
    { tail -n 20 "$NE_CACHE/logs/apt-$ARCH.log" >&2; die "apt-get update for $ARCH failed"; }
  touch "$A/updated"
}
mkdir -p "$NE_CACHE/logs"
if [ "$changed" = 1 ] || [ "${NIC_EMU_FORCE:-0}" = 1 ] || [ ! -f "$A/updated" ] ||
   [ -n "$(find "$A/updated" -mtime +7)" ]; then
  apt_update
fi

# --- 2. packages ------------------------------------------------------------------
kpkg() { apt-cache depends "linux-image-$ARCH" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1; }
KPKG=$(kpkg)
[ -n "$KPKG" ] || die "cannot resolve linux-image-$ARCH in $SUITE"
PKGS="$KPKG busybox-static"
if ! guest_fetch_debs "$DEBS" $PKGS; then
  apt_update   # a stale list names a version the mirror no longer has
  KPKG=$(kpkg); PKGS="$KPKG busybox-static"
  guest_fetch_debs "$DEBS" $PKGS || die "cannot fetch the $ARCH guest packages"
fi
keep=()
for p in $PKGS; do
  f=$(guest_deb "$DEBS" "$p")
  [[ $f == *_"$ARCH".deb ]] || die "$p: no $ARCH package in $DEBS"
  keep+=("$f")
done
for f in "$DEBS"/*.deb; do   # a former kernel ABI's package: ~60 MB each
  [[ " ${keep[*]} " == *" $f "* ]] || rm -f "$f"
done

# --- 3. up to date? -----------------------------------------------------------------
STAMP=$({ echo "$ARCH $SUITE"; cat "$0" "$NE_SCRIPTS/guest-init.sh" "$NE_SCRIPTS/lib.sh"
          for p in $PKGS; do basename "$(guest_deb "$DEBS" "$p")"; done; } | sha256sum | cut -c1-16)
if [ "${NIC_EMU_FORCE:-0}" != 1 ] && [ -f "$OUT/stamp" ] && [ -f "$OUT/initramfs.cpio.gz" ] &&
   [ "$(cat "$OUT/stamp")" = "$STAMP" ]; then
  log "up to date: $OUT ($(cat "$OUT/kernel-version"), $(elapsed "$T0")s)"
  exit 0
fi

# --- 4. unpack ----------------------------------------------------------------------
rm -rf "$STAGE"; mkdir -p "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
dpkg-deb -x "$(guest_deb "$DEBS" busybox-static)" "$STAGE"
# tar's `*` matches `/` too: ./*lib/modules is ./lib/modules (bookworm) or
# ./usr/lib/modules (trixie's merged /usr); the kernel is vmlinuz (arm64) or vmlinux
dpkg-deb --fsys-tarfile "$(guest_deb "$DEBS" "$KPKG")" | tar -x -C "$STAGE" --wildcards \
  './boot/vmlinu[xz]-*' './*lib/modules/*/kernel/drivers/net/*' \
  './*lib/modules/*/kernel/drivers/virtio/*' './*lib/modules/*/kernel/net/core/*' \
  './*lib/modules/*/modules.builtin*' './*lib/modules/*/modules.order'
if [ -d "$STAGE/usr/lib/modules" ]; then
  mkdir -p "$STAGE/lib"; mv "$STAGE/usr/lib/modules" "$STAGE/lib/modules"
fi
KV=$(ls "$STAGE/lib/modules")
KIMG=$(ls "$STAGE/boot/vmlinu"[xz]"-$KV" | head -n1)
BB=$STAGE/bin/busybox; [ -x "$BB" ] || BB=$STAGE/usr/bin/busybox
[ -x "$BB" ] || die "no busybox in busybox-static"
log "kernel $KV"

# --- 5. initramfs tree ----------------------------------------------------------------
R=$STAGE/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,ne,"lib/modules/$KV"}
cp "$BB" "$R/bin/busybox"
MD=lib/modules/$KV
cp "$STAGE/$MD"/modules.builtin* "$STAGE/$MD/modules.order" "$R/$MD/" 2>/dev/null || true
mods=()   # a driver built into this kernel (riscv64: virtio_pci) has no .ko
for m in $MODS; do
  grep -qE "/(${m}|${m//_/-})\.ko\$" "$STAGE/$MD/modules.builtin" 2>/dev/null || mods+=("$m")
done
guest_add_modules "$STAGE" "$R" "$KV" "${mods[@]}"
# compressed modules (trixie: .ko.xz): unpacked, for busybox modprobe
find "$R/$MD" -name '*.ko.xz' -exec xz -d {} +
[ -z "$(find "$R/$MD" -name '*.ko.*' -print -quit)" ] || die "a module compressed other than with xz"
gbusybox depmod -b "$R" "$KV"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
printf '127.0.0.1\tlocalhost\n' >"$R/etc/hosts"
cp "$NE_SCRIPTS/guest-init.sh" "$R/init"; chmod 755 "$R/init"

# --- 6. kernel and pack -----------------------------------------------------------------
cp "$KIMG" "$OUT/vmlinuz.new"
(cd "$R" && find . | LC_ALL=C sort | gbusybox cpio -o -H newc -R 0:0 2>/dev/null) |
  gzip -6 >"$OUT/initramfs.cpio.gz.new"
mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"
mv "$OUT/initramfs.cpio.gz.new" "$OUT/initramfs.cpio.gz"
echo "$KV" >"$OUT/kernel-version"
echo "$STAMP" >"$OUT/stamp"
log "built: kernel $KV, initramfs $(du -h "$OUT/initramfs.cpio.gz" | cut -f1)," \
    "modules: $(cd "$R/$MD" && find kernel -name '*.ko*' -printf '%f ')($(elapsed "$T0")s)"
