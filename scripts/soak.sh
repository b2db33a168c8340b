#!/bin/bash
# scripts/soak.sh - a long run of real guests against nic-emu-cli, watching its resources.
#
# Usage: scripts/soak.sh [options]
#   --minutes N        how long (default 30)
#   --restart-every S  each guest's QEMU is killed (SIGKILL by boot-guest.sh --timeout)
#                      and started again after S seconds (default 150)
#   --no-viommu        only the traffic guest (no second guest behind a virtual IOMMU)
#   --accel A          auto (default) | tcg | kvm, passed to boot-guest.sh
#   --out DIR          keep logs and samples.tsv here (default /tmp/nic-emu-soak.<time>)
#   --no-build         do not run `cargo build --release` (use the existing binary)
# Env: NIC_EMU_CLI (default target/release/nic-emu-cli) and boot-guest.sh's NIC_EMU_*.
#
# Two nic-emu-cli processes, each serving one guest on a tap in a private network
# namespace (created and deleted here; host side 10.233.88.1 and 10.233.89.1):
#   A  a pc guest (kernel e1000) running iperf3 TCP guest->host and host->guest in turn
#      (15 s each) with a ping every 0.5 s alongside, for as long as its QEMU lives;
#   B  a q35 guest with a virtual IOMMU (intel-iommu, caching-mode=on) that unloads and
#      loads its e1000 driver in a loop (rmmod, modprobe, address, carrier, 3 pings):
#      every ring and buffer mapping comes and goes as vfio-user DMA_MAP/DMA_UNMAP.
# Both QEMUs are killed and started again every --restart-every seconds (B's restarts
# are staggered by half a period), so each nic-emu-cli serves a new client each time.
#
# Every 10 s each nic-emu-cli's RSS (kB), open descriptors and threads are sampled
# (/proc/PID/status, /proc/PID/fd) into a table (stdout and OUT/samples.tsv). At the
# end the bound is checked over the samples after warm-up (the first third of the run,
# at least one QEMU restart): descriptors and threads never exceed their warm-up
# maximum, and RSS stays within 16 MiB of its warm-up maximum. The script exits 1 if
# a bound is broken, a nic-emu-cli died, or a guest never moved traffic. Each
# nic-emu-cli runs with its sandbox on (the default): a system call its lists lack
# ends it, and the soak fails naming the call.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root

MINUTES=30 RESTART=150 VIOMMU=1 ACCEL=${NIC_EMU_ACCEL:-auto} OUT= BUILD=1
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) MINUTES=$2; shift 2;;
    --restart-every) RESTART=$2; shift 2;;
    --no-viommu) VIOMMU=0; shift;;
    --accel) ACCEL=$2; shift 2;;
    --out) OUT=$2; shift 2;;
    --no-build) BUILD=0; shift;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) die "unknown option $1 (see --help)";;
  esac
done
[[ $MINUTES =~ ^[1-9][0-9]*$ && $RESTART =~ ^[1-9][0-9]*$ ]] \
  || die "--minutes and --restart-every want positive integers"
[ "$RESTART" -ge 60 ] || warn "--restart-every $RESTART: a TCG guest needs ~30 s to boot"

REPO=$(cd "$NE_SCRIPTS/.." && pwd)
CLI=${NIC_EMU_CLI:-$REPO/target/release/nic-emu-cli}
OUT=${OUT:-/tmp/nic-emu-soak.$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
if [ "$BUILD" = 1 ] && [ -z "${NIC_EMU_CLI:-}" ]; then
  log "cargo build --release --bin nic-emu-cli"
  (cd "$REPO" && cargo build --release --bin nic-emu-cli) >"$OUT/build.log" 2>&1 \
    || die "release build failed (see $OUT/build.log)"
fi
[ -x "$CLI" ] || die "no nic-emu-cli at $CLI"

NS=ne-soak-$$
GUESTS=(a)
[ "$VIOMMU" = 1 ] && GUESTS+=(b)
declare -A NET=([a]=10.233.88 [b]=10.233.89) MAC=([a]=52:54:00:50:a0:01 [b]=52:54:00:50:b0:01)
declare -A CPID=() LOOP=()
IPERF_PID=
cleanup() {
  set +e
  local p
  for p in "${LOOP[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${LOOP[@]}"; do wait "$p" 2>/dev/null; done
  for p in "${CPID[@]}"; do kill -TERM "$p" 2>/dev/null; done
  [ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null
  sleep 0.5
  ip netns del "$NS" 2>/dev/null   # takes the taps with it
  rm -f "$OUT"/*.sock
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" "$NE_GROOT/lib64/ld-linux-x86-64.so.2" \
  --library-path "$NE_GROOT/lib/x86_64-linux-gnu:$NE_GROOT/usr/lib/x86_64-linux-gnu" \
  "$NE_GROOT/usr/bin/iperf3" -s -D -I "$OUT/iperf.pid" --logfile "$OUT/iperf-server.log"
for _ in $(seq 50); do [ -s "$OUT/iperf.pid" ] && break; sleep 0.1; done
IPERF_PID=$(cat "$OUT/iperf.pid" 2>/dev/null || true)
[ -n "$IPERF_PID" ] || die "iperf3 server did not start"

for g in "${GUESTS[@]}"; do
  tap=soak-$g
  ip netns exec "$NS" ip tuntap add dev "$tap" mode tap
  ip netns exec "$NS" ip addr add "${NET[$g]}.1/24" dev "$tap"
  ip netns exec "$NS" ip link set "$tap" up
  ip netns exec "$NS" "$CLI" --backend "tap,ifname=$tap" --socket "$OUT/$g.sock" \
    --mac "${MAC[$g]}" >"$OUT/nic-emu-$g.log" 2>&1 &
  CPID[$g]=$!
  for _ in $(seq 100); do [ -S "$OUT/$g.sock" ] && break; sleep 0.1; done
  [ -S "$OUT/$g.sock" ] || die "nic-emu-cli $g did not create its socket (log: $OUT/nic-emu-$g.log)"
done

# The guests' commands (run until their QEMU is killed).
GA=$(cat <<GUEST_A
ping -i 0.5 -W 2 ${NET[a]}.1 >/dev/null 2>&1 &
n=0
while :; do
  n=\$((n+1))
  iperf3 -c ${NET[a]}.1 -t 15 -f m 2>&1 | grep -E 'receiver|error' | sed "s/^/SOAK-G2H \$n /"
  iperf3 -c ${NET[a]}.1 -t 15 -f m -R 2>&1 | grep -E 'receiver|error' | sed "s/^/SOAK-H2G \$n /"
done
GUEST_A
)
GB=$(cat <<GUEST_B
n=0
while :; do
  n=\$((n+1))
  ping -c 3 -i 0.3 -W 2 ${NET[b]}.1 >/dev/null 2>&1 && echo "SOAK-PING-OK \$n" || echo "SOAK-PING-FAIL \$n"
  rmmod e1000 && modprobe e1000 && echo "SOAK-RELOAD-OK \$n" || echo "SOAK-RELOAD-FAIL \$n"
  i=0; while [ ! -d /sys/class/net/eth0 ] && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i+1)); done
  ip addr add ${NET[b]}.2/24 dev eth0; ip link set eth0 up
  i=0; while [ "\$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i+1)); done
done
GUEST_B
)
END=$(( $(date +%s) + MINUTES * 60 ))

guest_loop() { # NAME DELAY
  local g=$1 n=0 left t args
  sleep "$2"
  while :; do
    left=$(( END - $(date +%s) ))
    [ "$left" -gt 20 ] || break
    t=$(( left < RESTART ? left : RESTART ))
    n=$((n + 1))
    args=(--nic vfio-user --socket "$OUT/$g.sock" --guest-ip "${NET[$g]}.2/24"
          --accel "$ACCEL" --timeout "$t" --quiet --log "$OUT/console-$g-$n.log")
    if [ "$g" = b ]; then
      "$NE_SCRIPTS/boot-guest.sh" "${args[@]}" --viommu -- "$GB" >/dev/null 2>>"$OUT/boot-$g.log" || true
    else
      "$NE_SCRIPTS/boot-guest.sh" "${args[@]}" -- "$GA" >/dev/null 2>>"$OUT/boot-$g.log" || true
    fi
  done
}
guest_loop a 0 & LOOP[a]=$!
if [ "$VIOMMU" = 1 ]; then guest_loop b $((RESTART / 2)) & LOOP[b]=$!; fi

sample() { # PID -> "rss fds threads"
  local p=$1 rss thr fds
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
  thr=$(awk '/^Threads:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
  fds=$(nfiles /proc/"$p"/fd/*)
  echo "${rss:--} $fds ${thr:--}"
}
nfiles() { # GLOB-EXPANSION...: how many of the arguments exist
  local n=0 f
  for f in "$@"; do [ -e "$f" ] && n=$((n + 1)); done
  echo "$n"
}
count() { # PATTERN FILES...: lines matching PATTERN in FILES (0 if none)
  local p=$1; shift
  cat "$@" 2>/dev/null | grep -c -- "$p" || true
}
{
  printf '%6s' t_s
  for g in "${GUESTS[@]}"; do printf ' %9s %6s %6s' "${g}_rss_kB" "${g}_fds" "${g}_thr"; done
  printf ' %7s %7s %9s\n' boots_a boots_b reloads_b
} | tee "$OUT/samples.tsv"
START=$(date +%s)
dead=0
while [ "$(date +%s)" -lt "$END" ]; do
  row=$(printf '%6d' $(( $(date +%s) - START )))
  for g in "${GUESTS[@]}"; do
    if kill -0 "${CPID[$g]}" 2>/dev/null; then
      read -r rss fds thr <<<"$(sample "${CPID[$g]}")"
    else
      rss=dead fds=- thr=-; dead=1
    fi
    row+=$(printf ' %9s %6s %6s' "$rss" "$fds" "$thr")
  done
  ba=$(nfiles "$OUT"/console-a-*.log)
  bb=$(nfiles "$OUT"/console-b-*.log)
  rl=$(count SOAK-RELOAD-OK "$OUT"/console-b-*.log)
  row+=$(printf ' %7s %7s %9s' "$ba" "$bb" "$rl")
  echo "$row" | tee -a "$OUT/samples.tsv"
  sleep 10
done
for g in "${!LOOP[@]}"; do wait "${LOOP[$g]}" 2>/dev/null || true; done
LOOP=()

# Summary and the bound.
fail=0
[ "$dead" = 0 ] || { warn "a nic-emu-cli died (logs: $OUT/nic-emu-*.log)"; fail=1; }
g2h=$(count 'SOAK-G2H .*receiver' "$OUT"/console-a-*.log)
h2g=$(count 'SOAK-H2G .*receiver' "$OUT"/console-a-*.log)
echo "guest A: $(nfiles "$OUT"/console-a-*.log) boots, iperf3 runs completed: $g2h guest->host, $h2g host->guest"
if [ "$VIOMMU" = 1 ]; then
  echo "guest B (vIOMMU): $(nfiles "$OUT"/console-b-*.log) boots," \
    "$(count SOAK-RELOAD-OK "$OUT"/console-b-*.log) driver reloads" \
    "($(count SOAK-RELOAD-FAIL "$OUT"/console-b-*.log) failed), pings after a reload:" \
    "$(count SOAK-PING-OK "$OUT"/console-b-*.log) ok, $(count SOAK-PING-FAIL "$OUT"/console-b-*.log) failed"
fi
[ "$g2h" -gt 0 ] && [ "$h2g" -gt 0 ] || { warn "guest A completed no iperf3 run in one direction"; fail=1; }
n=$(( $(wc -l <"$OUT/samples.tsv") - 1 ))
warm=$(( n / 3 ))
col=2
for g in "${GUESTS[@]}"; do
  awk -v w="$warm" -v c="$col" -v g="$g" 'NR > 1 && $c ~ /^[0-9]+$/ {
      i = NR - 1
      if (i <= w) { if ($c > wr) wr = $c; if ($(c+1) > wf) wf = $(c+1); if ($(c+2) > wt) wt = $(c+2) }
      else { if ($c > ar) ar = $c; if (mr == "" || $c < mr) mr = $c
             if ($(c+1) > af) af = $(c+1); if ($(c+2) > at) at = $(c+2) }
    }
    END {
      printf "nic-emu-cli %s after warm-up (%d samples): RSS %d..%d kB (warm-up max %d), fds max %d (warm-up max %d), threads max %d (warm-up max %d)\n", g, NR - 1 - w, mr, ar, wr, af, wf, at, wt
      if (ar > wr + 16384 || af > wf || at > wt) { print "soak: BOUND BROKEN for nic-emu-cli " g; exit 1 }
    }' "$OUT/samples.tsv" || fail=1
  col=$((col + 3))
done
for g in "${GUESTS[@]}"; do
  kill -TERM "${CPID[$g]}" 2>/dev/null || true
  rc=0; wait "${CPID[$g]}" 2>/dev/null || rc=$?
  [ "$rc" = 0 ] || { warn "nic-emu-cli $g exited with status $rc after SIGTERM"; fail=1; }
done
CPID=()
# Each ran sandboxed (its default), and its sandbox refused no system call.
for g in "${GUESTS[@]}"; do
  grep -q 'sandbox: running as' "$OUT/nic-emu-$g.log" \
    || { warn "nic-emu-cli $g did not apply its sandbox"; fail=1; }
  if grep -q 'nic-emu: sandbox: system call' "$OUT/nic-emu-$g.log"; then
    warn "nic-emu-cli $g: $(grep -m1 'nic-emu: sandbox: system call' "$OUT/nic-emu-$g.log")"
    fail=1
  fi
done
echo "logs and samples: $OUT"
if [ "$fail" = 0 ]; then echo "soak: PASS"; else echo "soak: FAIL"; fi
exit "$fail"
