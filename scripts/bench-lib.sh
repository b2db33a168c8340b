# scripts/bench-lib.sh - parsing and statistics for bench-e2e.sh (sourced, not run).
#
# Results are TSV lines "nic<TAB>run<TAB>figure<TAB>value". Figures:
#   ping_ms   median ping RTT of one boot (ms)
#   tcp_g2h   iperf3 TCP guest->host, receiver Mbit/s
#   tcp_h2g   iperf3 TCP host->guest, receiver Mbit/s
#   udp_g2h   iperf3 UDP -l 64 guest->host, packets/s received by the host
#   udp_h2g   iperf3 UDP -l 64 host->guest, packets/s received by the guest
#   ne_*      nic-emu only: per-packet costs from nic-emu-cli's exit output
#             (see parse_nic_emu_log)
#
# Functions: cli_usable BIN, parse_console LOG NIC RUN, parse_nic_emu_log LOG RUN,
#   report_text RES NIC..., report_markdown RES NIC...

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
    /^RIG-B / { sec = $2; next }
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

# per-packet costs from nic-emu-cli's exit output, as TSV lines (nic = nic-emu).
# It looks for counters written as `name=NUMBER` or `name: NUMBER` anywhere in
# the log (last value wins) and derives, over the whole boot:
#   ne_vfio_per_pkt  (region reads + region writes) / (frames tx + frames rx)
#   ne_irq_per_pkt   interrupts / (frames tx + frames rx)
# Names recognised (case-insensitive, any prefix): *reads, *writes (vfio-user
# region accesses), irqs|interrupts, tx_frames|frames_tx|tx_packets|tx, rx_frames|
# frames_rx|rx_packets|rx. Nothing is printed when a counter is missing.
parse_nic_emu_log() { # LOG RUN
  tr -d '\r' <"$1" | awk -v run="$2" '
    {
      line = tolower($0)
      while (match(line, /[a-z_.]+ *[=:] *[0-9]+/)) {
        kv = substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH)
        k = kv; sub(/ *[=:].*/, "", k); v = kv; sub(/.*[=:] */, "", v)
        n = split(k, p, "."); k = p[n]
        c[k] = v + 0; seen[k] = 1
      }
    }
    function get(names,   a, n, i) {
      n = split(names, a, ",")
      for (i = 1; i <= n; i++) if (a[i] in seen) return c[a[i]]
      return -1
    }
    END {
      rd = get("region_reads,reads,mmio_reads,bar_reads")
      wr = get("region_writes,writes,mmio_writes,bar_writes")
      irq = get("interrupts,irqs,irq,msi,intx")
      tx = get("tx_frames,frames_tx,tx_packets,packets_tx,tx")
      rx = get("rx_frames,frames_rx,rx_packets,packets_rx,rx")
      if (tx < 0 || rx < 0 || tx + rx == 0) exit
      p = tx + rx
      printf "nic-emu\t%s\tne_frames\t%d\n", run, p
      if (rd >= 0 && wr >= 0) printf "nic-emu\t%s\tne_vfio_per_pkt\t%.4f\n", run, (rd + wr) / p
      if (irq >= 0) printf "nic-emu\t%s\tne_irq_per_pkt\t%.4f\n", run, irq / p
    }'
}

# figure table: key, label, unit, whether higher is better
_bench_figures() {
  cat <<'EOF'
tcp_g2h	TCP guest->host	Mbit/s	higher
tcp_h2g	TCP host->guest	Mbit/s	higher
udp_g2h	UDP 64 B guest->host, received	packets/s	higher
udp_h2g	UDP 64 B host->guest, received	packets/s	higher
ping_ms	ping RTT (median of a boot)	ms	lower
ne_vfio_per_pkt	nic-emu: vfio-user reads+writes per frame	msgs	lower
ne_irq_per_pkt	nic-emu: interrupts per frame	irqs	lower
EOF
}

# shared awk: stats over runs per (nic, figure); MODE text or md
_bench_report() { # MODE RES NIC...
  local mode=$1 res=$2; shift 2
  _bench_figures | awk -F'\t' -v mode="$mode" -v nics="$*" -v res="$res" '
    function fmt(v) { return (v >= 100 || v <= -100) ? sprintf("%.0f", v) : (v >= 10 ? sprintf("%.1f", v) : sprintf("%.3g", v)) }
    function stats(nic, f,   n, i, j, v, a) {
      n = cnt[nic, f]; if (n == 0) { S_n = 0; return }
      for (i = 1; i <= n; i++) a[i] = val[nic, f, i]
      for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
      S_n = n; S_min = a[1]; S_max = a[n]
      S_med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function label(n) { return n == "nic-emu" ? "nic-emu (vfio-user)" : (n == "qemu-e1000" ? "QEMU e1000" : (n == "virtio" ? "virtio-net (vhost=off)" : n)) }
    BEGIN {
      while ((getline line < res) > 0) {
        split(line, p, "\t"); k = p[1] SUBSEP p[3]
        val[p[1], p[3], ++cnt[k]] = p[4] + 0
      }
      nn = split(nics, N, " ")
      hasne = 0; hase = 0; hasv = 0
      for (i = 1; i <= nn; i++) { if (N[i] == "nic-emu") hasne = 1; if (N[i] == "qemu-e1000") hase = 1; if (N[i] == "virtio") hasv = 1 }
      if (mode == "text") {
        printf "%-44s %-24s %4s %10s %10s %10s\n", "figure", "NIC", "n", "min", "median", "max"
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
      any = 0; for (i = 1; i <= nn; i++) if (cnt[N[i], f] > 0) any = 1
      if (!any) next
      rat = ""
      stats("nic-emu", f); ne = S_n ? S_med : ""
      if (ne != "" && hase) { stats("qemu-e1000", f); if (S_n && S_med != 0) rat = rat sprintf("  nic-emu/e1000 = %.2f", ne / S_med) }
      if (ne != "" && hasv) { stats("virtio", f); if (S_n && S_med != 0) rat = rat sprintf("  nic-emu/virtio = %.2f", ne / S_med) }
      if (mode == "text") {
        for (i = 1; i <= nn; i++) {
          stats(N[i], f)
          if (S_n) printf "%-44s %-24s %4d %10s %10s %10s\n", lab, label(N[i]), S_n, fmt(S_min), fmt(S_med), fmt(S_max)
          else if (f !~ /^ne_/) printf "%-44s %-24s %4d %10s %10s %10s\n", lab, label(N[i]), 0, "-", "-", "-"
        }
        if (rat != "") printf "%-44s  ratio of medians:%s (%s is better)\n", "", rat, dir
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
