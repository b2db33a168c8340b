#!/bin/bash
# scripts/build-overlays.sh - prebuilt initramfs overlays for the third-party driver
# tests (tests/e2e_drivers.rs). boot-guest.sh --overlay NAME appends one after the
# guest's initramfs, so the normal initramfs every other test boots stays as it is.
#
# Usage: scripts/build-overlays.sh   (root, after build-guest.sh; ~0.3 s when up to date)
#
# Output, in $NE_CACHE/overlays/:
#   drivers.cpio.gz  kernel modules uio, uio_pci_generic, vfio, vfio-pci,
#                    vfio_iommu_type1 and their dependencies (vfio-pci-core,
#                    vfio_virqfd, irqbypass), with a modules.dep that covers the base
#                    initramfs' modules and these (it replaces the base one when the
#                    kernel unpacks the overlay); /usr/bin/uio_intx, the project's own
#                    INTx test driver (tests/guest-tools/uio_intx.c, static, host gcc);
#                    /usr/bin/e1000_mistakes, the driver that makes one mistake on
#                    request (tests/guest-tools/e1000_mistakes.c, tests/e2e_workbench.rs)
#   dpdk.cpio.gz     dpdk-testpmd (Debian bookworm's DPDK 22.11: the binary is in
#                    package dpdk-dev), the plugins librte_net_e1000,
#                    librte_mempool_ring and librte_bus_pci, libgcc_s, every shared library
#                    they need (resolved with ldd against the staging tree, as
#                    build-guest.sh does; libraries the base initramfs already has
#                    are left out), and /var/run -> /run for EAL's runtime dir.
#                    Plugins sit flat in /usr/lib/x86_64-linux-gnu (load them with
#                    -d /usr/lib/x86_64-linux-gnu/librte_net_e1000.so.23 ...); EAL's
#                    default plugin directory does not exist in the guest, so
#                    nothing else is auto-loaded.
#   NAME.base        $NE_GUEST/stamp of the initramfs NAME was built for:
#                    boot-guest.sh refuses an overlay built for another one
#   NAME.stamp       hash of the inputs; NAME is rebuilt only when it changes
#                    (this script, the two drivers' sources, the debs, the base initramfs, gcc)
#
# Packages come from the host's bookworm sources with `apt-get download` into
# $NE_CACHE/debs and are unpacked with dpkg-deb (nothing is installed on the host).
# Host tools: apt-get, dpkg-deb, tar, gzip, ldd, sha256sum, gcc + libc6-dev (static
# libc; provision.sh installs them).
#
# Env: NIC_EMU_CACHE, NIC_EMU_FORCE=1 (rebuild both).
# Exit codes: 0 ok, 1 failure.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEBS=$NE_CACHE/debs
OUT=$NE_CACHE/overlays
SRC_C=$NE_SCRIPTS/../tests/guest-tools/uio_intx.c
SRC_MISTAKES=$NE_SCRIPTS/../tests/guest-tools/e1000_mistakes.c
T0=$(date +%s.%N)
# Modules to add (dependencies follow from each .ko's depends=).
KMODS="uio uio_pci_generic vfio vfio_pci vfio_iommu_type1 vfio_virqfd"
# dpdk-testpmd's library closure in bookworm (DPDK 22.11, ABI 23), checked with ldd at
# build time: a missing library stops the build with its name.
DPDK_PKGS="dpdk-dev librte-net-e1000-23 librte-mempool-ring23 librte-bus-pci23
  librte-bitratestats23 librte-bpf23 librte-bus-auxiliary23 librte-bus-dpaa23
  librte-bus-vdev23 librte-cmdline23 librte-common-dpaax23 librte-common-iavf23
  librte-common-mlx5-23 librte-crypto-scheduler23 librte-cryptodev23 librte-eal23
  librte-ethdev23 librte-eventdev23 librte-gro23 librte-gso23 librte-hash23
  librte-ip-frag23 librte-kvargs23 librte-latencystats23 librte-mbuf23
  librte-mempool-dpaa23 librte-mempool23 librte-meter23 librte-metrics23
  librte-net-bnxt23 librte-net-bond23 librte-net-dpaa23 librte-net-i40e23
  librte-net-ice23 librte-net-ixgbe23 librte-net-mlx5-23 librte-net23 librte-pcapng23
  librte-pci23 librte-pdump23 librte-rcu23 librte-reorder23 librte-ring23
  librte-sched23 librte-security23 librte-telemetry23 librte-timer23
  libnuma1 libfdt1 libjansson4 libbsd0 libmd0 libelf1 zlib1g libpcap0.8 libdbus-1-3
  libsystemd0 libcap2 libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1
  libibverbs1 ibverbs-providers libnl-3-200 libnl-route-3-200 libgcc-s1 libc6"
# Files copied with their libraries. glibc dlopens libgcc_s for pthread_cancel (testpmd
# aborts at exit without it); ldd cannot see that.
DPDK_FILES="/usr/bin/dpdk-testpmd /usr/lib/x86_64-linux-gnu/librte_net_e1000.so.23
  /usr/lib/x86_64-linux-gnu/librte_mempool_ring.so.23
  /usr/lib/x86_64-linux-gnu/librte_bus_pci.so.23 /lib/x86_64-linux-gnu/libgcc_s.so.1"

for t in apt-get apt-cache dpkg-deb tar gzip ldd sha256sum gcc; do
  have "$t" || die "missing host tool: $t (provision.sh installs it)"
done
[ -f "$NE_GUEST/stamp" ] && [ -d "$NE_GROOT" ] && [ -f "$NE_GUEST/kernel-version" ] ||
  die "no guest: run scripts/build-guest.sh first"
[ -f "$SRC_C" ] && [ -f "$SRC_MISTAKES" ] || die "missing $SRC_C or $SRC_MISTAKES"
KV=$(cat "$NE_GUEST/kernel-version")
KDEB=$(ls "$DEBS/linux-image-${KV}_"*.deb 2>/dev/null | head -n1 || true)
[ -n "$KDEB" ] || die "kernel package for $KV not in $DEBS: run scripts/build-guest.sh"
BASE=$(cat "$NE_GUEST/stamp")
mkdir -p "$OUT" "$DEBS"
exec 9>"$NE_CACHE/.build-overlays.lock"; flock 9
WORK=$(mktemp -d "$NE_CACHE/.overlays.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

stamp_ok() { # name stamp
  [ "${NIC_EMU_FORCE:-0}" != 1 ] && [ -f "$OUT/$1.cpio.gz" ] &&
    [ "$(cat "$OUT/$1.stamp" 2>/dev/null)" = "$2" ] && [ "$(cat "$OUT/$1.base" 2>/dev/null)" = "$BASE" ]
}
pack() { # tree name stamp
  (cd "$1" && find . | LC_ALL=C sort | gbusybox cpio -o -H newc -R 0:0 2>/dev/null) |
    gzip -6 >"$OUT/$2.cpio.gz.new"
  mv "$OUT/$2.cpio.gz.new" "$OUT/$2.cpio.gz"
  echo "$3" >"$OUT/$2.stamp"
  echo "$BASE" >"$OUT/$2.base"
  log "built $2: $(du -h "$OUT/$2.cpio.gz" | cut -f1) ($(elapsed "$T0")s)"
}

# --- drivers: kernel modules + uio_intx ------------------------------------------------
ST=$( { cat "$0" "$SRC_C" "$SRC_MISTAKES"; basename "$KDEB"; echo "$BASE"; gcc --version | head -n1; } |
      sha256sum | cut -c1-16)
if stamp_ok drivers "$ST"; then
  log "up to date: drivers"
else
  K=$WORK/k M=$WORK/mods OV=$WORK/drivers MD=lib/modules/$KV
  mkdir -p "$K" "$M/lib/modules" "$OV/usr/bin"
  dpkg-deb --fsys-tarfile "$KDEB" | tar -x -C "$K" --wildcards \
    './lib/modules/*/kernel/drivers/uio/*' './lib/modules/*/kernel/drivers/vfio/*' \
    './lib/modules/*/kernel/virt/lib/*'
  cp -a "$NE_GROOT/$MD" "$M/lib/modules/"
  mod_deps() { tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | tr ',' ' '; }
  add_module() { # name
    local n=$1 f d
    f=$(find "$K/$MD/kernel" "$M/$MD/kernel" \( -name "$n.ko" -o -name "${n//_/-}.ko" \) | head -n1)
    [ -n "$f" ] || die "module $n not found (extend the tar patterns)"
    case $f in "$M"/*) return 0;; esac   # in the base initramfs already
    [ -e "$M${f#"$K"}" ] && return 0
    mkdir -p "$(dirname "$M${f#"$K"}")" "$(dirname "$OV${f#"$K"}")"
    cp "$f" "$M${f#"$K"}"; cp "$f" "$OV${f#"$K"}"
    for d in $(mod_deps "$f"); do add_module "$d"; done
  }
  for m in $KMODS; do add_module "$m"; done
  gbusybox depmod -b "$M" "$KV"
  cp "$M/$MD"/modules.* "$OV/$MD/"
  gcc -O2 -static -s -Wall -o "$OV/usr/bin/uio_intx" "$SRC_C"
  gcc -O2 -static -s -Wall -o "$OV/usr/bin/e1000_mistakes" "$SRC_MISTAKES"
  log "drivers: modules $(cd "$OV/$MD/kernel" && find . -name '*.ko' -printf '%f ')"
  pack "$OV" drivers "$ST"
fi

# --- dpdk: dpdk-testpmd and its libraries -------------------------------------------------
deb_of() { ls "$DEBS/${1}_"*.deb 2>/dev/null | head -n1 || true; }
declare -A CAND
while read -r p v; do CAND[$p]=$v; done < <(apt-cache policy $DPDK_PKGS |
  awk '/^[^ ]/ { sub(/:$/, ""); p = $1 } /^ *Candidate:/ { print p, $2 }')
fetch=()
for p in $DPDK_PKGS; do
  want=${CAND[$p]:-}
  [ -n "$want" ] && [ "$want" != "(none)" ] || die "no installable candidate for $p (apt-get update?)"
  f=$(deb_of "$p")
  if [ -z "$f" ] || [[ $(basename "$f") != "${p}_${want//:/%3a}_"* ]]; then
    rm -f "$DEBS/${p}_"*.deb; fetch+=("$p")
  fi
done
if [ ${#fetch[@]} -gt 0 ]; then
  log "apt-get download ${fetch[*]}"
  (cd "$DEBS" && apt-get -q -o APT::Sandbox::User=root download "${fetch[@]}" >/dev/null) ||
    die "apt-get download failed"
fi
ST=$( { cat "$0"; echo "$BASE"; for p in $DPDK_PKGS; do basename "$(deb_of "$p")"; done; } |
      sha256sum | cut -c1-16)
if stamp_ok dpdk "$ST"; then
  log "up to date: dpdk ($(elapsed "$T0")s)"
  exit 0
fi
S=$WORK/stage OV=$WORK/dpdk
mkdir -p "$S" "$OV/var"
for p in $DPDK_PKGS; do dpkg-deb -x "$(deb_of "$p")" "$S"; done
LIBPATH=$S/lib/x86_64-linux-gnu:$S/usr/lib/x86_64-linux-gnu
add_file() { # path inside the staging tree: copy it (dereferenced) unless the base has it
  local rel=$1
  [ -e "$S$rel" ] || die "$rel not in the staged packages"
  [ -e "$OV$rel" ] && return 0
  if [ -e "$NE_GROOT$rel" ] && cmp -s "$S$rel" "$NE_GROOT$rel"; then return 0; fi
  mkdir -p "$(dirname "$OV$rel")"; cp -L "$S$rel" "$OV$rel"
}
for b in $DPDK_FILES; do
  add_file "$b"
  missing=$(LD_LIBRARY_PATH=$LIBPATH ldd "$S$b" | awk '/not found/ { print $1 }')
  [ -z "$missing" ] || die "$b needs $(echo $missing): add its package to DPDK_PKGS"
  for lib in $(LD_LIBRARY_PATH=$LIBPATH ldd "$S$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
    [[ $lib == "$S"/* ]] || die "$b needs $lib, which is not from the staged packages: add its package to DPDK_PKGS"
    add_file "${lib#"$S"}"
  done
done
ln -s ../run "$OV/var/run"
log "dpdk: $(find "$OV" -type f | wc -l) files, $(du -sh "$OV" | cut -f1) unpacked"
pack "$OV" dpdk "$ST"
