# scripts/bench-lib.sh - parsing and statistics for bench-e2e.sh (sourced, not run).
#
# Results are TSV lines "nic<TAB>run<TAB>figure<TAB>value". Figures:
#   ping_ms   median ping RTT of one boot (ms)
#   tcp_g2h   iperf3 TCP guest->host, receiver Mbit/s
#   tcp_h2g   iperf3 TCP host->guest, receiver Mbit/s
#   udp_g2h   iperf3 UDP -l 64 guest->host, packets/s received by the host
#   udp_h2g   iperf3 UDP -l 64 host->guest, packets/s received by the guest
#   dpdk_tx   (--dpdk) testpmd txonly: packets/s sent (median of its per-second Tx-pps)
#   dpdk_rx   (--dpdk) testpmd rxonly: packets/s received (median of its Rx-pps while
#             the host offers frames)
# BENCH_DPDK=1 (set by bench-e2e.sh --dpdk) selects the DPDK figures and phases
# (dpdk_txonly, dpdk_rxonly) in the reports instead of the kernel-driver ones.
# Per-packet costs, per phase (PHASE = one of the figures above without _ms, or
# `boot` for the whole boot):
#   gi.PHASE      guest's view, any NIC: eth0/virtio interrupts / (rx + tx packets)
#   ne_rd.PHASE   nic-emu: register reads / frames (tx + rx); each register access
#                 is one vfio-user region message from QEMU
#   ne_wr.PHASE   nic-emu: register writes / frames
#   ne_msg.PHASE  nic-emu: (reads + writes) / frames
#   ne_irq.PHASE  nic-emu: interrupts raised / frames
#   ne_fr.PHASE   nic-emu: frames counted in the phase (for judging the sample)
#   load1         1-min load average after the boot (about 1 is the boot itself)
#
# Functions: cli_usable BIN, parse_console LOG NIC RUN, parse_nic_emu PHASES CLILOG
#   RUN, report_text RES NIC..., report_markdown RES NIC..., report_costs text|md RES NIC...,
#   report_modes RES_A LABEL_A RES_B LABEL_B (two vIOMMU modes side by side)

# true if BIN looks like a nic-emu-cli that can serve vfio-user on a tap
cli_usable() { # BIN
  [ -x "$1" ] || return 1
  local h
  h=$("$1" --help 2>&1) || return 1
  grep -q -- '--socket' <<<"$h" && grep -q -- '--backend' <<<"$h"
}

# figures of one boot's serial console, as TSV lines
parse_console() { # LOG NIC RUN
  tr -d '\r' <"$1" | awk -v nic="$2" -v run="$3" '
    function out(f, v) { printf "%s\t%s\t%s\t%s\n", nic, run, f, v }
    /^RIG-B / {
      if (sec != "" && NF >= 5 && pn >= 5) {
        d = ($4 - prx) + ($5 - ptx)
        if (d > 0) out("gi." sec, sprintf("%.4f", ($3 - pirq) / d))
      }
      sec = $2; pn = NF; pirq = $3; prx = $4; ptx = $5
      next
    }
    /^RIG-D (txonly|rxonly) / {
      # testpmd per-second rates: the median of the non-zero samples
      m = 0
      for (i = 3; i <= NF; i++) if ($i + 0 > 0) r[++m] = $i + 0
      if (m > 0) {
        for (i = 2; i <= m; i++) { v = r[i]; for (j = i - 1; j >= 1 && r[j] > v; j--) r[j + 1] = r[j]; r[j + 1] = v }
        out($2 == "txonly" ? "dpdk_tx" : "dpdk_rx", (m % 2) ? r[(m + 1) / 2] : (r[m / 2] + r[m / 2 + 1]) / 2)
      }
      delete r
      next
    }
    sec == "ping" && /time=/ {
      if (match($0, /time=[0-9.]+/)) { t[++nt] = substr($0, RSTART + 5, RLENGTH - 5) }
      next
    }
    sec ~ /^tcp_/ && / receiver/ {
      for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") out(sec, $(i - 1))
      next
    }
    sec ~ /^udp_/ && / receiver/ {
      iv = ""; lt = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^[0-9.]+-[0-9.]+$/ && iv == "") iv = $i
        if ($i ~ /^[0-9]+\/[0-9]+$/) lt = $i
      }
      split(iv, a, "-"); split(lt, b, "/")
      d = a[2] - a[1]
      if (lt != "" && d > 0) out(sec, sprintf("%.0f", (b[2] - b[1]) / d))
      next
    }
    END {
      if (nt > 0) {
        for (i = 2; i <= nt; i++) { v = t[i]; for (j = i - 1; j >= 1 && t[j] + 0 > v + 0; j--) t[j + 1] = t[j]; t[j + 1] = v }
        m = (nt % 2) ? t[(nt + 1) / 2] : (t[nt / 2] + t[nt / 2 + 1]) / 2
        out("ping_ms", sprintf("%.3f", m))
      }
    }'
}

# nic-emu per-packet costs, as TSV lines. PHASES: host-stamped console markers
# "<time> RIG-B <phase> ..."; CLILOG: nic-emu-cli's host-stamped output, with its
# counter lines ("stats: ..." every second, "stopped after ..." at exit), as
# "tx N frames ..., rx N frames ..., N interrupts, N register reads, N writes".
# A phase uses the first and last counter samples taken strictly inside it; `boot`
# uses the exit summary.
parse_nic_emu() { # PHASES CLILOG RUN
  awk -v run="$3" '
    function num(re,   s) {
      if (!match($0, re)) return -1
      s = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", s); return s + 0
    }
    function out(ph, rd, wr, irq, fr, dma) {
      if (fr <= 0) return
      printf "nic-emu\t%s\tne_fr.%s\t%d\n", run, ph, fr
      printf "nic-emu\t%s\tne_rd.%s\t%.4f\n", run, ph, rd / fr
      printf "nic-emu\t%s\tne_wr.%s\t%.4f\n", run, ph, wr / fr
      printf "nic-emu\t%s\tne_dma.%s\t%.4f\n", run, ph, dma / fr
      printf "nic-emu\t%s\tne_msg.%s\t%.4f\n", run, ph, (rd + wr + dma) / fr
      printf "nic-emu\t%s\tne_irq.%s\t%.4f\n", run, ph, irq / fr
    }
    FNR == NR { if ($2 == "RIG-B") { pt[++np] = $1; pname[np] = $3 } next }
    / stats: tx | stopped after / {
      tx = num("tx [0-9]+ frames"); rx = num("rx [0-9]+ frames")
      irq = num("[0-9]+ interrupts"); rd = num("[0-9]+ register reads")
      wr = num("[0-9]+ writes"); dma = num("[0-9]+ DMA map/unmap")
      if (tx < 0 || rx < 0 || irq < 0 || rd < 0 || wr < 0) next
      if (dma < 0) dma = 0
      if ($0 ~ / stopped after /) { out("boot", rd, wr, irq, tx + rx, dma); next }
      n++; st[n] = $1; sfr[n] = tx + rx; sirq[n] = irq; srd[n] = rd; swr[n] = wr; sdma[n] = dma
    }
    END {
      for (i = 1; i < np; i++) {
        f = 0; l = 0
        for (j = 1; j <= n; j++) if (st[j] > pt[i] && st[j] < pt[i + 1]) { if (!f) f = j; l = j }
        if (f && l > f) out(pname[i], srd[l] - srd[f], swr[l] - swr[f], sirq[l] - sirq[f], sfr[l] - sfr[f], sdma[l] - sdma[f])
      }
    }' "$1" "$2"
}

# main figures: key, label, unit, whether higher is better
_bench_figures() {
  if [ "${BENCH_DPDK:-0}" = 1 ]; then
    printf '%s\t%s\t%s\t%s\n' dpdk_tx "testpmd txonly, 64 B sent" packets/s higher \
      dpdk_rx "testpmd rxonly, 64 B received" packets/s higher
    return
  fi
  cat <<'EOF'
tcp_g2h	TCP guest->host	Mbit/s	higher
tcp_h2g	TCP host->guest	Mbit/s	higher
udp_g2h	UDP 64 B guest->host, received	packets/s	higher
udp_h2g	UDP 64 B host->guest, received	packets/s	higher
ping_ms	ping RTT (median of a boot)	ms	lower
EOF
}

# awk functions shared by the reports: load RES, stats over runs, number format
_BENCH_AWK_LIB='
  function load(res, pre,   line, p, k) {
    while ((getline line < res) > 0) {
      split(line, p, "\t"); k = pre p[1] SUBSEP p[3]
      val[pre p[1], p[3], ++cnt[k]] = p[4] + 0
    }
    close(res)
  }
  function fmt(v,   r) {
    if (v >= 100 || v <= -100) return sprintf("%.0f", v)
    if (v >= 10) return (v == int(v)) ? sprintf("%d", v) : sprintf("%.1f", v)
    r = sprintf("%.3g", v); if (r !~ /[.e]/ && v != 0) r = sprintf("%.2f", v)
    return r
  }
  function stats(nic, f,   n, i, j, v, a) {
    n = cnt[nic, f]; if (n == 0) { S_n = 0; return }
    for (i = 1; i <= n; i++) a[i] = val[nic, f, i]
    for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
    S_n = n; S_min = a[1]; S_max = a[n]
    S_med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function short(n) { return n == "qemu-e1000" ? "e1000" : n }
  function med(nic, f) { stats(nic, f); return S_n ? fmt(S_med) : "-" }
  function label(n) { return n == "nic-emu" ? "nic-emu (vfio-user)" : (n == "qemu-e1000" ? "QEMU e1000" : (n == "virtio" ? "virtio-net (vhost=off)" : n)) }
'

# main table: min/median/max per figure and NIC, ratios of medians; MODE text or md
_bench_report() { # MODE RES NIC...
  local mode=$1 res=$2; shift 2
  _bench_figures | awk -F'\t' -v mode="$mode" -v nics="$*" -v res="$res" "$_BENCH_AWK_LIB"'
    BEGIN {
      load(res)
      nn = split(nics, N, " ")
      hasne = 0; hase = 0; hasv = 0
      for (i = 1; i <= nn; i++) { if (N[i] == "nic-emu") hasne = 1; if (N[i] == "qemu-e1000") hase = 1; if (N[i] == "virtio") hasv = 1 }
      if (mode == "text") {
        printf "%-46s %-24s %4s %10s %10s %10s\n", "figure", "NIC", "n", "min", "median", "max"
      } else {
        h = "| Figure |"; s = "|---|"
        for (i = 1; i <= nn; i++) { h = h " " label(N[i]) " |"; s = s "---:|" }
        if (hasne && hase) { h = h " nic-emu / e1000 |"; s = s "---:|" }
        if (hasne && hasv) { h = h " nic-emu / virtio |"; s = s "---:|" }
        print h; print s
      }
    }
    {
      f = $1; lab = $2 " (" $3 ")"; dir = $4
      rat = ""
      stats("nic-emu", f); ne = S_n ? S_med : ""
      if (ne != "" && hase) { stats("qemu-e1000", f); if (S_n && S_med != 0) rat = rat sprintf("  nic-emu/e1000 = %.2f", ne / S_med) }
      if (ne != "" && hasv) { stats("virtio", f); if (S_n && S_med != 0) rat = rat sprintf("  nic-emu/virtio = %.2f", ne / S_med) }
      if (mode == "text") {
        for (i = 1; i <= nn; i++) {
          stats(N[i], f)
          if (S_n) printf "%-46s %-24s %4d %10s %10s %10s\n", lab, label(N[i]), S_n, fmt(S_min), fmt(S_med), fmt(S_max)
          else printf "%-46s %-24s %4d %10s %10s %10s\n", lab, label(N[i]), 0, "-", "-", "-"
        }
        if (rat != "") printf "%-46s  ratio of medians:%s (%s is better)\n", "", rat, dir
      } else {
        row = "| " lab " |"
        for (i = 1; i <= nn; i++) {
          stats(N[i], f)
          row = row (S_n ? sprintf(" %s (%s–%s) |", fmt(S_med), fmt(S_min), fmt(S_max)) : " – |")
        }
        if (hasne && hase) { stats("qemu-e1000", f); row = row ((ne != "" && S_n && S_med) ? sprintf(" %.2f |", ne / S_med) : " – |") }
        if (hasne && hasv) { stats("virtio", f); row = row ((ne != "" && S_n && S_med) ? sprintf(" %.2f |", ne / S_med) : " – |") }
        print row
      }
    }'
}
report_text() { _bench_report text "$@"; }
report_markdown() { _bench_report md "$@"; }

# per-packet costs table (medians over runs): one row per phase
report_costs() { # text|md RES NIC...
  local mode=$1 res=$2; shift 2
  local phases=(ping tcp_g2h tcp_h2g udp_g2h udp_h2g boot)
  [ "${BENCH_DPDK:-0}" = 1 ] && phases=(dpdk_txonly dpdk_rxonly boot)
  printf '%s\n' "${phases[@]}" | awk -v mode="$mode" -v nics="$*" -v res="$res" "$_BENCH_AWK_LIB"'
    BEGIN {
      load(res)
      nn = split(nics, N, " ")
      for (i = 1; i <= nn; i++) if (N[i] == "nic-emu") hasne = 1
      hdr[++nh] = "Phase"
      if (hasne) { hdr[++nh] = "nic-emu frames"; hdr[++nh] = "reads/frame"; hdr[++nh] = "writes/frame"
                   hdr[++nh] = "DMA map+unmap/frame"
                   hdr[++nh] = "vfio-user msgs/frame"; hdr[++nh] = "nic-emu irqs/frame" }
      for (i = 1; i <= nn; i++) hdr[++nh] = "guest irqs/pkt, " short(N[i])
      if (mode == "text") {
        print "Per-packet costs, medians over runs. nic-emu columns: its counters over the phase."
        print "guest irqs/pkt: NIC interrupts the guest took / packets it counted (rx + tx)."
        th[1] = "phase"; th[2] = "ne-frames"; th[3] = "ne-rd/fr"; th[4] = "ne-wr/fr"; th[5] = "ne-dma/fr"
        th[6] = "ne-msg/fr"; th[7] = "ne-irq/fr"
        c = 1; if (hasne) c = 7
        for (i = 1; i <= nn; i++) th[++c] = "gi/p:" short(N[i])
        for (i = 1; i <= c; i++) printf (i == 1 ? "%-9s" : " %12s"), th[i]
        printf "\n"
      } else {
        h = "|"; s = "|"
        for (i = 1; i <= nh; i++) { h = h " " hdr[i] " |"; s = s (i == 1 ? "---|" : "---:|") }
        print h; print s
      }
    }
    {
      ph = $1; c = 0
      if (hasne) {
        v[++c] = med("nic-emu", "ne_fr." ph); v[++c] = med("nic-emu", "ne_rd." ph)
        v[++c] = med("nic-emu", "ne_wr." ph); v[++c] = med("nic-emu", "ne_dma." ph)
        v[++c] = med("nic-emu", "ne_msg." ph)
        v[++c] = med("nic-emu", "ne_irq." ph)
      }
      for (i = 1; i <= nn; i++) v[++c] = med(N[i], "gi." ph)
      any = 0; for (i = 1; i <= c; i++) if (v[i] != "-") any = 1
      if (!any) next
      if (mode == "text") { printf "%-9s", ph; for (i = 1; i <= c; i++) printf " %12s", v[i]; printf "\n" }
      else { row = "| " ph " |"; for (i = 1; i <= c; i++) row = row " " v[i] " |"; print row }
    }'
}

# two vIOMMU modes of one run side by side (markdown): per figure nic-emu / QEMU e1000 in
# each mode and each NIC's mode B / mode A; then nic-emu's DMA map+unmap messages per
# frame in each mode, per phase
report_modes() { # RES_A LABEL_A RES_B LABEL_B
  _bench_figures | awk -F'\t' -v ra="$1" -v la="$2" -v rb="$3" -v lb="$4" "$_BENCH_AWK_LIB"'
    function r(x, y) { return (x != "" && y != "" && y != 0) ? sprintf("%.2f", x / y) : "–" }
    function m(nic, f) { stats(nic, f); return S_n ? S_med : "" }
    BEGIN {
      load(ra, "A:"); load(rb, "B:")
      printf "| Figure | nic-emu / e1000, %s | nic-emu / e1000, %s | nic-emu, %s / %s | e1000, %s / %s |\n", la, lb, lb, la, lb, la
      print "|---|---:|---:|---:|---:|"
    }
    {
      f = $1
      ane = m("A:nic-emu", f); ae = m("A:qemu-e1000", f); bne = m("B:nic-emu", f); be = m("B:qemu-e1000", f)
      printf "| %s (%s) | %s | %s | %s | %s |\n", $2, $3, r(ane, ae), r(bne, be), r(bne, ane), r(be, ae)
    }
    END {
      print ""
      printf "| Phase | DMA map+unmap/frame, %s | DMA map+unmap/frame, %s |\n", la, lb
      print "|---|---:|---:|"
      n = split("tcp_g2h tcp_h2g udp_g2h udp_h2g boot", ph, " ")
      for (i = 1; i <= n; i++) {
        a = m("A:nic-emu", "ne_dma." ph[i]); b = m("B:nic-emu", "ne_dma." ph[i])
        if (a != "" || b != "") printf "| %s | %s | %s |\n", ph[i], (a != "" ? fmt(a) : "–"), (b != "" ? fmt(b) : "–")
      }
    }'
}
