#!/bin/bash
# scripts/package-check.sh - build the Debian packages and try them in a clean Debian root.
#
# Usage: scripts/package-check.sh        (root: debootstrap, chroot, namespaces)
#
#   1. scripts/build-deb.sh: nic-emu_*.deb and nic-emu-dev_*.deb
#   2. a clean root of the host's Debian release (debootstrap --variant=minbase, plus
#      man-db to read the page and systemd to verify the units), made once and kept as
#      $NE_CACHE/deb-root/<suite>-<key>.tar; each run unpacks a fresh copy
#   3. in that root, without a network (unshare -n): `apt-get install ./nic-emu_*.deb
#      ./nic-emu-dev_*.deb` (so the base system satisfies the dependencies), then
#        nic-emu-cli --version; man -l on the page (no groff warning); man -w
#        nic-emu-cli (found by name); systemd-analyze verify on the units (an
#        instance of each template); the bash completion loads and completes `ctl`;
#        the vfio-user description names /usr/bin/nic-emu-cli
#   4. apt-get purge both; no file of either package is left, and no path in the root
#      mentions nic-emu or nic_emu any more
#   5. on the host: examples/c/embed.c compiled against nic-emu-dev's header, library
#      and pkg-config file (unpacked with dpkg-deb -x), and run
# Prints each step with its time. Exit status 0 when every check passed.
# Env: NIC_EMU_CACHE (see lib.sh), NIC_EMU_MIRROR (default: host's apt sources),
#      CARGO_TARGET_DIR (honoured by the build), PACKAGE_CHECK_KEEP=1 keeps the work dir.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(cd "$NE_SCRIPTS/.." && pwd)
need_root
T0=$(date +%s.%N)
step() { log "[$(elapsed "$T0")s] $*"; }

WORK=$(mktemp -d /tmp/nic-emu-pkgcheck.XXXXXX)
cleanup() {
  local rc=$?
  if [ "${PACKAGE_CHECK_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
    log "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT

step "build the packages (scripts/build-deb.sh)"
mapfile -t DEBS < <(bash "$NE_SCRIPTS/build-deb.sh" --output "$WORK/debs")
[ ${#DEBS[@]} = 2 ] || die "build-deb.sh made ${#DEBS[@]} packages, expected 2"
for d in "${DEBS[@]}"; do
  log "  $(basename "$d"): $(du -k "$d" | cut -f1) KiB"
done

# ---- the clean root ------------------------------------------------------------------
. /etc/os-release
SUITE=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
INCLUDE=man-db,systemd
KEY=$(printf '%s|%s|minbase' "$SUITE" "$INCLUDE" | sha256sum | cut -c1-12)
TARBALL=$NE_CACHE/deb-root/$SUITE-$KEY.tar
if [ ! -f "$TARBALL" ]; then
  have debootstrap || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  MIRROR=${NIC_EMU_MIRROR:-$(host_mirror)}
  step "debootstrap --variant=minbase --include=$INCLUDE $SUITE (once; kept in $TARBALL)"
  mkdir -p "$NE_CACHE/deb-root" "$NE_CACHE/logs"
  NEW=$WORK/bootstrap
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$NEW" ${MIRROR:+"$MIRROR"} \
    >"$NE_CACHE/logs/deb-root.log" 2>&1 \
    || { tail -n 20 "$NE_CACHE/logs/deb-root.log" >&2; die "debootstrap failed"; }
  chroot "$NEW" apt-get clean
  tar -C "$NEW" -cf "$TARBALL.new" .
  mv "$TARBALL.new" "$TARBALL"
  rm -rf "$NEW"
fi
step "unpack a fresh root from $(basename "$TARBALL")"
R=$WORK/root
mkdir "$R"
tar -C "$R" -xf "$TARBALL"
mkdir -p "$R/tmp/debs"
cp "${DEBS[@]}" "$R/tmp/debs/"
MAIN=/tmp/debs/$(basename "${DEBS[0]}")
DEV=/tmp/debs/$(basename "${DEBS[1]}")

# Runs a script in the root, in namespaces of its own: no network, its own mounts
# (/proc, /dev), gone when it ends.
in_root() { # SCRIPT
  unshare --mount --net --fork sh -ec '
    mount -t proc proc "$1/proc"
    mount --rbind /dev "$1/dev"
    exec chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive /bin/bash -euo pipefail -c "$2"' \
    sh "$R" "$1"
}

step "apt-get install the two packages (no network)"
in_root "apt-get install -y -q --no-install-recommends $MAIN $DEV" >"$WORK/install.log" 2>&1 \
  || { tail -n 30 "$WORK/install.log" >&2; die "apt-get install failed in the clean root"; }
in_root "dpkg-query -L nic-emu nic-emu-dev" | grep -v -x -e '' -e '/.' | sort -u >"$WORK/files"
log "  installed: $(wc -l <"$WORK/files") paths"

step "check the installed package"
in_root '
  fail() { echo "package-check: $*" >&2; exit 1; }
  v=$(nic-emu-cli --version); echo "  $v"
  case $v in "nic-emu-cli "[0-9]*) ;; *) fail "nic-emu-cli --version printed: $v";; esac
  [ "$(command -v nic-emu-cli)" = /usr/bin/nic-emu-cli ] || fail "nic-emu-cli is not /usr/bin/nic-emu-cli"

  page=/usr/share/man/man1/nic-emu-cli.1.gz
  [ "$(man -w nic-emu-cli)" = "$page" ] || fail "man -w nic-emu-cli: $(man -w nic-emu-cli 2>&1)"
  MANWIDTH=100 MANPAGER=cat man --warnings -l "$page" >/tmp/page.txt 2>/tmp/page.err
  [ ! -s /tmp/page.err ] || { cat /tmp/page.err >&2; fail "man -l reports problems"; }
  for s in "NAME" "SYNOPSIS" "OPTIONS" "--backend" "--socket-path" "--fd" \
           "nic-emu-cli ctl link" "nic-emu-cli ctl record start" "EXAMPLES"; do
    grep -q -- "$s" /tmp/page.txt || fail "the man page lacks $s"
  done
  echo "  man -l: $(wc -l </tmp/page.txt) lines, no warnings"

  units=/usr/lib/systemd/system
  [ -f $units/nic-emu@.service ] && [ -f $units/nic-emu@.socket ] || fail "units missing"
  grep -q "^ExecStart=/usr/bin/nic-emu-cli " $units/nic-emu@.service \
    || fail "ExecStart is not /usr/bin/nic-emu-cli"
  # An instance of each template, as systemd would load it (ExecStart must exist).
  systemd-analyze verify nic-emu@check.socket nic-emu@check.service 2>/tmp/verify.err \
    || { cat /tmp/verify.err >&2; fail "systemd-analyze verify failed"; }
  if grep -i "nic-emu" /tmp/verify.err; then fail "systemd-analyze verify warns about the units"; fi
  echo "  systemd-analyze verify nic-emu@check.socket nic-emu@check.service: ok"

  out=$(bash -c ". /usr/share/bash-completion/completions/nic-emu-cli
    f=\$(complete -p nic-emu-cli | sed -n \"s/.* -F \\([^ ]*\\) .*/\\1/p\")
    COMP_WORDS=(nic-emu-cli ct); COMP_CWORD=1; COMP_LINE=\"nic-emu-cli ct\"; COMP_POINT=14
    \"\$f\" nic-emu-cli ct nic-emu-cli; echo \"\${COMPREPLY[*]}\"")
  case " $out " in *" ctl "*) ;; *) fail "bash completion of \"nic-emu-cli ct\": $out";; esac
  [ -s /usr/share/zsh/vendor-completions/_nic-emu-cli ] || fail "no zsh completion"
  [ -s /usr/share/fish/vendor_completions.d/nic-emu-cli.fish ] || fail "no fish completion"
  echo "  bash completes \"nic-emu-cli ct\" to: $out"

  grep -q "\"binary\": \"/usr/bin/nic-emu-cli\"" /usr/share/vfio-user/50-nic-emu-e1000.json \
    || fail "the vfio-user description does not name /usr/bin/nic-emu-cli"
  [ -f /usr/share/doc/nic-emu/examples/backends.toml ] || fail "no backends.toml example"
  nic-emu-cli --config /usr/share/doc/nic-emu/examples/backends.toml --print-config >/dev/null \
    || fail "the installed example backends.toml does not load"
  m=$(dpkg-query -W -f="\${Multi-Arch}" nic-emu-dev)
  ls /usr/lib/*/libnic_emu.a /usr/lib/*/pkgconfig/nic-emu.pc >/dev/null \
    || fail "nic-emu-dev: no libnic_emu.a or nic-emu.pc in /usr/lib/<multiarch>/"
  [ -f /usr/include/nic_emu.h ] || fail "no nic_emu.h"
  echo "  nic-emu-dev: header, library and pkg-config file in place (Multi-Arch: $m)"
'
python3 -m json.tool "$R/usr/share/vfio-user/50-nic-emu-e1000.json" >/dev/null \
  || die "the vfio-user description is not JSON"

step "apt-get purge both; nothing may be left"
in_root "apt-get purge -y -q nic-emu nic-emu-dev" >"$WORK/purge.log" 2>&1 \
  || { tail -n 30 "$WORK/purge.log" >&2; die "apt-get purge failed"; }
left=0
while read -r p; do
  [ -e "$R$p" ] || [ -L "$R$p" ] || continue
  if [ -d "$R$p" ] && [ ! -L "$R$p" ]; then
    # A directory other packages own too (/usr/bin, /usr/share/man/man1, ...) stays.
    in_root "dpkg-query -S '$p'" >/dev/null 2>&1 && continue
  fi
  log "left after purge: $p"; left=1
done <"$WORK/files"
stray=$(cd "$R" && find . -path ./tmp/debs -prune -o \( -iname '*nic-emu*' -o -iname '*nic_emu*' \) -print)
[ -z "$stray" ] || { log "paths naming nic-emu after purge:"; echo "$stray" >&2; left=1; }
[ "$left" = 0 ] || die "the purge left files behind"
log "  purge left nothing ($(wc -l <"$WORK/files") paths checked)"

step "nic-emu-dev on the host: examples/c/embed.c against the packaged header and library"
X=$WORK/dev
dpkg-deb -x "${DEBS[1]}" "$X"
PC=$(dirname "$(find "$X/usr/lib" -name nic-emu.pc)")
FLAGS=$(PKG_CONFIG_SYSROOT_DIR=$X PKG_CONFIG_LIBDIR=$PC pkg-config --cflags --libs nic-emu)
# shellcheck disable=SC2086 # FLAGS is a list of compiler arguments
cc -std=c11 -Wall -Wextra -Werror -o "$WORK/embed" "$ROOT/examples/c/embed.c" $FLAGS
"$WORK/embed" >"$WORK/embed.out" || { cat "$WORK/embed.out" >&2; die "embed failed"; }
log "  embed: $(tail -n 1 "$WORK/embed.out")"
step "done"
