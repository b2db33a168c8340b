#!/bin/bash
# scripts/boot-guest.sh - boot the nic-emu test guest with one NIC and run one command in it.
#
# Usage: scripts/boot-guest.sh [options] [--] 'shell command run in the guest'
#   --nic KIND           none (default) | vfio-user | qemu-e1000 | virtio | dgram-e1000
#       vfio-user    -device vfio-user-pci on --socket (our emulator); guest RAM
#                    is a shared memfd so the server gets DMA_MAP fds
#       qemu-e1000   QEMU's own e1000 on a fresh tap in --netns (the reference)
#       virtio       virtio-net-pci (vhost=off) on a fresh tap in --netns
#       dgram-e1000  QEMU's own e1000 on a UDP "wire" (-netdev dgram): two
#                    guests (or a guest and nic-emu) with mirrored
#                    --dgram-local/--dgram-remote share an Ethernet segment
#   --socket PATH        vfio-user server socket (required for vfio-user)
#   --netns NAME         netns for taps, and QEMU runs in it (default nicemu;
#                        created if missing, never deleted). Only tap NICs
#                        use it unless given explicitly.
#   --tap NAME           tap name (default ne-tap0); recreated per run, deleted after
#   --host-ip CIDR       tap's host-side address (default 10.233.0.1/24)
#   --guest-ip CIDR      guest eth0 address (default 10.233.0.2/24)
#   --mac MAC            guest MAC; default 52:54:<guest IPv4 in hex>, so distinct
#                        IPs give distinct MACs. QEMU NICs: the device's MAC.
#                        vfio-user: only if given, set inside the guest
#                        (ip link set address: exercises RAL/RAH writes).
#   --dgram-local H:P    dgram-e1000 local UDP endpoint (default 127.0.0.1:47001)
#   --dgram-remote H:P   dgram-e1000 peer UDP endpoint (default 127.0.0.1:47002)
#   --accel auto|tcg|kvm auto (default): KVM only if a cached probe booted a
#                        guest with it, else TCG (see "KVM probe" below)
#   --mem MB             guest RAM (default 256)    --smp N   vCPUs (default 1)
#   --timeout S          kill QEMU after S seconds (default 180)
#   --log FILE           also write the serial console to FILE
#   --extra-dir DIR      copy DIR's contents into the guest's / (e.g. test tools)
#   --carrier-wait S     guest waits up to S s for carrier (default 5)
#   --no-shared-mem      vfio-user: plain RAM (the server then gets no DMA fds)
#   --qemu-arg ARG       extra QEMU argument (repeatable)
#   --machine pc|q35|virt  machine type (default pc; virt for aarch64 and riscv64). On q35
#                        and virt the NIC is pinned to slot 2 too (0000:00:02.0), as on pc.
#   --arch x86_64|aarch64|riscv64  the guest's architecture (default x86_64); the other
#                        two boot the guests of build-guest-arch.sh under TCG, 1 vCPU
#                        unless --smp says otherwise:
#       aarch64  $NE_CACHE/guest-arm64 on qemu-system-aarch64 -machine virt (--cpu
#                default cortex-a57, console ttyAMA0; the NIC's INTx goes through the
#                GIC)
#       riscv64  $NE_CACHE/guest-riscv64 on qemu-system-riscv64 -machine virt (QEMU's
#                default CPU and -bios, OpenSBI; console ttyS0; the NIC's INTx goes
#                through the PLIC: INTA of slot S is source 32 + S mod 4, 34 at slot 2)
#                        --viommu, --allow-reboot and the x86 overlays are x86 only
#   --viommu             a virtual IOMMU: q35 with -device intel-iommu,caching-mode=on
#                        placed before the NIC, and intel_iommu=on for the guest
#   --cpu MODEL          QEMU -cpu (default: QEMU's own under TCG, host under KVM,
#                        cortex-a57 for aarch64, QEMU's for riscv64); DPDK needs `max`
#                        under TCG
#   --append ARGS        more kernel command line (e.g. hugepages=64)
#   --mods LIST          modules guest-init loads (comma-separated; default: the NIC's
#                        driver; `none` leaves the NIC unbound, for userspace drivers)
#   --overlay NAME|FILE  append a prebuilt cpio to the initramfs (repeatable): NAME
#                        is $NE_CACHE/overlays/NAME.cpio.gz from build-overlays.sh
#                        (drivers: uio/vfio modules + uio_intx; dpdk: dpdk-testpmd)
#   --allow-reboot       the guest may reboot inside the same QEMU (no -no-reboot);
#                        guest-init then numbers the boots in a CMOS byte that
#                        survives the reset: $NE_BOOT is 0, 1, ... and the console
#                        shows "RIG-BOOT <n>" (a command reboots with `reboot -f`)
#   --quiet              do not copy the console to stdout
#   --show-qemu          log QEMU's arguments, one per line ("qemu arg: ..."), on stderr
#                        before starting it (as NIC_EMU_SHOW_QEMU=1)
# The serial console streams to stdout. Guest protocol (guest-init.sh):
#   "RIG-READY <uptime>" once the network is configured, "RIG-EXIT=<rc>" at the end.
# The guest has busybox (ping, nc, ip, wget, ...), iperf3 and ethtool; e.g. print the
# e1000 driver's messages with: boot-guest.sh --nic vfio-user --socket S 'dmesg | grep e1000'
#
# Exit status: the guest command's status; 124 timeout (QEMU killed);
#   125 QEMU ended without RIG-EXIT (QEMU error, kernel panic); 2 usage error.
# A summary line "[boot-guest] nic=... rc=... ready=...s wall=...s" goes to stderr.
#
# The machine is `-machine pc -nodefaults -nic none` (or q35, or virt for aarch64 and
# riscv64): the
# NIC (any kind) is the only device added, at PCI 0000:00:02.0. With vfio-user, QEMU 11 warns "Could not
# enable error recovery for the device"; that is harmless.
#
# Several guests can run at once: each run has its own temp dir; give each its
# own --guest-ip (hence MAC), and --tap/--host-ip (tap NICs) or dgram ports.
#
# KVM probe (--accel auto): if /dev/kvm is usable, boot `--nic none true` once
# with KVM and a 12 s limit; the verdict is cached in $NE_CACHE/kvm-probe keyed
# by host kernel, kvm modules and guest kernel. On PVM hosts (kvm_pvm) a stock
# kernel cannot run, so auto settles on TCG.
#
# Env: NIC_EMU_CACHE (default /var/cache/nic-emu), NIC_EMU_QEMU (x86 QEMU binary),
#      NIC_EMU_QEMU_AARCH64 (arm64 QEMU binary), NIC_EMU_QEMU_RISCV64 (riscv64 QEMU
#      binary), NIC_EMU_KERNEL (default $NE_CACHE/guest/vmlinux, else vmlinuz; aarch64:
#      $NE_CACHE/guest-arm64/vmlinuz; riscv64: $NE_CACHE/guest-riscv64/vmlinuz),
#      NIC_EMU_ACCEL (default for --accel), NIC_EMU_KEEP_TAP=1 keeps the tap,
#      NIC_EMU_SHOW_QEMU=1 logs QEMU's arguments, one per line, before starting it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DIE_RC=2

NIC=none SOCK= NETNS= TAP=ne-tap0 HOSTIP=10.233.0.1/24 GUESTIP=10.233.0.2/24 MAC=
DGL=127.0.0.1:47001 DGR=127.0.0.1:47002 ACCEL=${NIC_EMU_ACCEL:-auto} MEM=256 SMP=1
TIMEOUT=180 LOG= EXTRA= CARRIER=5 SHARED=1 QUIET=0
MACHINE= VIOMMU=0 CPU= XAPPEND= REBOOT=0 MODS= ARCH=x86_64 SHOWQ=${NIC_EMU_SHOW_QEMU:-0}
QARGS=() OVERLAYS=()
while [ $# -gt 0 ]; do
  case $1 in
    --nic) NIC=$2; shift 2;;              --socket) SOCK=$2; shift 2;;
    --netns) NETNS=$2; shift 2;;          --tap) TAP=$2; shift 2;;
    --host-ip) HOSTIP=$2; shift 2;;       --guest-ip) GUESTIP=$2; shift 2;;
    --mac) MAC=$2; shift 2;;              --accel) ACCEL=$2; shift 2;;
    --dgram-local) DGL=$2; shift 2;;      --dgram-remote) DGR=$2; shift 2;;
    --mem) MEM=$2; shift 2;;              --smp) SMP=$2; shift 2;;
    --timeout) TIMEOUT=$2; shift 2;;      --log) LOG=$2; shift 2;;
    --extra-dir) EXTRA=$2; shift 2;;      --carrier-wait) CARRIER=$2; shift 2;;
    --no-shared-mem) SHARED=0; shift;;    --qemu-arg) QARGS+=("$2"); shift 2;;
    --machine) MACHINE=$2; shift 2;;     --viommu) VIOMMU=1; shift;;
    --arch) ARCH=$2; shift 2;;
    --cpu) CPU=$2; shift 2;;              --append) XAPPEND+=" $2"; shift 2;;
    --overlay) OVERLAYS+=("$2"); shift 2;;
    --allow-reboot) REBOOT=1; shift;;   --mods) MODS=$2; shift 2;;
    --quiet) QUIET=1; shift;;           --show-qemu) SHOWQ=1; shift;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    --) shift; break;;
    -*) die "unknown option $1 (see --help)";;
    *) break;;
  esac
done
CMD=${*:-true}

case $ARCH in
  x86_64)
    QEMU=$NE_QEMU GDIR=$NE_GUEST CONSOLE=ttyS0 BUILD=build-guest.sh
    KERNEL=${NIC_EMU_KERNEL:-$NE_GUEST/vmlinux}
    [ -f "$KERNEL" ] || KERNEL=$NE_GUEST/vmlinuz
    MACHINE=${MACHINE:-pc}
    case $MACHINE in pc|q35) ;; *) die "--machine must be pc or q35 for x86_64";; esac;;
  aarch64|arm64)
    ARCH=aarch64 QEMU=$NE_QEMU_AARCH64 GDIR=$NE_GUEST_ARM64 CONSOLE=ttyAMA0 BUILD="build-guest-arch.sh arm64"
    KERNEL=${NIC_EMU_KERNEL:-$NE_GUEST_ARM64/vmlinuz}
    CPU=${CPU:-cortex-a57};;
  riscv64)
    QEMU=$NE_QEMU_RISCV64 GDIR=$NE_GUEST_RISCV64 CONSOLE=ttyS0 BUILD="build-guest-arch.sh riscv64"
    KERNEL=${NIC_EMU_KERNEL:-$NE_GUEST_RISCV64/vmlinuz};;
  *) die "--arch must be x86_64, aarch64 or riscv64";;
esac
if [ "$ARCH" != x86_64 ]; then
  MACHINE=${MACHINE:-virt}
  [ "$MACHINE" = virt ] || die "--machine must be virt for $ARCH"
  [ "$VIOMMU" = 0 ] || die "--viommu is x86 only (intel-iommu)"
  [ "$REBOOT" = 0 ] || die "--allow-reboot is x86 only (boots are counted in CMOS)"
  case $ACCEL in auto|tcg) ACCEL=tcg;; *) die "$ARCH guests run under TCG only";; esac
fi
[ -f "$KERNEL" ] && [ -f "$GDIR/initramfs.cpio.gz" ] || die "no guest in $GDIR: run scripts/$BUILD"
[ -x "$QEMU" ] || die "no QEMU $QEMU: run scripts/setup-qemu.sh"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout wants seconds"
[[ $GUESTIP =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)/[0-9]+$ ]] || die "--guest-ip wants a.b.c.d/len"
DEFMAC=$(printf '52:54:%02x:%02x:%02x:%02x' "${BASH_REMATCH[@]:1:4}")
[ "$VIOMMU" = 1 ] && MACHINE=q35
OVFILES=()
for o in "${OVERLAYS[@]}"; do
  f=$o; [[ $o == */* ]] || f=$NE_CACHE/overlays/$o.cpio.gz
  [[ $o == */* ]] || [ "$ARCH" = x86_64 ] || die "--overlay $o: build-overlays.sh builds for the x86 guest only"
  [ -f "$f" ] || die "no overlay $f: run scripts/build-overlays.sh"
  # an overlay built against another initramfs would carry a stale modules.dep
  if [ -f "${f%.cpio.gz}.base" ] && [ "$(cat "${f%.cpio.gz}.base")" != "$(cat "$GDIR/stamp" 2>/dev/null)" ]; then
    die "overlay $f was built for another guest initramfs: run scripts/build-overlays.sh"
  fi
  OVFILES+=("$f")
done

# ---- accelerator ------------------------------------------------------------------
probe_kvm() { # prints kvm or tcg; at most one real probe per key, ever
  [ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo tcg; return; }
  local key f=$NE_CACHE/kvm-probe res rc=0
  key="$(uname -r)|$(cd /sys/module && ls -d kvm* 2>/dev/null | tr '\n' ,)|$(cat "$NE_GUEST/kernel-version" 2>/dev/null)"
  exec 8>"$NE_CACHE/.kvm-probe.lock"; flock 8
  if [ -f "$f" ] && [ "$(sed -n 1p "$f")" = "$key" ]; then sed -n 2p "$f"; exec 8>&-; return; fi
  log "probing KVM (once; cached in $f)"
  "$0" --accel kvm --nic none --timeout 12 --quiet 'true' >"$NE_CACHE/logs/kvm-probe.log" 2>&1 8>&- || rc=$?
  if [ "$rc" = 0 ]; then res=kvm; else res=tcg; fi
  printf '%s\n%s\nprobe rc=%s at %s\n' "$key" "$res" "$rc" "$(date -Is)" >"$f"
  exec 8>&-
  echo "$res"
}
mkdir -p "$NE_CACHE/logs" 2>/dev/null || true
case $ACCEL in
  auto) ACCEL=$(probe_kvm);;
  tcg|kvm) ;;
  *) die "--accel must be auto, tcg or kvm";;
esac
if [ "$ACCEL" = kvm ]; then ACC=(-accel kvm -cpu "${CPU:-host}"); else ACC=(-accel tcg ${CPU:+-cpu "$CPU"}); fi

# ---- work dir, cleanup --------------------------------------------------------------
WORK=$(mktemp -d /tmp/nic-emu-boot.XXXXXX)
QPID= TPID= DELTAP=0
cleanup() {
  [ -n "$QPID" ] && kill "$QPID" 2>/dev/null
  [ -n "$TPID" ] && kill "$TPID" 2>/dev/null
  if [ "$DELTAP" = 1 ] && [ "${NIC_EMU_KEEP_TAP:-0}" != 1 ]; then
    ip netns exec "$NETNS" ip link del "$TAP" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the command (and --extra-dir) as a second cpio after the initramfs -------------
mkdir -p "$WORK/ov/ne" "$WORK/ov/etc/udhcpc"
# udhcpc applies a lease only through a script; this is where Debian's busybox looks
# for it, so that `udhcpc -i eth0` (README, passt) configures eth0 as a user expects.
cat >"$WORK/ov/etc/udhcpc/default.script" <<'DHCP'
#!/bin/sh
# Apply what udhcpc reports: address, default route, DNS servers.
case $1 in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    if [ -n "$dns" ]; then
      : >/etc/resolv.conf
      for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    fi;;
esac
exit 0
DHCP
chmod 755 "$WORK/ov/etc/udhcpc/default.script"
if [ -n "$EXTRA" ]; then cp -a "$EXTRA"/. "$WORK/ov/"; fi
printf '%s\n' "$CMD" >"$WORK/ov/ne/cmd"
(cd "$WORK/ov" && find . | LC_ALL=C sort | gbusybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) >"$WORK/ov.cpio.gz"
cat "$GDIR/initramfs.cpio.gz" ${OVFILES[@]+"${OVFILES[@]}"} "$WORK/ov.cpio.gz" >"$WORK/initrd"

# ---- NIC ------------------------------------------------------------------------
netns_up() { # create $NETNS if needed (race-safe), lo up
  exec 8>"$NE_CACHE/.netns.lock"; flock 8
  [ -e "/run/netns/$NETNS" ] || ip netns add "$NETNS"
  exec 8>&-
  ip netns exec "$NETNS" ip link set lo up
}
fresh_tap() {
  local ns=(ip netns exec "$NETNS")
  if "${ns[@]}" ip link show "$TAP" >/dev/null 2>&1; then
    # a tap whose queue is open (by a running QEMU) has carrier; leave that one alone
    [ "$("${ns[@]}" cat "/sys/class/net/$TAP/carrier" 2>/dev/null)" != 1 ] \
      || die "tap $TAP in netns $NETNS is in use; pass another --tap"
    "${ns[@]}" ip link del "$TAP"
  fi
  "${ns[@]}" ip tuntap add dev "$TAP" mode tap vnet_hdr
  DELTAP=1
  "${ns[@]}" ip addr add "$HOSTIP" dev "$TAP"
  "${ns[@]}" ip link set "$TAP" up
}
split_hp() { # host:port -> "host port"
  [[ $1 =~ ^(.+):([0-9]+)$ ]] || die "expected host:port, got $1"
  echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
}

APPEND="console=$CONSOLE panic=-1 quiet ne.ip=$GUESTIP ne.carrier=$((CARRIER * 10))"
[ "$REBOOT" = 1 ] && APPEND+=" ne.boot=cmos"
NICARGS=() MEMARGS=(-m "$MEM") IOMMU=() SLOT=
if [ "$VIOMMU" = 1 ]; then
  # before any PCI device: the IOMMU must exist when the NIC is realized
  IOMMU=(-device intel-iommu,caching-mode=on)
  APPEND+=" intel_iommu=on"
fi
[ "$MACHINE" = pc ] || SLOT=,addr=2
[ -n "$XAPPEND" ] && APPEND+=$XAPPEND
if [ -n "$MODS" ]; then APPEND+=" ne.mods=$MODS"; fi   # guest-init takes the first
case $NIC in
  qemu-e1000|virtio)
    NETNS=${NETNS:-nicemu}; netns_up; fresh_tap
    if [ "$NIC" = qemu-e1000 ]; then
      NICARGS=(-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no"
               -device "e1000,netdev=n0,mac=${MAC:-$DEFMAC},romfile=$SLOT")
      APPEND+=" ne.mods=e1000"
    else
      NICARGS=(-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no,vhost=off"
               -device "virtio-net-pci,netdev=n0,mac=${MAC:-$DEFMAC},romfile=$SLOT")
      APPEND+=" ne.mods=virtio_pci,virtio_net"
    fi;;
  dgram-e1000)
    read -r LH LP < <(split_hp "$DGL"); read -r RH RP < <(split_hp "$DGR")
    if [ -n "$NETNS" ]; then netns_up; fi
    NICARGS=(-netdev "dgram,id=n0,local.type=inet,local.host=$LH,local.port=$LP,remote.type=inet,remote.host=$RH,remote.port=$RP"
             -device "e1000,netdev=n0,mac=${MAC:-$DEFMAC},romfile=$SLOT")
    APPEND+=" ne.mods=e1000";;
  vfio-user)
    [ -n "$SOCK" ] || die "--nic vfio-user needs --socket PATH"
    [ -S "$SOCK" ] || warn "$SOCK is not a socket (yet)"
    SOCK=$(realpath -m "$SOCK")
    if [ -n "$NETNS" ]; then netns_up; fi
    NICARGS=(-device "{\"driver\":\"vfio-user-pci\",${SLOT:+\"addr\":\"2\",}\"socket\":{\"type\":\"unix\",\"path\":\"$SOCK\"}}")
    [ "$SHARED" = 1 ] && MEMARGS=(-m "$MEM" -object "memory-backend-memfd,id=mem0,size=${MEM}M,share=on"
                                  -machine memory-backend=mem0)
    APPEND+=" ne.mods=e1000${MAC:+ ne.mac=$MAC}";;
  none)
    if [ -n "$NETNS" ]; then netns_up; fi
    APPEND+=" ne.mods=none";;
  *) die "--nic must be none, vfio-user, qemu-e1000, virtio or dgram-e1000";;
esac
NS=(); [ -n "$NETNS" ] && NS=(ip netns exec "$NETNS")

# ---- run --------------------------------------------------------------------------
CON=${LOG:-$WORK/console.log}
: >"$CON"
NOREBOOT=(-no-reboot); [ "$REBOOT" = 1 ] && NOREBOOT=()
QCMD=("$QEMU" -nodefaults -nic none -no-user-config "${ACC[@]}" -machine "$MACHINE" -smp "$SMP" "${MEMARGS[@]}"
      -display none -monitor none -serial stdio ${NOREBOOT[@]+"${NOREBOOT[@]}"}
      -kernel "$KERNEL" -initrd "$WORK/initrd" -append "$APPEND"
      ${IOMMU[@]+"${IOMMU[@]}"} "${NICARGS[@]}" ${QARGS[@]+"${QARGS[@]}"})
printf '%q ' "${QCMD[@]}" >"$WORK/qemu-cmdline"
if [ "$SHOWQ" = 1 ]; then for a in "${QCMD[@]}"; do log "qemu arg: $a"; done; fi
T0=$(date +%s.%N)
"${NS[@]}" timeout -k 3 "$TIMEOUT" "${QCMD[@]}" </dev/null >>"$CON" 2>&1 &
QPID=$!
if [ "$QUIET" = 0 ]; then
  tail -n +1 -s 0.1 -f --pid="$QPID" "$CON" &
  TPID=$!
fi
QRC=0; wait "$QPID" || QRC=$?
QPID=
if [ -n "$TPID" ]; then wait "$TPID" 2>/dev/null || true; TPID=; fi
WALL=$(elapsed "$T0")

GRC=$(tr -d '\r' <"$CON" | sed -n 's/^RIG-EXIT=\([0-9]\+\).*/\1/p' | tail -n1)
READY=$(tr -d '\r' <"$CON" | sed -n 's/^RIG-READY \([0-9.]\+\).*/\1/p' | tail -n1)
[ "$QRC" = 124 ] && log "timeout after ${TIMEOUT}s: QEMU killed"
if [ -z "$GRC" ] && [ "$QRC" != 124 ]; then
  log "QEMU exited $QRC without RIG-EXIT; command line: $(cat "$WORK/qemu-cmdline")"
  if [ "$QUIET" = 1 ]; then log "console tail:"; tail -n 15 "$CON" | tr -d '\r' >&2; fi
fi
log "arch=$ARCH nic=$NIC accel=$ACCEL qemu_rc=$QRC rc=${GRC:-none} ready=${READY:-?}s wall=${WALL}s"
[ -n "$GRC" ] && exit "$GRC"
[ "$QRC" = 124 ] && exit 124
exit 125
