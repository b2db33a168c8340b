#!/bin/bash
# scripts/test.sh - run nic-emu's whole test suite: the README's test command.
#
# As root it first provisions the real-QEMU rig and the host packages the tests use
# (scripts/provision.sh: tcpdump, valgrind, systemd-socket-activate, Python's
# prometheus_client, QEMU >= 10.1 with vfio-user, x86_64, arm64 and riscv64 Debian
# guest kernels + busybox initramfs; cached under ${NIC_EMU_CACHE:-/var/cache/nic-emu}, ~60 s
# the first time, seconds afterwards), so the end-to-end tests boot real guests.
# Without root those tests skip and the rest still runs. Extra arguments go to `cargo
# test` (e.g. a test name filter).
#
# A test that cannot run prints `SKIP: <test>: <reason>` and reports ok, so cargo's own
# counts include it among the passed. This script gives each test binary a file to
# record skips in (NIC_EMU_SKIP_FILE, written by tests/support's can_run) and ends with
# its own summary: passed (skips not counted), skipped, failed, then every skip with
# its reason. Exit: cargo test's status; under NIC_EMU_NO_SKIP=1 (CI) a skip fails
# the test that skipped and also makes this script exit 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "$(id -u)" = 0 ]; then
  bash scripts/provision.sh
else
  echo "test.sh: not root: no provisioning; tests that need root, QEMU or missing tools will skip" >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/nic-emu-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
export NIC_EMU_SKIP_FILE=$work/skipped
: >"$NIC_EMU_SKIP_FILE"
rc=0
cargo test --workspace --all-features --no-fail-fast "$@" 2>&1 | tee "$work/log" || rc=${PIPESTATUS[0]}

# cargo's "test result: ok. 12 passed; 0 failed; 1 ignored; ..." lines, one per binary
read -r passed failed ignored < <(awk '
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed;?$/) p += $i
      if ($(i + 1) ~ /^failed;?$/) f += $i
      if ($(i + 1) ~ /^ignored;?$/) g += $i
    }
  }
  END { print p + 0, f + 0, g + 0 }' "$work/log")
sort -u "$NIC_EMU_SKIP_FILE" >"$work/skips"
skipped=$(wc -l <"$work/skips")

echo
echo "test.sh: $((passed - skipped)) passed, $skipped skipped, $failed failed, $ignored ignored (cargo test exit status $rc)"
if [ "$skipped" -gt 0 ]; then
  echo "test.sh: skipped (reported ok by cargo, not counted as passed above):"
  sed 's/^/  SKIP: /' "$work/skips"
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: run as root to provision the rig and the tools, and run them all"
  fi
  if [ "${NIC_EMU_NO_SKIP:-}" = 1 ]; then
    echo "test.sh: NIC_EMU_NO_SKIP=1: a skip is a failure" >&2
    [ "$rc" != 0 ] || rc=1
  fi
fi
exit "$rc"
