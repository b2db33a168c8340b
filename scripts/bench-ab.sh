#!/bin/bash
# scripts/bench-ab.sh - compare two nic-emu-cli binaries on a noisy machine. Boots
# alternate A B A B ..., one scripts/bench-e2e.sh boot each (nic-emu only), and the
# report gives, per figure, each binary's median (min-max) over its boots and the
# median (min-max) of the per-round ratios B / A. Pairing each B boot with the A boot
# just before it cancels drift slower than a round, which on a shared VM is most of it.
#
# Usage: scripts/bench-ab.sh [options] A_CLI B_CLI [-- bench-e2e.sh options]
#   --rounds N   rounds of one A boot then one B boot (default 4)
#   --out DIR    keep every boot's output here (default /tmp/nic-emu-ab.<time>)
#   --report DIR print the report of an earlier run kept in DIR again (no boots; also
#                for a run that was cut short); takes no binaries
# Options after -- go to every boot (e.g. --secs 5, --viommu strict|pt, --dpdk,
# --halt-poll NS, --pings N); --runs, --nics, --out and --no-build are this script's,
# and --viommu needs one mode (not both).
# A_CLI and B_CLI are nic-emu-cli binaries: build each revision with
# `cargo build --release` and copy target/release/nic-emu-cli aside.
#
# Output: per figure, A and B medians (min-max) and B / A; for ping, also the median of
# every measured ping of each binary's boots pooled ("pooled ping"), which uses all
# pings instead of one median per boot. Each boot's own report stays in DIR/A-<round>
# and DIR/B-<round>. Exit: 0 when every boot produced its figures, 1 otherwise.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$NE_SCRIPTS/bench-lib.sh"

ROUNDS=4 OUT= POS=() PASS=() REPORT=
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2;;
    --out) OUT=$2; shift 2;;
    --report) REPORT=$2; shift 2;;
    --) shift; PASS=("$@"); break;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    -*) die "unknown option $1 (see --help; bench-e2e.sh options go after --)";;
    *) POS+=("$1"); shift;;
  esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive integer"
for i in "${!PASS[@]}"; do
  case ${PASS[i]} in --runs|--nics|--out|--no-build) die "${PASS[i]} is set by bench-ab.sh";; esac
  if [ "${PASS[i]}" = --viommu ]; then
    case ${PASS[i + 1]:-} in strict|pt) ;; *) die "--viommu wants one mode here: --viommu strict or --viommu pt";; esac
  fi
done
T0=$(date +%s) FAIL=0
if [ -n "$REPORT" ]; then
  [ ${#POS[@]} -eq 0 ] || die "--report DIR takes no binaries"
  OUT=$REPORT
  [ -f "$OUT/ab.env" ] || die "--report: $OUT/ab.env is missing (not a bench-ab.sh output directory)"
  . "$OUT/ab.env"
else
  need_root
  [ ${#POS[@]} -eq 2 ] || die "want two nic-emu-cli binaries, A and B (see --help)"
  A=$(realpath -e "${POS[0]}" 2>/dev/null) || die "A: no such file: ${POS[0]}"
  B=$(realpath -e "${POS[1]}" 2>/dev/null) || die "B: no such file: ${POS[1]}"
  for b in "$A" "$B"; do cli_usable "$b" || die "$b cannot serve vfio-user with a tap backend"; done
  OUT=${OUT:-/tmp/nic-emu-ab.$(date -u +%Y%m%dT%H%M%SZ)}
  mkdir -p "$OUT"
  : >"$OUT/results.tsv"
  rm -f "$OUT"/pings-?.txt
  printf 'A=%q\nB=%q\nROUNDS=%q\nPASS=(%s)\n' "$A" "$B" "$ROUNDS" "$(printf '%q ' "${PASS[@]}")" >"$OUT/ab.env"
fi
RES=$OUT/results.tsv
for a in "${PASS[@]}"; do [ "$a" = --dpdk ] && export BENCH_DPDK=1; done

for r in $(seq "$ROUNDS"); do
  [ -z "$REPORT" ] || break
  for v in A B; do
    bin=$A; [ "$v" = B ] && bin=$B
    log "round $r/$ROUNDS: $v ($bin)"
    if ! NIC_EMU_CLI=$bin "$NE_SCRIPTS/bench-e2e.sh" --no-build --runs 1 --nics nic-emu \
        --out "$OUT/$v-$r" "${PASS[@]}" >"$OUT/$v-$r.log" 2>&1; then
      warn "round $r $v: bench-e2e.sh failed (see $OUT/$v-$r.log)"; FAIL=1
    fi
    # the boot's figures, renamed: NIC = A or B, RUN = round
    awk -F'\t' -v v="$v" -v r="$r" 'BEGIN { OFS = "\t" } $1 == "nic-emu" { $1 = v; $2 = r; print }' \
      "$OUT/$v-$r/results.tsv" >>"$RES" 2>/dev/null || true
    if [ "${BENCH_DPDK:-0}" != 1 ]; then
      tr -d '\r' <"$OUT/$v-$r/console-nic-emu-1.log" 2>/dev/null \
        | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' >>"$OUT/pings-$v.txt" || true
    fi
  done
done

{
  echo
  echo "nic-emu A/B benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $ROUNDS rounds of one boot each, A then B"
  echo "A: $A"
  echo "B: $B"
  echo "bench-e2e.sh options: ${PASS[*]:-(none)}"
  echo "command: scripts/bench-ab.sh --rounds $ROUNDS $A $B${PASS[*]:+ -- ${PASS[*]}}"
  echo
  _bench_figures | awk -F'\t' -v res="$RES" -v rounds="$ROUNDS" "$_BENCH_AWK_LIB"'
    BEGIN {
      while ((getline line < res) > 0) { split(line, p, "\t"); byrun[p[1], p[3], p[2]] = p[4] + 0 }
      close(res)
      load(res)
      print "| Figure | A: median (min-max) | B: median (min-max) | B / A, median of rounds (min-max) | rounds |"
      print "|---|---:|---:|---:|---:|"
    }
    {
      f = $1; name = $2 " (" $3 ")"
      stats("A", f); a = S_n ? sprintf("%s (%s-%s)", fmt(S_med), fmt(S_min), fmt(S_max)) : "-"
      stats("B", f); b = S_n ? sprintf("%s (%s-%s)", fmt(S_med), fmt(S_min), fmt(S_max)) : "-"
      # rounds where both boots gave the figure: B / A, kept as the pseudo-NIC "B/A"
      n = 0
      for (r = 1; r <= rounds; r++) {
        if ((("A", f, r) in byrun) && (("B", f, r) in byrun) && byrun["A", f, r] != 0)
          val["B/A", f, ++n] = byrun["B", f, r] / byrun["A", f, r]
      }
      cnt["B/A", f] = n
      stats("B/A", f); rq = S_n ? sprintf("%.2f (%.2f-%.2f)", S_med, S_min, S_max) : "-"
      printf "| %s | %s | %s | %s | %d |\n", name, a, b, rq, n
    }
    END { print ""; print "B / A above 1 is better for B except for ping (lower is better)." }
  '
  if [ "${BENCH_DPDK:-0}" != 1 ]; then
    for v in A B; do
      sort -n "$OUT/pings-$v.txt" 2>/dev/null \
        | awk -v v="$v" '{ a[++n] = $1 } END { if (n) printf "pooled ping, %s: median %.3f ms of %d pings\n", v, (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2, n; else printf "pooled ping, %s: no pings\n", v }'
    done
  fi
} | tee "$OUT/report.txt"
log "boots and logs: $OUT; total $(elapsed "$T0")s"
exit "$FAIL"
