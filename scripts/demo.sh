#!/bin/bash
# scripts/demo.sh - nic-emu's main job in one command: an unmodified Linux guest in QEMU
# drives the emulated e1000 over vfio-user, and pings the host through a tap (and the
# host pings back).
#
# Usage: sudo scripts/demo.sh        (root: it makes a netns and a tap)
#        scripts/demo.sh --help       this text
# Steps, each printed as it runs:
#   1. scripts/provision.sh              QEMU with vfio-user-pci + guest (cached)
#   2. cargo build --release             nic-emu-cli
#   3. netns ne-demo, tap ne-demo0 10.233.50.1/24 inside it
#   4. nic-emu-cli --backend tap,ifname=ne-demo0 --record demo.pcap, in the netns
#   5. scripts/boot-guest.sh --nic vfio-user: the guest (10.233.50.2) shows the driver's
#      messages and pings the host; the host pings the guest
#   6. the guest powers off; nic-emu-cli stops on SIGTERM and prints its counters;
#      tcpdump (if installed) summarises the recording
#   7. cleanup (always): processes, tap, netns, temp dir
# Only 10.233.50.0/24 inside the demo's own namespace is used; host interfaces are
# never touched.
#
# Env: NIC_EMU_CACHE (see lib.sh), CARGO_TARGET_DIR, DEMO_KEEP=1 keeps the temp dir.
# Exit status: 0 when both pings got every answer.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(cd "$NE_SCRIPTS/.." && pwd)
NS=ne-demo TAP=ne-demo0 HOST=10.233.50.1 GUEST=10.233.50.2 MAC=52:54:00:e1:00:00
case ${1:-} in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
  "") ;;
  *) die "unknown argument $1 (see --help)";;
esac
need_root
step() { printf '\n==> %s\n' "$*"; }

WORK= CLI_PID= BOOT_PID= NS_MADE=0
cleanup() {
  local rc=$?
  set +e
  if [ -n "$BOOT_PID" ] && kill -0 "$BOOT_PID" 2>/dev/null; then
    kill -TERM "$BOOT_PID"; wait "$BOOT_PID" 2>/dev/null   # its trap stops QEMU
  fi
  if [ -n "$CLI_PID" ] && kill -0 "$CLI_PID" 2>/dev/null; then
    kill -TERM "$CLI_PID"; wait "$CLI_PID" 2>/dev/null
  fi
  if [ "$NS_MADE" = 1 ]; then
    ip netns exec "$NS" ip link del "$TAP" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
  fi
  if [ -n "$WORK" ]; then
    if [ "${DEMO_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
      echo "demo: files kept in $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
T0=$(date +%s.%N)

have cargo || die "cargo not found: install Rust (https://rustup.rs) and run again"
WORK=$(mktemp -d /tmp/nic-emu-demo.XXXXXX)
SOCK=$WORK/nic-emu.sock PCAP=$WORK/demo.pcap CON=$WORK/console.log

step "1. provision the QEMU rig (scripts/provision.sh; cached after the first run)"
bash "$NE_SCRIPTS/provision.sh" | sed 's/^/    /'

step "2. build nic-emu-cli (cargo build --release)"
if ! (cd "$ROOT" && cargo build --release --bin nic-emu-cli) >"$WORK/build.log" 2>&1; then
  tail -n 30 "$WORK/build.log" >&2; die "cargo build failed (log: $WORK/build.log)"
fi
tail -n 1 "$WORK/build.log" | sed 's/^ */    /'
CLI=${CARGO_TARGET_DIR:-$ROOT/target}/release/nic-emu-cli
[ -x "$CLI" ] || die "no $CLI after the build"

step "3. network namespace $NS with tap $TAP ($HOST/24); the host's own interfaces are not touched"
[ -e "/run/netns/$NS" ] && die "netns $NS exists (another demo running?); remove it with: ip netns del $NS"
ip netns add "$NS"; NS_MADE=1
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip tuntap add dev "$TAP" mode tap
ip netns exec "$NS" ip addr add "$HOST/24" dev "$TAP"
ip netns exec "$NS" ip link set "$TAP" up
echo "    ip netns exec $NS ip tuntap add dev $TAP mode tap; ip addr add $HOST/24 dev $TAP"

step "4. start nic-emu-cli in $NS: e1000 on tap $TAP, vfio-user socket $SOCK, recording $PCAP"
echo "    $CLI --backend tap,ifname=$TAP --socket $SOCK --mac $MAC --record $PCAP"
(cd "$WORK" && exec ip netns exec "$NS" "$CLI" --backend "tap,ifname=$TAP" --socket "$SOCK" \
  --mac "$MAC" --record "$PCAP" >"$WORK/nic-emu.log" 2>&1) &
CLI_PID=$!   # the subshell execs ip, which execs nic-emu-cli: this is its pid
tail -n +1 -s 0.1 -f --pid="$CLI_PID" "$WORK/nic-emu.log" | sed -u 's/^/    [nic-emu-cli] /' &
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || die "nic-emu-cli did not create $SOCK"

step "5. boot a Linux guest in QEMU with -device vfio-user-pci (its e1000 driver is unmodified)"
GCMD="echo '--- guest: PCI device and driver'; lspci
dmesg | grep -i e1000
echo '--- guest: eth0'; ip -4 addr show eth0
(timeout 40 nc -l -p 7777 </dev/null >/dev/null) &
echo '--- guest: ping the host $HOST'; ping -c 3 $HOST; R=\$?
echo '--- guest: waiting while the host pings us'; wait
echo '--- guest: eth0 counters'; ifconfig eth0 | grep -E 'packets|bytes'
exit \$R"
bash "$NE_SCRIPTS/boot-guest.sh" --nic vfio-user --socket "$SOCK" --guest-ip "$GUEST/24" \
  --log "$CON" --timeout 150 "$GCMD" > >(sed -u 's/^/    [guest] /') 2>&1 &
BOOT_PID=$!
for _ in $(seq 1 900); do grep -q RIG-READY "$CON" 2>/dev/null && break; sleep 0.2; done
HOST_RC=1
if grep -q RIG-READY "$CON"; then
  sleep 1
  echo "    [host] ip netns exec $NS ping -c 3 $GUEST"
  set +e
  ip netns exec "$NS" "$NE_GROOT/bin/busybox" ping -c 3 -W 2 "$GUEST" 2>&1 | sed 's/^/    [host] /'
  HOST_RC=${PIPESTATUS[0]}
  set -e
  END=$((SECONDS + 20))   # let the guest go (it waits in nc -l so our ping had a peer)
  while [ $SECONDS -lt $END ]; do
    ip netns exec "$NS" "$NE_GROOT/bin/busybox" nc -w 2 "$GUEST" 7777 </dev/null >/dev/null 2>&1 && break
    sleep 0.3
  done
fi
wait "$BOOT_PID" || true
BOOT_PID=
GUEST_RC=$(tr -d '\r' <"$CON" | sed -n 's/^RIG-EXIT=\([0-9]*\).*/\1/p' | tail -n1)

step "6. stop nic-emu-cli (SIGTERM): it flushes the recording and prints its counters"
kill -TERM "$CLI_PID" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 "$CLI_PID" 2>/dev/null || break; sleep 0.1; done
wait 2>/dev/null || true
CLI_PID=
if have tcpdump; then
  echo "    tcpdump -n -r demo.pcap icmp:"
  tcpdump -n -r "$PCAP" icmp 2>/dev/null | sed 's/^/    /'
else
  echo "    (install tcpdump to see the recording: tcpdump -n -r $PCAP)"
fi

step "7. result"
echo "    guest -> host ping: $([ "${GUEST_RC:-1}" = 0 ] && echo ok || echo FAILED)"
echo "    host -> guest ping: $([ "$HOST_RC" = 0 ] && echo ok || echo FAILED)"
echo "    total $(elapsed "$T0") s; cleaning up (netns $NS, tap $TAP, $WORK)"
[ "${GUEST_RC:-1}" = 0 ] && [ "$HOST_RC" = 0 ]
