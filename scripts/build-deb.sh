#!/bin/bash
# scripts/build-deb.sh - build the Debian packages nic-emu and nic-emu-dev from this tree.
#
# Usage: scripts/build-deb.sh [--output DIR]     (default DIR: the current directory)
# then:  sudo apt install ./nic-emu_*.deb        (./nic-emu-dev_*.deb: the C API)
#
#   nic-emu      /usr/bin/nic-emu-cli; nic-emu@.socket + nic-emu@.service in
#                /usr/lib/systemd/system (ExecStart=/usr/bin/nic-emu-cli); the man page
#                nic-emu-cli(1); bash, zsh and fish completions; the vfio-user backend
#                description /usr/share/vfio-user/50-nic-emu-e1000.json; the commented
#                backends.toml in /usr/share/doc/nic-emu/examples/
#   nic-emu-dev  libnic_emu.a and nic-emu.pc in /usr/lib/<multiarch>/, nic_emu.h in
#                /usr/include, examples/c/embed.c in /usr/share/doc/nic-emu-dev/examples/
#
# Steps:
#   1. cargo build --release --locked (nic-emu-cli and libnic_emu.a)
#   2. target/deb-assets/ (in the tree, whatever CARGO_TARGET_DIR is: Cargo.toml's
#      [package.metadata.deb] names it): `nic-emu-cli generate man|bash|zsh|fish`;
#      contrib/systemd's units with ExecStart rewritten to /usr/bin/nic-emu-cli; the
#      static library without debug info; nic-emu.pc
#   3. cargo deb --no-build (nic-emu), cargo deb --no-build --variant dev --multiarch
#      same (nic-emu-dev). cargo-deb is installed (cargo install cargo-deb --locked)
#      when missing.
# Prints the two .deb paths on stdout, one per line. Needs: Rust, gcc's binutils
# (strip), dpkg-dev (dpkg-shlibdeps for the dependencies).
# Env: CARGO_TARGET_DIR (honoured), NIC_EMU_CARGO_DEB_VERSION (cargo-deb to install).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(cd "$NE_SCRIPTS/.." && pwd)
OUT=$PWD
while [ $# -gt 0 ]; do
  case $1 in
    --output) OUT=$2; shift 2;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) die "unknown argument $1 (see --help)";;
  esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$ROOT"

if ! cargo deb --version >/dev/null 2>&1; then
  log "cargo install cargo-deb --locked (once; into ~/.cargo/bin)"
  cargo install cargo-deb --locked ${NIC_EMU_CARGO_DEB_VERSION:+--version "$NIC_EMU_CARGO_DEB_VERSION"} >&2
fi

log "cargo build --release --locked"
cargo build --release --locked >&2
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -x "$TARGET/release/nic-emu-cli" ] || die "no $TARGET/release/nic-emu-cli after the build"
CLI=$TARGET/release/nic-emu-cli
VERSION=$("$CLI" --version | awk '{ print $2 }')

ASSETS=$ROOT/target/deb-assets
rm -rf "$ASSETS"
mkdir -p "$ASSETS"
"$CLI" generate man >"$ASSETS/nic-emu-cli.1"
"$CLI" generate bash >"$ASSETS/nic-emu-cli.bash"
"$CLI" generate zsh >"$ASSETS/_nic-emu-cli"
"$CLI" generate fish >"$ASSETS/nic-emu-cli.fish"

# The units as contrib/systemd has them, with the program where the package puts it.
for u in nic-emu@.service nic-emu@.socket; do
  sed -E -e 's#/usr/local/bin/nic-emu-cli#/usr/bin/nic-emu-cli#g' \
         -e 's#^(ExecStart=[-@+!:]*)[^ ]*/nic-emu-cli#\1/usr/bin/nic-emu-cli#' \
    "contrib/systemd/$u" >"$ASSETS/$u"
done
grep -q '^ExecStart=/usr/bin/nic-emu-cli ' "$ASSETS/nic-emu@.service" \
  || die "nic-emu@.service: ExecStart does not run /usr/bin/nic-emu-cli after rewriting"

# The C API: the library of the build above without its debug info, and pkg-config.
if have dpkg-architecture; then
  MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
else
  MULTIARCH=$(gcc -print-multiarch)
fi
strip --strip-debug -o "$ASSETS/libnic_emu.a" "$TARGET/release/libnic_emu.a"
cat >"$ASSETS/nic-emu.pc" <<EOF
prefix=/usr
libdir=\${prefix}/lib/$MULTIARCH
includedir=\${prefix}/include

Name: nic-emu
Description: Intel 82540EM (e1000) device model with a C API (static library)
Version: $VERSION
Cflags: -I\${includedir}
Libs: -L\${libdir} -lnic_emu -lpthread -ldl -lm
EOF

log "cargo deb: nic-emu"
cargo deb --no-build --strip --output "$OUT" >&2
log "cargo deb: nic-emu-dev"
cargo deb --no-build --variant dev --multiarch same --output "$OUT" >&2
ARCH=$(dpkg --print-architecture)
for p in nic-emu nic-emu-dev; do
  f=$OUT/${p}_$VERSION-1_$ARCH.deb
  [ -f "$f" ] || die "cargo deb did not write $f"
  echo "$f"
done
