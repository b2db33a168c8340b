#!/bin/bash
# scripts/fuzz.sh - run the cargo-fuzz targets of fuzz/ (docs/FUZZING.md).
#
# Usage: scripts/fuzz.sh [--target NAME]... [--seconds S] [--sanitizer auto|address|none]
#                        [--timeout T]
#   --target NAME   one of: device_ops vfio_user_stream dma_table pcap_replay
#                   backend_spec capi_calls (repeatable; default: all, one after another)
#   --seconds S     seconds of fuzzing per target (default 60; building comes on top)
#   --sanitizer S   auto (default): AddressSanitizer for the targets that reach unsafe
#                   code (capi_calls, dma_table, vfio_user_stream: raw pointers, mmap,
#                   descriptors), none for the safe-Rust ones (device_ops, pcap_replay,
#                   backend_spec: more executions; overflow checks and debug
#                   assertions stay on); or address / none for every target
#   --timeout T     libFuzzer -timeout: an input running longer is a hang (default 10)
# Env: FUZZ_TARGET_DIR: where the instrumented builds go (default fuzz/target; one
#      subdirectory per sanitizer); FUZZ_WORK_DIR: the corpora found so far (default
#      fuzz/work; one subdirectory per target). CI keeps both in its cache.
#
# Runs on the stable toolchain: cargo-fuzz needs nightly-only rustc flags
# (-Zsanitizer, sancov passes), which RUSTC_BOOTSTRAP=1 lets stable accept. cargo-fuzz is
# installed into ~/.cargo/bin if missing. Each target is built (a no-op when nothing
# changed) before it runs. One libFuzzer process per target, one core:
# -workers=1 -jobs=1 are libFuzzer's defaults when neither flag is given (giving
# -jobs makes libFuzzer fork a child and send its output to fuzz-N.log instead).
# Each target reads its seeds from fuzz/corpus/NAME (checked in, never written) and
# keeps what it finds in $FUZZ_WORK_DIR/NAME (not checked in; the next run starts from it).
# A crash, leak or hang is written to fuzz/artifacts/NAME/ and makes this script exit
# non-zero (after the other targets have run). At the end a table gives, per target,
# the executions ("Done N runs"), the executions per second and the result.
set -euo pipefail
self=$(realpath "${BASH_SOURCE[0]}")
cd "$(dirname "$self")/../fuzz"

ALL=(device_ops vfio_user_stream dma_table pcap_replay backend_spec capi_calls)
targets=()
seconds=60
sanitizer=auto
timeout=10
CARGO_FUZZ_VERSION=0.13.2
while [ $# -gt 0 ]; do
  case "$1" in
    --target) targets+=("$2"); shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --sanitizer) sanitizer=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
for t in "${targets[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t (${ALL[*]})" >&2; exit 2; }
done

export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
# The fuzz crate has its own target directory; CI's CARGO_TARGET_DIR (shared with the
# main crate's instrumentation-free builds) would only mix the two.
unset CARGO_TARGET_DIR
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" >&2
fi
target_root=${FUZZ_TARGET_DIR:-$PWD/target}
work_root=${FUZZ_WORK_DIR:-$PWD/work}
sanitizer_of() {
  case "$sanitizer:$1" in
    auto:capi_calls|auto:dma_table|auto:vfio_user_stream) echo address ;;
    auto:*) echo none ;;
    *) echo "$sanitizer" ;;
  esac
}

logdir=$(mktemp -d /tmp/nic-emu-fuzz.XXXXXX)
# The targets' scratch files (vfio_user_stream's socket, pcap_replay's capture) go to
# a private TMPDIR, removed at the end; the logs stay.
export TMPDIR=$logdir/tmp
mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT
failed=0
rows=()
for t in "${targets[@]}"; do
  mkdir -p "$work_root/$t" "artifacts/$t"
  san=$(sanitizer_of "$t")
  echo "=== fuzz $t for ${seconds}s (sanitizer $san)" >&2
  if ! cargo fuzz build -s "$san" --target-dir "$target_root/$san" "$t" >"$logdir/$t.build.log" 2>&1; then
    cat "$logdir/$t.build.log" >&2
    echo "fuzz.sh: building $t failed" >&2
    exit 1
  fi
  extra=()
  # vfio_user_stream's server frees and allocates on its own thread, so an input's
  # malloc and free counts race with it and libFuzzer's per-input leak check would run
  # most inputs twice and stop every thread to scan the heap (its cost:
  # docs/FUZZING.md). Under ASan, LeakSanitizer still checks the whole process when
  # the run ends (a leak then fails the run).
  [ "$t" != vfio_user_stream ] || extra+=(-detect_leaks=0)
  set +e
  cargo fuzz run -s "$san" --target-dir "$target_root/$san" "$t" "$work_root/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 ${extra[@]+"${extra[@]}"} \
    >"$logdir/$t.log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$logdir/$t.log" | tail -1)
  secs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$logdir/$t.log" | tail -1)
  if [ -z "$runs" ]; then
    # A crash ends the run before "Done": take the last status line's count.
    runs=$(grep -oE '^#[0-9]+' "$logdir/$t.log" | tail -1 | tr -d '#')
    secs=$seconds
  fi
  runs=${runs:-0}
  secs=${secs:-$seconds}
  eps=$(( runs / (secs > 0 ? secs : 1) ))
  if [ $rc -eq 0 ]; then
    result=ok
  else
    failed=1
    art=$(grep -oE 'artifacts/[^ ]+' "$logdir/$t.log" | tail -1 || true)
    result="FAILED (exit $rc${art:+, $art})"
    echo "--- $t failed; the end of its log ($logdir/$t.log):" >&2
    tail -40 "$logdir/$t.log" >&2
  fi
  rows+=("$(printf '%-18s %-9s %8s %12s %9s  %s' "$t" "$san" "$secs" "$runs" "$eps" "$result")")
done

printf '%-18s %-9s %8s %12s %9s  %s\n' target sanitizer seconds executions exec/s result
printf '%s\n' "${rows[@]}"
echo "logs: $logdir"
exit $failed
