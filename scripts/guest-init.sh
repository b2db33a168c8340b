#!/bin/busybox sh
# scripts/guest-init.sh - /init of the nic-emu test guest (packed by build-guest.sh).
#
# Kernel command line parameters (all optional):
#   ne.mods=e1000[,virtio_pci,virtio_net] | none   modules to load (default e1000)
#   ne.if=eth0              interface to configure (default eth0)
#   ne.ip=10.233.0.2/24     IPv4 address/prefix for ne.if
#   ne.mac=52:54:...        set this MAC inside the guest before link up
#   ne.carrier=50           tenths of a second to wait for carrier (default 50)
#   ne.shell=1              interactive shell on the console after the command
#   ne.boot=cmos            count boots in CMOS byte 0x7e (survives a reset inside
#                           one QEMU): NE_BOOT=0 on the first boot, 1 after one
#                           `reboot -f`, ...; without it NE_BOOT=0 always
# The command is /ne/cmd, a shell script that boot-guest.sh appends to the
# initramfs as a second cpio archive.
#
# Console protocol (read by boot-guest.sh; keep it stable):
#   RIG-READY <uptime>      network configured, command about to run
#   RIG-NOCARRIER <if>      (warning) no carrier after the wait; cmd runs anyway
#   RIG-EXIT=<rc>           the command's exit status; the guest then powers off
#   RIG-BOOT <n>            (ne.boot=cmos only) this is boot number n
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc none /proc
mount -t sysfs none /sys
mount -t devtmpfs none /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts none /dev/pts
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root TERM=linux

arg() { # name default
  for kv in $(cat /proc/cmdline); do
    case $kv in "$1="*) echo "${kv#*=}"; return;; esac
  done
  echo "$2"
}
MODS=$(arg ne.mods e1000)
IF=$(arg ne.if eth0)
IP=$(arg ne.ip 10.233.0.2/24)
MAC=$(arg ne.mac "")
CARRIER=$(arg ne.carrier 50)
SHELL_AFTER=$(arg ne.shell 0)

# Boot number, kept in an RTC CMOS byte (index port 0x70, data 0x71 through /dev/port):
# QEMU zeroes it when it starts and keeps it across a guest reset.
NE_BOOT=0
if [ "$(arg ne.boot '')" = cmos ]; then
  cmos_sel() { printf '\176' | dd of=/dev/port bs=1 seek=112 count=1 conv=notrunc 2>/dev/null; }
  cmos_sel; NE_BOOT=$(dd if=/dev/port bs=1 skip=113 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
  cmos_sel; printf "\\$(printf %o $(( (${NE_BOOT:-0} + 1) & 255 )))" |
    dd of=/dev/port bs=1 seek=113 count=1 conv=notrunc 2>/dev/null
  echo "RIG-BOOT ${NE_BOOT:=0}"
fi
export NE_BOOT

# busybox-static has no lspci: a small sysfs-based stand-in
cat >/bin/lspci <<'EOF'
#!/bin/sh
for d in /sys/bus/pci/devices/*; do
  drv=$(readlink "$d/driver"); drv=${drv##*/}
  echo "${d##*/} class=$(cat "$d/class") id=$(cut -c3- "$d/vendor"):$(cut -c3- "$d/device")" \
       "subsys=$(cut -c3- "$d/subsystem_vendor"):$(cut -c3- "$d/subsystem_device")" \
       "irq=$(cat "$d/irq") driver=${drv:-none}"
done
EOF
chmod 755 /bin/lspci

ip link set lo up
if [ "$MODS" != none ]; then
  for m in $(echo "$MODS" | tr ',' ' '); do
    modprobe "$m" || echo "ne-init: modprobe $m failed"
  done
  n=0
  while [ ! -d "/sys/class/net/$IF" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  if [ -d "/sys/class/net/$IF" ]; then
    [ -n "$MAC" ] && ip link set "$IF" address "$MAC"
    ip addr add "$IP" dev "$IF"
    ip link set "$IF" up
    n=0
    while [ "$(cat "/sys/class/net/$IF/carrier" 2>/dev/null)" != 1 ] && [ $n -lt "$CARRIER" ]; do
      sleep 0.1; n=$((n + 1))
    done
    [ "$(cat "/sys/class/net/$IF/carrier" 2>/dev/null)" = 1 ] || echo "RIG-NOCARRIER $IF"
  else
    echo "ne-init: no interface $IF"
  fi
fi

echo "RIG-READY $(cut -d' ' -f1 /proc/uptime)"
rc=127
if [ -f /ne/cmd ]; then
  cd /root
  sh /ne/cmd </dev/console
  rc=$?
fi
echo "RIG-EXIT=$rc"
[ "$SHELL_AFTER" = 1 ] && setsid cttyhack sh
sync
poweroff -f
