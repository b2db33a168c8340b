#!/bin/bash
# scripts/bench-e2e.sh - end-to-end network benchmark: nic-emu (vfio-user, tap backend)
# against QEMU's built-in e1000 and virtio-net (vhost=off), same guest, kernel and host.
#
# Usage: scripts/bench-e2e.sh [options]
#   --runs N          boots per NIC (default 3); boots alternate A B C A B C ...
#   --secs S          seconds per iperf3 test (default 5)
#   --nics LIST       comma list of nic-emu,qemu-e1000,virtio (default: all three;
#                     nic-emu is skipped with a warning if its CLI cannot serve)
#   --udp-bw BW       iperf3 -b for the 64-byte UDP tests (default 100M, which offers
#                     about 195k packets/s, far above what a TCG guest takes)
#   --pings N         measured pings (default 20, at 0.2 s, after 5 warm-up pings)
#   --accel A         auto (default) | tcg | kvm, passed to boot-guest.sh
#   --viommu [MODE]   every guest gets a virtual IOMMU (q35, intel-iommu,caching-mode=on,
#                     intel_iommu=on). MODE is one of
#                       strict  the guest kernel translates every DMA: its driver maps
#                               and unmaps each buffer, which nic-emu receives as
#                               vfio-user DMA_MAP/DMA_UNMAP messages QEMU waits for,
#                               and QEMU's own e1000 handles in-process;
#                       pt      iommu=pt on the guest's command line as well: kernel
#                               drivers get an identity mapping (guest RAM mapped once),
#                               userspace VFIO drivers are still translated;
#                       both    (the default) strict and pt boots alternate in each
#                               run, and a last table sets the two side by side.
#                     Default NICs then: nic-emu,qemu-e1000 (virtio-net bypasses the
#                     IOMMU without iommu_platform, so it would not be measured the
#                     same way)
#   --dpdk            instead of the kernel driver's figures, DPDK's packet rates: each
#                     boot binds the NIC to uio_pci_generic and runs testpmd (DPDK 22.11
#                     em PMD, overlays from build-overlays.sh) twice, S+2 s each:
#                     txonly (64-byte frames, as fast as the PMD can queue them), then
#                     rxonly while the host offers 64-byte UDP frames at --dpdk-rate
#                     (examples/udp_flood, paced sendmmsg, into the tap). Figures are the
#                     medians of testpmd's own per-second Tx-pps / Rx-pps. Default NICs
#                     then: nic-emu,qemu-e1000 (virtio-net has another PMD)
#   --dpdk-rate PPS   packets/s the host offers in the rxonly phase (default 250000)
#   --out DIR         keep logs and results.tsv here (default /tmp/nic-emu-bench.<time>)
#   --no-build        do not run `cargo build --release` (use the existing binary)
#   --cli-arg ARG     extra nic-emu-cli argument (repeatable)
#   --halt-poll NS    for the whole run, set this machine's cpuidle halt polling
#                     (/sys/module/haltpoll/parameters/guest_halt_poll_ns: how long an
#                     idle CPU of a VM polls before it halts; present when the machine
#                     is itself a VM with the haltpoll cpuidle driver) and restore the
#                     old value at exit. Every NIC runs under the same setting. nic-emu's
#                     path crosses threads (QEMU's vCPU, nic-emu's socket thread, QEMU's
#                     vfio-user thread) where QEMU's e1000 stays in one process, so it
#                     pays most for a halted CPU's wake-up (docs/PERFORMANCE.md)
# Env: NIC_EMU_CLI (nic-emu-cli binary; default target/release/nic-emu-cli) and the
#      NIC_EMU_* variables of boot-guest.sh.
#
# Every boot runs, in one guest: 5 warm-up pings, N pings at 0.2 s (median RTT),
# iperf3 TCP guest->host and host->guest (-O 1 -t S), iperf3 UDP -l 64 -b BW
# guest->host and host->guest (packets/s received = (total - lost) / interval of the
# receiver's summary line). The iperf3 server (the guest's own iperf3 run through
# the guest's ld.so) and every tap live in a network namespace this script creates
# and deletes; addresses are 10.233.77.1 (host side) and 10.233.77.2 (guest).
# nic-emu: a persistent tap is created and addressed first; nic-emu-cli attaches to
# it (--backend tap,ifname=TAP --stats-interval 1) and is stopped with SIGTERM after
# the boot. Its output, stamped with host time, is kept (nic-emu-<run>.log); the
# guest's phase markers, stamped as they reach the console, are kept too
# (phases-<nic>-<run>.log). Counters sampled inside each phase give per-packet costs:
# register reads/writes (= vfio-user messages) and interrupts per frame; the guest's
# /proc/interrupts and eth0 counters give interrupts per packet for every NIC
# (bench-lib.sh).
#
# Output: min/median/max per figure and NIC, the ratios nic-emu / QEMU e1000 and
# nic-emu / virtio, the accelerator (TCG or KVM), the load average after each boot,
# a per-phase cost table, and both tables again in markdown.
# Exit: 0 when every boot produced numbers, 1 otherwise (partial tables still print).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$NE_SCRIPTS/bench-lib.sh"
need_root
ARGV="$*"

RUNS=3 SECS=5 NICS=nic-emu,qemu-e1000,virtio UDPBW=100M PINGS=20 ACCEL=${NIC_EMU_ACCEL:-auto}
OUT= BUILD=1 CLIARGS=() VIOMMU=0 VMODE=both NICS_GIVEN=0 DPDK=0 DPDK_RATE=250000 HALTPOLL=
HALTPOLL_PARAM=/sys/module/haltpoll/parameters/guest_halt_poll_ns
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2;;        --secs) SECS=$2; shift 2;;
    --nics) NICS=$2; NICS_GIVEN=1; shift 2;;  --udp-bw) UDPBW=$2; shift 2;;
    --viommu) VIOMMU=1
              case ${2:-} in strict|pt|both) VMODE=$2; shift;; esac
              shift;;
    --dpdk) DPDK=1; shift;;           --dpdk-rate) DPDK_RATE=$2; shift 2;;
    --pings) PINGS=$2; shift 2;;      --accel) ACCEL=$2; shift 2;;
    --out) OUT=$2; shift 2;;          --no-build) BUILD=0; shift;;
    --cli-arg) CLIARGS+=("$2"); shift 2;;
    --halt-poll) HALTPOLL=$2; shift 2;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) die "unknown option $1 (see --help)";;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ && $PINGS =~ ^[1-9][0-9]*$ ]] \
  || die "--runs, --secs and --pings want positive integers"
[[ $UDPBW =~ ^[0-9]+[KMG]?$ ]] || die "--udp-bw wants e.g. 100M"
[[ $DPDK_RATE =~ ^[1-9][0-9]*$ ]] || die "--dpdk-rate wants a positive integer (packets/s)"
if [ -n "$HALTPOLL" ]; then
  [[ $HALTPOLL =~ ^[0-9]+$ ]] || die "--halt-poll wants nanoseconds (a non-negative integer)"
  [ -w "$HALTPOLL_PARAM" ] \
    || die "--halt-poll: no writable $HALTPOLL_PARAM (this machine's cpuidle driver is $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo unknown), not haltpoll)"
fi
if [ "$VIOMMU" = 1 ] || [ "$DPDK" = 1 ]; then [ "$NICS_GIVEN" = 1 ] || NICS=nic-emu,qemu-e1000; fi
if [ "$DPDK" = 1 ] && [ "$VIOMMU" = 1 ]; then
  die "--dpdk runs testpmd through uio_pci_generic, which needs no IOMMU: give one of --dpdk, --viommu"
fi
export BENCH_DPDK=$DPDK
# vIOMMU modes measured in each run; with more than one, every file a boot leaves
# carries the mode (console-NIC-MODE-RUN.log, results-MODE.tsv), else the names are
# those of a run without --viommu.
MODES=(none)
if [ "$VIOMMU" = 1 ]; then
  if [ "$VMODE" = both ]; then MODES=(strict pt); else MODES=("$VMODE"); fi
fi

REPO=$(cd "$NE_SCRIPTS/.." && pwd)
CLI=${NIC_EMU_CLI:-$REPO/target/release/nic-emu-cli}
OUT=${OUT:-/tmp/nic-emu-bench.$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
res_of() { # MODE: the results file of that mode
  if [ ${#MODES[@]} -gt 1 ]; then echo "$OUT/results-$1.tsv"; else echo "$OUT/results.tsv"; fi
}
sfx_of() { # MODE: what that mode adds to a boot's file names
  if [ ${#MODES[@]} -gt 1 ]; then echo "-$1"; fi
}
mode_desc() { # MODE
  case $1 in
    strict) echo "strict: every DMA translated (intel_iommu=on)";;
    pt) echo "iommu=pt: kernel drivers in passthrough (intel_iommu=on iommu=pt)";;
  esac
}
for m in "${MODES[@]}"; do : >"$(res_of "$m")"; done

NS=nb-e2e-$$ TAP=nb-tap0 HOST=10.233.77.1 GUEST=10.233.77.2 PFX=24
SOCK=$OUT/nic-emu.sock
SPID= CPID= BPID= HALTPOLL_OLD=
cleanup() {
  set +e
  if [ -n "$HALTPOLL_OLD" ]; then echo "$HALTPOLL_OLD" >"$HALTPOLL_PARAM"; fi
  if [ -n "$BPID" ]; then kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null; fi
  if [ -n "$CPID" ]; then kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null; fi
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null   # takes its taps with it
  rm -f "$SOCK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -n "$HALTPOLL" ]; then
  HALTPOLL_OLD=$(cat "$HALTPOLL_PARAM")
  echo "$HALTPOLL" >"$HALTPOLL_PARAM" || die "--halt-poll: cannot write $HALTPOLL_PARAM"
  log "halt polling: guest_halt_poll_ns $HALTPOLL_OLD -> $HALTPOLL for this run"
fi

# ---- which NICs -------------------------------------------------------------------
IFS=, read -r -a NICLIST <<<"$NICS"
for n in "${NICLIST[@]}"; do
  case $n in nic-emu|qemu-e1000|virtio) ;; *) die "unknown NIC $n";; esac
done
if [[ ",$NICS," == *,nic-emu,* ]]; then
  if [ "$BUILD" = 1 ] && [ -z "${NIC_EMU_CLI:-}" ]; then
    log "cargo build --release --bin nic-emu-cli"
    (cd "$REPO" && cargo build --release --bin nic-emu-cli) >"$OUT/build.log" 2>&1 \
      || warn "release build failed (see $OUT/build.log)"
  fi
  if ! cli_usable "$CLI"; then
    warn "nic-emu-cli ($CLI) cannot serve vfio-user with a tap backend yet: skipping nic-emu"
    NICLIST=($(printf '%s\n' "${NICLIST[@]}" | grep -vx nic-emu))
  fi
fi
[ ${#NICLIST[@]} -gt 0 ] || die "no NIC to measure"
DPDK_MAC=52:54:00:00:77:02
if [ "$DPDK" = 1 ]; then
  [[ " ${NICLIST[*]} " != *" virtio "* ]] \
    || die "--dpdk measures e1000 NICs (the guest has only DPDK's em PMD): drop virtio from --nics"
  log "cargo build --release --example udp_flood; scripts/build-overlays.sh"
  (cd "$REPO" && cargo build --release --example udp_flood) >>"$OUT/build.log" 2>&1 \
    || die "building examples/udp_flood failed (see $OUT/build.log)"
  TDIR=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  FLOOD=$TDIR/release/examples/udp_flood
  [ -x "$FLOOD" ] || die "no udp_flood binary at $FLOOD"
  "$NE_SCRIPTS/build-overlays.sh" >>"$OUT/build.log" 2>&1 \
    || die "scripts/build-overlays.sh failed (see $OUT/build.log)"
fi

ip netns add "$NS"
ip netns exec "$NS" ip link set lo up

# ---- the guest's part: one boot runs every measurement --------------------------------
# st NAME prints "RIG-B NAME <eth0/virtio interrupts> <rx packets> <tx packets>"; a
# phase runs from its marker to the next one (a 1 s pause ends each phase). The host
# stamps the markers as they reach the console (phases-*.log).
mkdir -p "$OUT/guest"
{
  printf 'H=%s SECS=%s PINGS=%s BW=%s T=%s\n' "$HOST" "$SECS" "$PINGS" "$UDPBW" $((SECS + 30))
  cat <<'EOF'
st() {
  i=$(awk '/eth0|virtio/ { for (k = 2; k <= NF && $k ~ /^[0-9]+$/; k++) s += $k } END { print s + 0 }' /proc/interrupts)
  n=/sys/class/net/eth0/statistics
  echo "RIG-B $1 $i $(cat $n/rx_packets) $(cat $n/tx_packets)"
}
echo "RIG-KERNEL $(uname -r)"
sleep 1
ping -c 5 -i 0.2 -W 5 $H >/dev/null 2>&1; sleep 1
st ping; ping -c $PINGS -i 0.2 -W 5 $H; sleep 1
st tcp_g2h; timeout $T iperf3 -c $H -O 1 -t $SECS -f m; sleep 1
st tcp_h2g; timeout $T iperf3 -c $H -O 1 -t $SECS -f m -R; sleep 1
st udp_g2h; timeout $T iperf3 -c $H -t $SECS -u -l 64 -b $BW; sleep 1
st udp_h2g; timeout $T iperf3 -c $H -t $SECS -u -l 64 -b $BW -R; sleep 1
st end
EOF
} >"$OUT/guest/ne-bench.sh"
GCMD="sh /ne-bench.sh"
BOOT_TIMEOUT=$((90 + PINGS + 4 * (SECS + 35)))
# --dpdk: testpmd txonly then rxonly. "RIG-B dpdk_<mode> 0 0 0" marks a phase (the
# port is forwarding; the host starts offering frames on dpdk_rxonly); "RIG-D <mode>
# <Tx-pps or Rx-pps samples>" and "RIG-F <mode> <forward statistics>" follow its end.
{
  printf 'SECS=%s\n' "$SECS"
  cat <<'EOF'
mkdir -p /dev/hugepages && mount -t hugetlbfs none /dev/hugepages
modprobe uio_pci_generic && echo 8086 100e >/sys/bus/pci/drivers/uio_pci_generic/new_id
echo "RIG-KERNEL $(uname -r)"
echo "RIG-BOUND $(basename "$(readlink /sys/bus/pci/devices/0000:00:02.0/driver)")"
L=/usr/lib/x86_64-linux-gnu
EAL="--lcores=0@0,1@0 -n 1 -a 0000:00:02.0 --no-telemetry -d $L/librte_bus_pci.so.23 -d $L/librte_mempool_ring.so.23 -d $L/librte_net_e1000.so.23"
TP="--total-num-mbufs=2048 --rxd=256 --txd=256 --stats-period=1 --auto-start --no-lsc-interrupt"
tp() { # mode, the rate testpmd prints for it (Tx or Rx)
  dpdk-testpmd $EAL -- $TP --forward-mode=$1 >/tmp/$1.log 2>&1 &
  p=$!
  i=0; until grep -q 'NIC statistics for port' /tmp/$1.log || [ $i -ge 600 ] || ! kill -0 $p 2>/dev/null; do sleep 0.1; i=$((i+1)); done
  echo "RIG-B dpdk_$1 0 0 0"
  sleep $((SECS + 2))
  kill -INT $p 2>/dev/null; wait $p; echo "RIG-RC $1=$?"
  echo "RIG-D $1 $(tr -d '\033' </tmp/$1.log | grep -o "$2-pps: *[0-9]*" | grep -o '[0-9]*$' | tr '\n' ' ')"
  echo "RIG-F $1 $(tr -d '\033' </tmp/$1.log | awk '/Forward statistics for port 0/ { f = 1 } f && /-packets:|-dropped:|-total:/ { printf "%s ", $0 } f && /TX-total:/ { exit }' | tr -s ' ')"
}
tp txonly Tx
tp rxonly Rx
echo "RIG-B end 0 0 0"
EOF
} >"$OUT/guest/ne-dpdk.sh"
NFIG=5
DPDK_BOOTARGS=(--cpu max --mem 512 --append hugepages=64 --mods none --overlay drivers --overlay dpdk)
if [ "$DPDK" = 1 ]; then
  GCMD="sh /ne-dpdk.sh"
  NFIG=2
  BOOT_TIMEOUT=$((120 + 2 * (SECS + 70)))
fi

stamp() { # prefix every line of stdin with the host's time (s.us)
  local l
  while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "${l%$'\r'}"; done
}
watch_console() { # CONSOLE PID: stamp the console's RIG-B lines until PID exits
  tail -F -n +1 -s 0.1 --pid="$2" "$1" 2>/dev/null | grep --line-buffered '^RIG-B ' | stamp
}

# --dpdk: offer frames to the guest from when its rxonly phase starts, for SECS+1 s
flood_when_ready() { # CONSOLE PID LOG
  grep -q -m1 '^RIG-B dpdk_rxonly' < <(tail -F -n +1 -s 0.1 --pid="$2" "$1" 2>/dev/null) || return 0
  kill -0 "$2" 2>/dev/null || return 0
  ip netns exec "$NS" ip neigh replace "$GUEST" lladdr "$DPDK_MAC" dev "$TAP" nud permanent \
    && ip netns exec "$NS" "$FLOOD" "$GUEST:9" "$DPDK_RATE" $((SECS + 1)) >>"$3" 2>&1 \
    || echo "flood failed" >>"$3"
}

start_iperf_server() {
  rm -f "$OUT/iperf.pid"
  ip netns exec "$NS" "$NE_GROOT/lib64/ld-linux-x86-64.so.2" \
    --library-path "$NE_GROOT/lib/x86_64-linux-gnu:$NE_GROOT/usr/lib/x86_64-linux-gnu" \
    "$NE_GROOT/usr/bin/iperf3" -s -D -I "$OUT/iperf.pid" --logfile "$OUT/iperf-server.log"
  local i
  for i in $(seq 50); do [ -s "$OUT/iperf.pid" ] && break; sleep 0.1; done
  SPID=$(cat "$OUT/iperf.pid" 2>/dev/null || true)
  [ -n "$SPID" ] || die "iperf3 server did not start"
}
stop_pid() { # PID [seconds to wait]
  local p=$1 t=${2:-5} i
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq $((t * 10))); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}

# start nic-emu-cli on a fresh, addressed tap; sets CPID
start_nic_emu() { # LOGFILE
  local ns=(ip netns exec "$NS") i
  "${ns[@]}" ip link del "$TAP" 2>/dev/null || true
  "${ns[@]}" ip tuntap add dev "$TAP" mode tap
  "${ns[@]}" ip addr add "$HOST/$PFX" dev "$TAP"
  "${ns[@]}" ip link set "$TAP" up
  rm -f "$SOCK"
  RUST_LOG=${RUST_LOG:-info} "${ns[@]}" "$CLI" --backend "tap,ifname=$TAP" --socket "$SOCK" \
    --stats-interval 1 "${CLIARGS[@]}" > >(stamp >"$1") 2>&1 &
  CPID=$!
  for i in $(seq 100); do
    [ -S "$SOCK" ] && return 0
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.1
  done
  warn "nic-emu-cli did not create $SOCK (log: $1)"
  return 1
}
stop_nic_emu() { # LOGFILE
  local crc=0
  [ -n "$CPID" ] || return 0
  if ! kill -0 "$CPID" 2>/dev/null; then
    wait "$CPID" 2>/dev/null || crc=$?
    warn "nic-emu-cli exited (status $crc) before the guest finished; log: $1"
  else
    stop_pid "$CPID" 5
    wait "$CPID" 2>/dev/null || crc=$?
    [ "$crc" = 0 ] || warn "nic-emu-cli exit status $crc after SIGTERM; log: $1"
  fi
  CPID=
  ip netns exec "$NS" ip link del "$TAP" 2>/dev/null || true
}

# ---- runs -------------------------------------------------------------------------------
ACCEL_USED=
FAIL=0
T0=$(date +%s.%N)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "runs=$RUNS secs=$SECS nics=${NICLIST[*]} udp-bw=$UDPBW pings=$PINGS out=$OUT"
for run in $(seq "$RUNS"); do
 for mode in "${MODES[@]}"; do
  RES=$(res_of "$mode") sfx=$(sfx_of "$mode")
  for nic in "${NICLIST[@]}"; do
    tag=$nic$sfx-$run con=$OUT/console-$nic$sfx-$run.log err=$OUT/boot-$nic$sfx-$run.log
    nelog=$OUT/nic-emu$sfx-$run.log
    [ "$DPDK" = 1 ] || start_iperf_server
    bopts=(--netns "$NS" --host-ip "$HOST/$PFX" --guest-ip "$GUEST/$PFX" --accel "$ACCEL"
           --timeout "$BOOT_TIMEOUT" --quiet --log "$con" --extra-dir "$OUT/guest")
    [ "$VIOMMU" = 1 ] && bopts+=(--viommu)
    [ "$mode" = pt ] && bopts+=(--append iommu=pt)
    [ "$DPDK" = 1 ] && bopts+=("${DPDK_BOOTARGS[@]}")
    ok=1
    case $nic in
      nic-emu)
        if start_nic_emu "$nelog"; then
          bopts+=(--nic vfio-user --socket "$SOCK")
        else ok=0; fi;;
      qemu-e1000) bopts+=(--nic qemu-e1000 --tap "$TAP");;
      virtio) bopts+=(--nic virtio --tap "$TAP");;
    esac
    rc=0
    if [ "$ok" = 1 ]; then
      : >"$con"
      "$NE_SCRIPTS/boot-guest.sh" "${bopts[@]}" "$GCMD" >/dev/null 2>"$err" &
      BPID=$!
      watch_console "$con" "$BPID" >"$OUT/phases-$tag.log" &
      wpid=$!
      fpid=
      if [ "$DPDK" = 1 ]; then flood_when_ready "$con" "$BPID" "$OUT/flood-$tag.log" & fpid=$!; fi
      wait "$BPID" || rc=$?
      BPID=
      wait "$wpid" 2>/dev/null || true
      if [ -n "$fpid" ]; then wait "$fpid" 2>/dev/null || true; fi
    else
      rc=255
    fi
    [ "$nic" = nic-emu ] && stop_nic_emu "$nelog"
    if [ -n "$SPID" ]; then stop_pid "$SPID" 2; fi; SPID=
    a=$(sed -n 's/.*\[boot-guest\] nic=[^ ]* accel=\([a-z]*\).*/\1/p' "$err" 2>/dev/null | tail -n1)
    [ -n "$a" ] && ACCEL_USED=${ACCEL_USED:-$a}
    [ -n "$a" ] && [[ "+$ACCEL_USED+" != *"+$a+"* ]] && ACCEL_USED="$ACCEL_USED+$a"
    n=0
    if [ -f "$con" ]; then
      parse_console "$con" "$nic" "$run" >>"$RES"
      n=$(awk -F'\t' -v k="$nic" -v r="$run" '$1 == k && $2 == r && $3 !~ /[.]/' "$RES" | wc -l)
    fi
    if [ "$nic" = nic-emu ] && [ -f "$nelog" ]; then
      parse_nic_emu "$OUT/phases-$tag.log" "$nelog" "$run" >>"$RES" || true
    fi
    if [ "$rc" != 0 ] || [ "$n" -lt "$NFIG" ]; then
      FAIL=1
      warn "$tag: boot rc=$rc, $n/$NFIG figures (console: $con, boot log: $err)"
    fi
    ld=$(cut -d' ' -f1 /proc/loadavg)
    printf '%s\t%s\tload1\t%s\n' "$nic" "$run" "$ld" >>"$RES"
    log "$tag: done rc=$rc figures=$n load=$ld ($(elapsed "$T0")s)"
  done
 done
done

# ---- report -------------------------------------------------------------------------
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -n1)
HYP=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -n1)
{
  echo
  echo "nic-emu end-to-end benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  if [ "${ACCEL_USED:-}" = kvm ]; then AN="KVM, hardware virtualisation"; else AN="TCG: QEMU emulates the guest CPU, so every figure is CPU-bound"; fi
  echo "accel: ${ACCEL_USED:-unknown} ($AN)"
  echo "host: $CPU, $(nproc) CPUs${HYP:+, itself a VM under $HYP}; kernel $(uname -r); $("$NE_QEMU" --version | head -n1)"
  GK=$(cat "$OUT"/console-*.log 2>/dev/null | tr -d '\r' | sed -n 's/^RIG-KERNEL //p' | sort -u | tr '\n' ' ')
  if [ "$DPDK" = 1 ]; then
    echo "guest: Linux ${GK:-?}(Debian 12 initramfs + DPDK 22.11 testpmd, em PMD through uio_pci_generic), 1 vCPU (-cpu max), 512 MB, 64 x 2 MiB hugepages"
    echo "testpmd: --rxd=256 --txd=256 --total-num-mbufs=2048 --no-lsc-interrupt, main and forwarding lcore on the one vCPU; $((SECS + 2)) s per mode"
    echo "rxonly offered load: $DPDK_RATE packets/s of 64-byte UDP frames from the host (examples/udp_flood); per boot:"
    for f in "$OUT"/flood-*.log; do [ -f "$f" ] && printf '  %s: %s\n' "$(basename "$f" .log)" "$(tail -n1 "$f")"; done
  else
    echo "guest: Linux ${GK:-?}(Debian 12 initramfs, busybox + iperf3 3.12), 1 vCPU, 256 MB"
  fi
  HP=$(cat "$HALTPOLL_PARAM" 2>/dev/null || echo "n/a (no haltpoll cpuidle)")
  echo "cpuidle halt polling (guest_halt_poll_ns): $HP${HALTPOLL:+ (set by --halt-poll for this run)}"
  if [ "$VIOMMU" = 1 ]; then
    echo "virtual IOMMU: q35, intel-iommu,caching-mode=on (every NIC), guest command line per mode:"
    for m in "${MODES[@]}"; do echo "  $(mode_desc "$m")"; done
  fi
  echo "runs=$RUNS secs=$SECS udp: -l 64 -b $UDPBW; pings=$PINGS at 0.2 s; load avg at start: $LOAD0, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "command: scripts/bench-e2e.sh $ARGV"
  for m in "${MODES[@]}"; do
    RES=$(res_of "$m")
    if [ "$m" != none ]; then echo; echo "=== vIOMMU mode $(mode_desc "$m")"; fi
    echo "1-min load average after each boot (about 1 is the benchmark itself; more is other work):"
    for nic in "${NICLIST[@]}"; do
      printf '  %-12s %s\n' "$nic" "$(awk -F'\t' -v k="$nic" '$1 == k && $3 == "load1" { printf "%s ", $4 }' "$RES")"
    done
    echo
    report_text "$RES" "${NICLIST[@]}"
    echo
    report_costs text "$RES" "${NICLIST[@]}"
    echo
    echo "Markdown:"
    echo
    report_markdown "$RES" "${NICLIST[@]}"
    echo
    report_costs md "$RES" "${NICLIST[@]}"
  done
  if [ ${#MODES[@]} -gt 1 ]; then
    echo
    echo "=== vIOMMU modes side by side (ratios of medians; DMA messages: nic-emu's per frame)"
    echo
    report_modes "$(res_of strict)" strict "$(res_of pt)" iommu=pt
  fi
} | tee "$OUT/report.txt"
log "raw results: $(for m in "${MODES[@]}"; do res_of "$m"; done | tr '\n' ' ')logs: $OUT; total $(elapsed "$T0")s"
exit "$FAIL"
