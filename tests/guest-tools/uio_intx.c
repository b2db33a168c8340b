/*
 * uio_intx - a minimal userspace receive driver for the 82540EM through uio_pci_generic,
 * driven by the legacy INTx interrupt. Built statically by scripts/build-overlays.sh and
 * run in the test guest by tests/e2e_drivers.rs.
 *
 * Usage: uio_intx [-V] [-d BDF] [-n FRAMES] [-i IDLE_MS] [-t TOTAL_S]
 *   -V  through vfio-pci (type1 IOMMU: a virtual IOMMU in the guest) instead of
 *       uio_pci_generic: BAR0 and config space from the VFIO device, the ring mapped
 *       at IOVA 0x10000000 with VFIO_IOMMU_MAP_DMA, INTx as an eventfd, unmasked with
 *       VFIO_DEVICE_SET_IRQS
 *   -d  PCI device, bound to uio_pci_generic (or vfio-pci) already (default 0000:00:02.0)
 *   -n  stop once this many marked frames (see seq below) arrived, 0.5 s later (default
 *       0: run until idle)
 *   -i  stop after IDLE_MS without an interrupt once frames arrived (default 3000)
 *   -t  stop after TOTAL_S seconds in any case (default 60)
 *
 * What it does: maps BAR0 from sysfs resource0, resets the card, sets up a 32-entry
 * legacy RX ring in locked memory whose physical addresses come from /proc/self/pagemap
 * (uio gives no IOMMU: the DMA address is the physical one), enables RX with RDTR = ITR =
 * 0 and IMS = RXT0 | RXO | LSC, and prints "UIO-READY" once the link is up. Then, per
 * interrupt (read() on /dev/uioN returns once uio_pci_generic's handler saw the PCI
 * status interrupt bit and masked the line with the command register's INTx-disable
 * bit): read ICR, take every descriptor with DD set, give them back (RDT), unmask INTx by
 * clearing command bit 10 through the sysfs config file, and print
 *   INTX n=<irq #> t=<monotonic s> icr=<ICR> frames=<k> seq=<a,b,..> total=<frames so far>
 * where seq lists the sequence numbers of frames whose UDP payload starts with "NEIX"
 * and a 32-bit big-endian number. With -V the same happens through VFIO (vfio-pci's
 * handler checks and masks the same way; the ring's addresses are IOVAs). At the end:
 *   UIO-SUMMARY interrupts=<I> with_frames=<F> empty=<E> frames=<N> marked=<K>
 *               max_per_irq=<M> multi=<interrupts with more than one frame>
 *               uio_count=<interrupts the kernel signalled: uio's event count, or
 *               the sum of the eventfd's counts with -V>
 * Exit status 0 when the setup worked (whatever arrived), 1 otherwise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#undef CTRL /* <sys/ioctl.h> brings a tty macro of that name */
#define CTRL 0x0000
#define STATUS 0x0008
#define ICR 0x00c0
#define ITR 0x00c4
#define IMS 0x00d0
#define IMC 0x00d8
#define RCTL 0x0100
#define RDBAL 0x2800
#define RDBAH 0x2804
#define RDLEN 0x2808
#define RDH 0x2810
#define RDT 0x2818
#define RDTR 0x2820
#define RADV 0x282c

#define CTRL_ASDE (1u << 5)
#define CTRL_SLU (1u << 6)
#define CTRL_RST (1u << 26)
#define STATUS_LU (1u << 1)
#define ICR_LSC (1u << 2)
#define ICR_RXO (1u << 6)
#define ICR_RXT0 (1u << 7)
#define RCTL_EN (1u << 1)
#define RCTL_UPE (1u << 3)
#define RCTL_MPE (1u << 4)
#define RCTL_BAM (1u << 15)
#define RCTL_SECRC (1u << 26)

#define PCI_COMMAND 4
#define CMD_MEM (1u << 1)
#define CMD_MASTER (1u << 2)
#define CMD_INTX_DISABLE (1u << 10)

#define NDESC 32
#define BUFSZ 2048
#define PAGE 4096

struct rx_desc {
    uint64_t addr;
    uint16_t length;
    uint16_t csum;
    uint8_t status;
    uint8_t errors;
    uint16_t special;
};

static volatile uint8_t *bar;

static uint32_t rd(uint32_t off) { return *(volatile uint32_t *)(bar + off); }
static void wr(uint32_t off, uint32_t v) { *(volatile uint32_t *)(bar + off) = v; }

static void die(const char *what) {
    fprintf(stderr, "uio_intx: %s: %s\n", what, strerror(errno));
    printf("UIO-FAIL %s\n", what);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint16_t cfg_read16(int fd, off_t off) {
    uint16_t v;
    if (pread(fd, &v, 2, off) != 2) die("read config");
    return v;
}

static void cfg_write16(int fd, off_t off, uint16_t v) {
    if (pwrite(fd, &v, 2, off) != 2) die("write config");
}

/* Physical address of the page holding `va` (locked, present). */
static uint64_t phys(int pagemap, void *va) {
    uint64_t e;
    off_t off = (off_t)((uintptr_t)va / PAGE) * 8;
    if (pread(pagemap, &e, 8, off) != 8) die("read pagemap");
    if (!(e & (1ull << 63)) || (e & ((1ull << 55) - 1)) == 0) {
        errno = EFAULT;
        die("page not present in pagemap (root needed)");
    }
    return (e & ((1ull << 55) - 1)) * PAGE + ((uintptr_t)va % PAGE);
}

/* How the driver reaches the device: uio_pci_generic or vfio-pci. */
struct dev {
    int vfio;          /* 0: uio, 1: vfio */
    int irq_fd;        /* uio: /dev/uioN; vfio: the INTx eventfd */
    int cfg_fd;        /* uio: sysfs config; vfio: the device fd */
    off_t cfg_off;     /* offset of config space in cfg_fd */
    int pagemap;       /* uio: /proc/self/pagemap */
    uint8_t *dma_base; /* vfio: start of the DMA-mapped area, at IOVA_BASE */
    char name[300];    /* /dev/uioN or /dev/vfio/<group> */
};

#define IOVA_BASE 0x10000000ull

static uint16_t cmd_read(struct dev *d) { return cfg_read16(d->cfg_fd, d->cfg_off + PCI_COMMAND); }
static void cmd_write(struct dev *d, uint16_t v) { cfg_write16(d->cfg_fd, d->cfg_off + PCI_COMMAND, v); }

/* The address the device must use for `va`. */
static uint64_t dma_addr(struct dev *d, void *va) {
    if (d->vfio) return IOVA_BASE + (uint64_t)((uint8_t *)va - d->dma_base);
    return phys(d->pagemap, va);
}

static void open_uio(struct dev *d, const char *bdf) {
    char path[256];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/uio", bdf);
    DIR *dir = opendir(path);
    if (!dir) die("no uio directory (is the device bound to uio_pci_generic?)");
    struct dirent *de;
    while ((de = readdir(dir)))
        if (!strncmp(de->d_name, "uio", 3)) snprintf(d->name, sizeof d->name, "/dev/%s", de->d_name);
    closedir(dir);
    if (!d->name[0]) die("no uioN under the device");
    if ((d->irq_fd = open(d->name, O_RDWR)) < 0) die(d->name);
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/config", bdf);
    if ((d->cfg_fd = open(path, O_RDWR)) < 0) die("open config");
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/resource0", bdf);
    int rfd = open(path, O_RDWR | O_SYNC);
    if (rfd < 0) die("open resource0");
    bar = mmap(NULL, 0x20000, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
    if (bar == MAP_FAILED) die("mmap resource0");
    if ((d->pagemap = open("/proc/self/pagemap", O_RDONLY)) < 0) die("open pagemap");
}

static int container = -1;

static void open_vfio(struct dev *d, const char *bdf) {
    char path[256], link[256];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/iommu_group", bdf);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) die("no iommu_group (is there an IOMMU?)");
    link[n] = 0;
    snprintf(d->name, sizeof d->name, "/dev/vfio/%s", strrchr(link, '/') + 1);
    if ((container = open("/dev/vfio/vfio", O_RDWR)) < 0) die("open /dev/vfio/vfio");
    if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) die("VFIO API version");
    if (!ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU)) die("no VFIO type1 IOMMU");
    int group = open(d->name, O_RDWR);
    if (group < 0) die(d->name);
    struct vfio_group_status gs = {.argsz = sizeof gs};
    if (ioctl(group, VFIO_GROUP_GET_STATUS, &gs) || !(gs.flags & VFIO_GROUP_FLAGS_VIABLE))
        die("VFIO group not viable (is every device of the group bound to vfio-pci?)");
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container)) die("VFIO_GROUP_SET_CONTAINER");
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)) die("VFIO_SET_IOMMU");
    int dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
    if (dev < 0) die("VFIO_GROUP_GET_DEVICE_FD");
    struct vfio_region_info ri = {.argsz = sizeof ri, .index = VFIO_PCI_BAR0_REGION_INDEX};
    if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri)) die("BAR0 region info");
    bar = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev, ri.offset);
    if (bar == MAP_FAILED) die("mmap BAR0");
    struct vfio_region_info ci = {.argsz = sizeof ci, .index = VFIO_PCI_CONFIG_REGION_INDEX};
    if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ci)) die("config region info");
    d->cfg_fd = dev;
    d->cfg_off = ci.offset;
    if ((d->irq_fd = eventfd(0, 0)) < 0) die("eventfd");
    char buf[sizeof(struct vfio_irq_set) + sizeof(int)];
    struct vfio_irq_set *is = (struct vfio_irq_set *)buf;
    *is = (struct vfio_irq_set){.argsz = sizeof buf,
                                .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                                .index = VFIO_PCI_INTX_IRQ_INDEX,
                                .start = 0,
                                .count = 1};
    memcpy(is->data, &d->irq_fd, sizeof(int));
    if (ioctl(dev, VFIO_DEVICE_SET_IRQS, is)) die("VFIO_DEVICE_SET_IRQS (INTx eventfd)");
}

/* Map [mem, mem + len) at IOVA_BASE for the device (vfio only). */
static void dma_map(struct dev *d, uint8_t *mem, size_t len) {
    d->dma_base = mem;
    if (!d->vfio) return;
    struct vfio_iommu_type1_dma_map m = {.argsz = sizeof m,
                                         .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                                         .vaddr = (uintptr_t)mem,
                                         .iova = IOVA_BASE,
                                         .size = len};
    if (ioctl(container, VFIO_IOMMU_MAP_DMA, &m)) die("VFIO_IOMMU_MAP_DMA");
}

/* Wait up to `ms` for an interrupt: 1 with the driver's running count in *count, 0 on
 * timeout. */
static int wait_irq(struct dev *d, int ms, uint32_t *count) {
    struct pollfd p = {.fd = d->irq_fd, .events = POLLIN};
    int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) return 0;
    if (r < 0) die("poll");
    if (r == 0) return 0;
    if (d->vfio) {
        uint64_t v;
        if (read(d->irq_fd, &v, 8) != 8) die("read eventfd");
        *count += (uint32_t)v;
    } else if (read(d->irq_fd, count, 4) != 4) {
        die("read uio");
    }
    return 1;
}

/* Both uio_pci_generic and vfio-pci masked the line with INTx-disable in their handler. */
static void unmask(struct dev *d) {
    if (d->vfio) {
        struct vfio_irq_set u = {.argsz = sizeof u,
                                 .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
                                 .index = VFIO_PCI_INTX_IRQ_INDEX,
                                 .start = 0,
                                 .count = 1};
        if (ioctl(d->cfg_fd, VFIO_DEVICE_SET_IRQS, &u)) die("VFIO_DEVICE_SET_IRQS (unmask)");
    } else {
        cmd_write(d, cmd_read(d) & ~CMD_INTX_DISABLE);
    }
}

int main(int argc, char **argv) {
    const char *bdf = "0000:00:02.0";
    unsigned expect = 0, idle_ms = 3000, total_s = 60;
    struct dev dv = {0};
    struct dev *d = &dv;
    int o;
    while ((o = getopt(argc, argv, "d:n:i:t:V")) != -1) {
        switch (o) {
        case 'd': bdf = optarg; break;
        case 'n': expect = strtoul(optarg, NULL, 0); break;
        case 'i': idle_ms = strtoul(optarg, NULL, 0); break;
        case 't': total_s = strtoul(optarg, NULL, 0); break;
        case 'V': d->vfio = 1; break;
        default:
            fprintf(stderr, "usage: uio_intx [-V] [-d BDF] [-n FRAMES] [-i IDLE_MS] [-t TOTAL_S]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (d->vfio) open_vfio(d, bdf); else open_uio(d, bdf);

    /* memory space + bus master on, INTx not disabled */
    uint16_t cmd = cmd_read(d);
    cmd_write(d, (cmd | CMD_MEM | CMD_MASTER) & ~CMD_INTX_DISABLE);

    /* reset, everything masked */
    wr(IMC, 0xffffffff);
    wr(CTRL, rd(CTRL) | CTRL_RST);
    usleep(10000);
    for (int i = 0; i < 1000 && (rd(CTRL) & CTRL_RST); i++) usleep(1000);
    wr(IMC, 0xffffffff);
    (void)rd(ICR);
    wr(CTRL, (rd(CTRL) | CTRL_SLU | CTRL_ASDE));

    /* ring and buffers in locked memory */
    if (mlockall(MCL_CURRENT | MCL_FUTURE)) die("mlockall");
    size_t len = PAGE + NDESC * BUFSZ;
    uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) die("mmap ring");
    memset(mem, 0, len);
    dma_map(d, mem, len);
    struct rx_desc *ring = (struct rx_desc *)mem;
    uint8_t *bufs = mem + PAGE;
    for (int i = 0; i < NDESC; i++) ring[i].addr = dma_addr(d, bufs + i * BUFSZ);
    uint64_t ring_pa = dma_addr(d, ring);

    wr(RCTL, 0);
    wr(RDBAL, (uint32_t)ring_pa);
    wr(RDBAH, (uint32_t)(ring_pa >> 32));
    wr(RDLEN, NDESC * sizeof(struct rx_desc));
    wr(RDH, 0);
    wr(RDT, NDESC - 1);
    wr(RDTR, 0);
    wr(RADV, 0);
    wr(ITR, 0);
    wr(RCTL, RCTL_EN | RCTL_UPE | RCTL_MPE | RCTL_BAM | RCTL_SECRC);

    double t0 = now();
    while (!(rd(STATUS) & STATUS_LU) && now() - t0 < 5) usleep(10000);
    printf("UIO-LINK %s status=%#x\n", (rd(STATUS) & STATUS_LU) ? "up" : "down", rd(STATUS));
    (void)rd(ICR);
    wr(IMS, ICR_RXT0 | ICR_RXO | ICR_LSC);
    printf("UIO-READY dev=%s via=%s ring=%#llx\n", bdf, d->name, (unsigned long long)ring_pa);

    unsigned irqs = 0, with_frames = 0, empty = 0, frames = 0, marked = 0, maxper = 0, multi = 0;
    uint32_t uio_count = 0;
    unsigned next = 0;
    double start = now(), last = start;
    for (;;) {
        double t = now();
        if (t - start > total_s) break;
        if (frames > 0 && (t - last) * 1000 > idle_ms) break;
        if (expect && marked >= expect && (t - last) * 1000 > 500) break;
        if (!wait_irq(d, 100, &uio_count)) continue;
        last = now();
        irqs++;
        uint32_t icr = rd(ICR);
        unsigned k = 0;
        char seqs[512] = "";
        size_t sl = 0;
        while (ring[next].status & 1) {
            struct rx_desc *dsc = &ring[next];
            const uint8_t *f = bufs + next * BUFSZ;
            if (dsc->length >= 42 + 8 && !memcmp(f + 42, "NEIX", 4)) {
                uint32_t s = (uint32_t)f[46] << 24 | f[47] << 16 | f[48] << 8 | f[49];
                if (sl < sizeof seqs - 16)
                    sl += snprintf(seqs + sl, sizeof seqs - sl, "%s%u", sl ? "," : "", s);
                marked++;
            }
            dsc->status = 0;
            k++;
            next = (next + 1) % NDESC;
        }
        if (k) wr(RDT, (next + NDESC - 1) % NDESC);
        frames += k;
        if (k) with_frames++; else empty++;
        if (k > maxper) maxper = k;
        if (k > 1) multi++;
        unmask(d);
        printf("INTX n=%u t=%.6f icr=%#x frames=%u seq=%s total=%u\n", irqs, last - start, icr, k,
               sl ? seqs : "-", frames);
    }
    printf("UIO-SUMMARY interrupts=%u with_frames=%u empty=%u frames=%u marked=%u max_per_irq=%u "
           "multi=%u uio_count=%u\n",
           irqs, with_frames, empty, frames, marked, maxper, multi, uio_count);
    wr(IMC, 0xffffffff);
    wr(RCTL, 0);
    return 0;
}
