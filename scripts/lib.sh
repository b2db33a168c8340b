# scripts/lib.sh - shared helpers for the nic-emu end-to-end rig (sourced, not run).
#
# Usage (from another script in scripts/):
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Provides:
#   NE_SCRIPTS   absolute path of scripts/
#   NE_CACHE     cache dir: ${NIC_EMU_CACHE:-/var/cache/nic-emu}; lives outside
#                any clone so CI runs and other work trees reuse it
#   NE_QEMU      QEMU wrapper: ${NIC_EMU_QEMU:-$NE_CACHE/bin/qemu-system-x86_64}
#   NE_GUEST     guest kernel/initramfs dir: $NE_CACHE/guest
#   NE_GROOT     unpacked guest initramfs tree: $NE_CACHE/guest-root
#   log/warn/die       messages on stderr, prefixed with "[<script name>]"
#   need_root          die unless uid 0
#   have CMD           true if CMD is on PATH
#   version_ge A B     true if version A >= B (sort -V)
#   host_mirror        first ".../debian" URI in the host's apt sources
#   gbusybox ARGS      the guest's static busybox, run on the host
#   giperf3 ARGS       the guest's iperf3, run on the host via the guest's ld.so
#   elapsed START      seconds since START (a `date +%s.%N` value), 2 decimals
#
# Env: NIC_EMU_CACHE, NIC_EMU_QEMU (see above)

NE_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NE_CACHE=${NIC_EMU_CACHE:-/var/cache/nic-emu}
NE_QEMU=${NIC_EMU_QEMU:-$NE_CACHE/bin/qemu-system-x86_64}
NE_GUEST=$NE_CACHE/guest
NE_GROOT=$NE_CACHE/guest-root
NE_NAME=${NE_NAME:-$(basename "${0%.sh}")}

log()  { printf '[%s] %s\n' "$NE_NAME" "$*" >&2; }
warn() { printf '[%s] warning: %s\n' "$NE_NAME" "$*" >&2; }
die()  { printf '[%s] error: %s\n' "$NE_NAME" "$*" >&2; exit "${DIE_RC:-1}"; }
have() { command -v "$1" >/dev/null 2>&1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

version_ge() { # A B
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

host_mirror() {
  # deb822 files first (bookworm default), then one-line sources
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | sed -n 's/^[[:space:]]*URIs:[[:space:]]*//p' | tr ' ' '\n'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]*\)\?\([^[:space:]]*\).*/\2/p'
  } | sed 's:/*$::' | grep -m1 -E '/debian$' || true
}

gbusybox() {
  "$NE_GROOT/bin/busybox" "$@"
}

giperf3() {
  "$NE_GROOT/lib64/ld-linux-x86-64.so.2" \
    --library-path "$NE_GROOT/lib/x86_64-linux-gnu:$NE_GROOT/usr/lib/x86_64-linux-gnu" \
    "$NE_GROOT/usr/bin/iperf3" "$@"
}

elapsed() { # START
  awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'
}
