#!/bin/bash
# scripts/test.sh - run nic-emu's whole test suite: the README's test command.
#
# As root it first provisions the real-QEMU rig (scripts/provision.sh: QEMU >= 10.1 with
# vfio-user, x86_64 and arm64 Debian guest kernels + busybox initramfs; cached under
# ${NIC_EMU_CACHE:-/var/cache/nic-emu}, ~60 s the first time, seconds afterwards), so the
# end-to-end tests boot real guests. Without root those tests print "SKIP: ..." and the
# rest still runs. Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "$(id -u)" = 0 ]; then
  bash scripts/provision.sh
else
  echo "test.sh: not root: skipping rig provisioning; tap and QEMU tests will SKIP" >&2
fi
exec cargo test --workspace --all-features "$@"
