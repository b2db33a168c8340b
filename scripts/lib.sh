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
#   NE_QEMU_AARCH64  arm64 QEMU wrapper:
#                ${NIC_EMU_QEMU_AARCH64:-$NE_CACHE/bin/qemu-system-aarch64}
#   NE_QEMU_RISCV64  riscv64 QEMU wrapper:
#                ${NIC_EMU_QEMU_RISCV64:-$NE_CACHE/bin/qemu-system-riscv64}
#   NE_GUEST     guest kernel/initramfs dir: $NE_CACHE/guest
#   NE_GUEST_ARM64   arm64 guest kernel/initramfs dir: $NE_CACHE/guest-arm64
#   NE_GUEST_RISCV64 riscv64 guest kernel/initramfs dir: $NE_CACHE/guest-riscv64
#   NE_GROOT     unpacked guest initramfs tree: $NE_CACHE/guest-root
#   log/warn/die       messages on stderr, prefixed with "[<script name>]"
#   need_root          die unless uid 0
#   have CMD           true if CMD is on PATH
#   version_ge A B     true if version A >= B (sort -V)
#   host_mirror [NAME] first ".../NAME" URI in the host's apt sources (NAME: debian,
#                      the default, or debian-security)
#   gbusybox ARGS      the guest's static busybox, run on the host
#   giperf3 ARGS       the guest's iperf3, run on the host via the guest's ld.so
#   elapsed START      seconds since START (a `date +%s.%N` value), 2 decimals
#   guest_deb DIR PKG  the .deb of PKG in DIR (empty if none)
#   guest_fetch_debs DIR PKG...   `apt-get download` into DIR each PKG whose candidate
#                      version is not there yet (older ones removed); honours APT_CONFIG;
#                      returns 1 if a candidate is missing or the download fails
#   guest_add_modules STAGE TREE KV NAME...   copy kernel modules NAME and the modules
#                      they depend on from STAGE/lib/modules/KV/kernel to TREE
#
# Env: NIC_EMU_CACHE, NIC_EMU_QEMU, NIC_EMU_QEMU_AARCH64, NIC_EMU_QEMU_RISCV64 (see above)

NE_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NE_CACHE=${NIC_EMU_CACHE:-/var/cache/nic-emu}
NE_QEMU=${NIC_EMU_QEMU:-$NE_CACHE/bin/qemu-system-x86_64}
NE_QEMU_AARCH64=${NIC_EMU_QEMU_AARCH64:-$NE_CACHE/bin/qemu-system-aarch64}
NE_GUEST=$NE_CACHE/guest
NE_QEMU_RISCV64=${NIC_EMU_QEMU_RISCV64:-$NE_CACHE/bin/qemu-system-riscv64}
NE_GUEST_ARM64=$NE_CACHE/guest-arm64
NE_GUEST_RISCV64=$NE_CACHE/guest-riscv64
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

host_mirror() { # [NAME]
  # deb822 files first (bookworm default), then one-line sources
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | sed -n 's/^[[:space:]]*URIs:[[:space:]]*//p' | tr ' ' '\n'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]*\)\?\([^[:space:]]*\).*/\2/p'
  } | sed 's:/*$::' | grep -m1 -E "/${1:-debian}\$" || true
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

guest_deb() { # DIR PKG
  ls "$1/${2}_"*.deb 2>/dev/null | head -n1 || true
}

guest_fetch_debs() { # DIR PKG...
  local dir=$1 p want f fetch=()
  shift
  local -A cand=()
  while read -r p want; do cand[$p]=$want; done < <(apt-cache policy "$@" |
    awk '/^[^ ]/ { sub(/:$/, ""); p = $1 } /^ *Candidate:/ { print p, $2 }')
  for p in "$@"; do
    want=${cand[$p]:-}
    if [ -z "$want" ] || [ "$want" = "(none)" ]; then
      warn "no installable candidate for $p"; return 1
    fi
    # apt-get download names files <pkg>_<version with ':' as %3a>_<arch>.deb
    f=$(guest_deb "$dir" "$p")
    if [ -z "$f" ] || [[ $(basename "$f") != "${p}_${want//:/%3a}_"* ]]; then
      rm -f "$dir/${p}_"*.deb; fetch+=("$p")
    fi
  done
  [ ${#fetch[@]} -gt 0 ] || return 0
  log "apt-get download ${fetch[*]}"
  (cd "$dir" && apt-get -q -o APT::Sandbox::User=root download "${fetch[@]}" >/dev/null) ||
    { warn "apt-get download ${fetch[*]} failed"; return 1; }
}

guest_mod_deps() { # file.ko[.xz|.zst] -> names from its .modinfo "depends=" (no kmod needed)
  case $1 in *.xz) xz -dc "$1";; *.zst) zstd -dc "$1";; *) cat "$1";; esac |
    tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}

guest_add_modules() { # STAGE TREE KV NAME...
  local stage=$1 tree=$2 kv=$3 n f
  shift 3
  for n in "$@"; do
    f=$(find "$stage/lib/modules/$kv/kernel" \( -name "$n.ko" -o -name "$n.ko.*" \
          -o -name "${n//_/-}.ko" -o -name "${n//_/-}.ko.*" \) | head -n1)
    [ -n "$f" ] || die "module $n not found in the extracted kernel dirs (extend the tar patterns)"
    [ -e "$tree${f#"$stage"}" ] && continue
    mkdir -p "$(dirname "$tree${f#"$stage"}")"; cp "$f" "$tree${f#"$stage"}"
    # shellcheck disable=SC2046 # one word per module name
    guest_add_modules "$stage" "$tree" "$kv" $(guest_mod_deps "$f")
  done
}
