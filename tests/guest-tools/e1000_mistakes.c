/*
 * e1000_mistakes - a small userspace 82540EM driver (through uio_pci_generic) that sets
 * the card up, sends a few frames and polls for received ones, making at most one of the
 * mistakes driver writers make, on request. Built statically by scripts/build-overlays.sh
 * and run in the test guest by tests/e2e_workbench.rs, once per mistake: nic-emu must
 * name each mistake with the lint of the same id.
 *
 * Usage: e1000_mistakes [-d BDF] MISTAKE
 *   MISTAKE is `none` (the driver done right) or a lint id from src/device/lint.rs:
 *   bus-master-off ring-len-unaligned ring-len-zero rx-ring-empty tail-outside-ring
 *   ring-base-unaligned dma-outside-ram tx-no-eop tx-no-rs tx-cmd-in-cso
 *   tx-context-unused tx-no-ifcs tx-runt tx-desc-too-long head-written-enabled
 *   rx-stale-dd rx-buffers-overlap rx-broadcast-dropped rx-own-mac-filtered
 *   mta-uninitialised irq-cause-masked intx-stuck eerd-layout eecd-no-request
 *   sub-dword-access tx-disabled-doorbell rctl-bsize-reserved
 *
 * The right driver: memory space and bus mastering on, CTRL.RST, the MAC from the
 * EEPROM through EERD (82540 layout), MTA cleared, a 32-descriptor TX ring and a
 * 32-descriptor RX ring (2048-byte buffers, RCTL.BAM and SECRC set, RDT = 31 after
 * enabling), interrupts masked (it polls), 4 broadcast frames sent with
 * EOP | IFCS | RS, then 1.5 s of polling the RX ring (clearing each status before
 * giving the descriptor back). At the end it masks everything and resets the card, so
 * nothing of this run outlives it. It prints
 *   MISTAKE-BEGIN <name>
 *   MISTAKE-END <name> sent=<TX descriptors the card completed> received=<frames>
 * Exit status 0 when the setup worked, 1 otherwise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CTRL 0x0000
#define STATUS 0x0008
#define EECD 0x0010
#define EERD 0x0014
#define ICR 0x00c0
#define IMS 0x00d0
#define IMC 0x00d8
#define RCTL 0x0100
#define TCTL 0x0400
#define TIPG 0x0410
#define RDBAL 0x2800
#define RDBAH 0x2804
#define RDLEN 0x2808
#define RDH 0x2810
#define RDT 0x2818
#define RDTR 0x2820
#define TDBAL 0x3800
#define TDBAH 0x3804
#define TDLEN 0x3808
#define TDH 0x3810
#define TDT 0x3818
#define MTA 0x5200
#define RAL0 0x5400
#define RAH0 0x5404

#define CTRL_ASDE (1u << 5)
#define CTRL_SLU (1u << 6)
#define CTRL_RST (1u << 26)
#define EECD_SK (1u << 0)
#define EECD_CS (1u << 1)
#define EECD_DI (1u << 2)
#define EERD_START 1u
#define EERD_DONE (1u << 4)
#define ICR_RXO (1u << 6)
#define ICR_RXT0 (1u << 7)
#define RCTL_EN (1u << 1)
#define RCTL_LPE (1u << 5)
#define RCTL_BAM (1u << 15)
#define RCTL_BSIZE_4096 ((3u << 16) | (1u << 25)) /* BSIZE 11 with BSEX */
#define RCTL_BSEX (1u << 25)
#define RCTL_SECRC (1u << 26)
#define TCTL_EN (1u << 1)
#define TCTL_PSP (1u << 3)
#define TCTL_CT (0x0fu << 4)
#define TCTL_COLD (0x40u << 12)
#define RAH_AV (1u << 31)

#define CMD_EOP 0x01
#define CMD_IFCS 0x02
#define CMD_RS 0x08
#define CMD_DEXT 0x20

#define PCI_COMMAND 4
#define PCI_CMD_MEM (1u << 1)
#define PCI_CMD_MASTER (1u << 2)
#define PCI_CMD_INTX_DISABLE (1u << 10)

#define NDESC 32
#define BUFSZ 2048
#define PAGE 4096

struct tx_desc {
    uint64_t addr;
    uint16_t length;
    uint8_t cso;
    uint8_t cmd;
    uint8_t status;
    uint8_t css;
    uint16_t special;
};

struct rx_desc {
    uint64_t addr;
    uint16_t length;
    uint16_t csum;
    uint8_t status;
    uint8_t errors;
    uint16_t special;
};

static volatile uint8_t *bar;
static int cfg_fd, pagemap;
static const char *m = "none";

static uint32_t rd(uint32_t off) { return *(volatile uint32_t *)(bar + off); }
static void wr(uint32_t off, uint32_t v) { *(volatile uint32_t *)(bar + off) = v; }
static int is(const char *name) { return !strcmp(m, name); }

static void die(const char *what) {
    fprintf(stderr, "e1000_mistakes: %s: %s\n", what, strerror(errno));
    printf("MISTAKE-FAIL %s %s\n", m, what);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint16_t cmd_read(void) {
    uint16_t v;
    if (pread(cfg_fd, &v, 2, PCI_COMMAND) != 2) die("read config");
    return v;
}

static void cmd_write(uint16_t v) {
    if (pwrite(cfg_fd, &v, 2, PCI_COMMAND) != 2) die("write config");
}

/* Physical address of `va` (locked memory; uio has no IOMMU). */
static uint64_t phys(void *va) {
    uint64_t e;
    off_t off = (off_t)((uintptr_t)va / PAGE) * 8;
    if (pread(pagemap, &e, 8, off) != 8) die("read pagemap");
    if (!(e & (1ull << 63)) || (e & ((1ull << 55) - 1)) == 0) {
        errno = EFAULT;
        die("page not present in pagemap (root needed)");
    }
    return (e & ((1ull << 55) - 1)) * PAGE + ((uintptr_t)va % PAGE);
}

static void open_uio(const char *bdf) {
    char path[256];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/config", bdf);
    if ((cfg_fd = open(path, O_RDWR)) < 0) die("open config (bound to uio_pci_generic?)");
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/resource0", bdf);
    int rfd = open(path, O_RDWR | O_SYNC);
    if (rfd < 0) die("open resource0");
    bar = mmap(NULL, 0x20000, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
    if (bar == MAP_FAILED) die("mmap resource0");
    if ((pagemap = open("/proc/self/pagemap", O_RDONLY)) < 0) die("open pagemap");
}

/* EEPROM word `a`: through EERD (82540 layout), or bit-banged through EECD without the
 * EE_REQ/EE_GNT handshake for the eecd-no-request mistake. */
static uint16_t eeprom_word(unsigned a) {
    if (is("eecd-no-request")) {
        uint32_t bits = (0x6u << 6) | (a & 0x3f), v = 0, e = EECD_CS;
        wr(EECD, e);
        for (int i = 8; i >= 0; i--) {
            e = (bits >> i) & 1 ? e | EECD_DI : e & ~EECD_DI;
            wr(EECD, e);
            wr(EECD, e | EECD_SK);
            wr(EECD, e);
        }
        e &= ~EECD_DI;
        for (int i = 0; i < 16; i++) {
            wr(EECD, e | EECD_SK);
            v = (v << 1) | ((rd(EECD) >> 3) & 1);
            wr(EECD, e);
        }
        wr(EECD, 0);
        return (uint16_t)v;
    }
    if (is("eerd-layout")) {
        /* The 82541 layout: address in bits 15:2, DONE in bit 1. Not on this card. */
        wr(EERD, EERD_START | (a << 2));
        for (int i = 0; i < 100 && !(rd(EERD) & 2); i++) usleep(10);
    }
    wr(EERD, EERD_START | (a << 8));
    for (int i = 0; i < 10000; i++) {
        uint32_t v = rd(EERD);
        if (v & EERD_DONE) return (uint16_t)(v >> 16);
        usleep(10);
    }
    errno = ETIMEDOUT;
    die("EERD never done");
    return 0;
}

int main(int argc, char **argv) {
    const char *bdf = "0000:00:02.0";
    int o;
    while ((o = getopt(argc, argv, "d:")) != -1) {
        if (o == 'd') bdf = optarg;
        else {
            fprintf(stderr, "usage: e1000_mistakes [-d BDF] MISTAKE\n");
            return 2;
        }
    }
    if (optind < argc) m = argv[optind];
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("MISTAKE-BEGIN %s\n", m);
    open_uio(bdf);

    uint16_t cmd = cmd_read() | PCI_CMD_MEM | PCI_CMD_MASTER;
    if (is("bus-master-off")) cmd &= ~PCI_CMD_MASTER;
    cmd_write(cmd & ~PCI_CMD_INTX_DISABLE);

    wr(IMC, 0xffffffff);
    wr(CTRL, rd(CTRL) | CTRL_RST);
    usleep(10000);
    for (int i = 0; i < 1000 && (rd(CTRL) & CTRL_RST); i++) usleep(1000);
    wr(IMC, 0xffffffff);
    (void)rd(ICR);
    wr(CTRL, rd(CTRL) | CTRL_SLU | CTRL_ASDE);

    uint8_t mac[6];
    for (unsigned i = 0; i < 3; i++) {
        uint16_t w = eeprom_word(i);
        mac[2 * i] = (uint8_t)w;
        mac[2 * i + 1] = (uint8_t)(w >> 8);
    }
    if (is("rx-own-mac-filtered")) {
        /* Byte order swapped: the MAC written as if RAL held the last octets. */
        wr(RAL0, (uint32_t)mac[5] | mac[4] << 8 | mac[3] << 16 | (uint32_t)mac[2] << 24);
        wr(RAH0, (uint32_t)mac[1] | mac[0] << 8 | RAH_AV);
    }
    if (!is("mta-uninitialised"))
        for (int i = 0; i < 128; i++) wr(MTA + 4 * i, 0);

    if (mlockall(MCL_CURRENT | MCL_FUTURE)) die("mlockall");
    size_t len = 2 * PAGE + 2 * NDESC * BUFSZ;
    uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) die("mmap rings");
    memset(mem, 0, len);
    struct tx_desc *txr = (struct tx_desc *)mem;
    struct rx_desc *rxr = (struct rx_desc *)(mem + PAGE);
    uint8_t *txb = mem + 2 * PAGE, *rxb = txb + NDESC * BUFSZ;
    uint64_t txr_pa = phys(txr), rxr_pa = phys(rxr);

    /* ---- transmit ---- */
    wr(TDBAL, (uint32_t)txr_pa | (is("ring-base-unaligned") ? 8 : 0));
    wr(TDBAH, (uint32_t)(txr_pa >> 32));
    wr(TDLEN, is("ring-len-zero") ? 0 : NDESC * sizeof(struct tx_desc));
    wr(TDH, 0);
    wr(TDT, 0);
    wr(TIPG, 0x00602008);
    uint32_t tctl = TCTL_EN | TCTL_PSP | TCTL_CT | TCTL_COLD;
    if (is("tx-runt")) tctl &= ~TCTL_PSP;
    if (is("tx-disabled-doorbell")) tctl &= ~TCTL_EN;
    wr(TCTL, tctl);
    if (is("head-written-enabled")) wr(TDH, 0);

    /* ---- receive ---- */
    wr(RCTL, 0);
    wr(RDBAL, (uint32_t)rxr_pa);
    wr(RDBAH, (uint32_t)(rxr_pa >> 32));
    wr(RDLEN, NDESC * sizeof(struct rx_desc) + (is("ring-len-unaligned") ? 16 : 0));
    wr(RDH, 0);
    wr(RDT, 0);
    wr(RDTR, 0);
        /* rx-buffers-overlap: 4096-byte buffers (BSEX, long frames on) 2048 bytes apart. */
    for (int i = 0; i < NDESC; i++) rxr[i].addr = phys(rxb + i * BUFSZ);
    uint32_t rctl = RCTL_EN | RCTL_BAM | RCTL_SECRC;
    if (is("rx-broadcast-dropped")) rctl &= ~RCTL_BAM;
    if (is("rx-buffers-overlap")) rctl |= RCTL_BSIZE_4096 | RCTL_LPE;
    if (is("rctl-bsize-reserved")) rctl |= RCTL_BSEX;
    wr(RCTL, rctl);
    if (is("sub-dword-access"))
        *(volatile uint16_t *)(bar + RDT) = NDESC - 1;
    else if (is("tail-outside-ring"))
        wr(RDT, NDESC);
    else if (!is("rx-ring-empty"))
        wr(RDT, NDESC - 1);

    /* ---- interrupts: masked (this driver polls), except for the two mistakes ---- */
    if (is("irq-cause-masked")) wr(IMS, ICR_RXO); /* receive completions raise RXT0 */
    if (is("intx-stuck")) wr(IMS, ICR_RXT0);       /* and ICR is never read */

    double t0 = now();
    while (!(rd(STATUS) & 2) && now() - t0 < 5) usleep(10000);

    /* ---- send 4 broadcast frames (36 with tx-no-rs: more than the ring holds) ---- */
    int frames = is("tx-no-rs") ? NDESC + 4 : 4;
    unsigned tail = 0, sent = 0;
    for (int k = 0; k < frames; k++) {
        uint8_t *f = txb + (tail % NDESC) * BUFSZ;
        memset(f, 0xff, 6);
        memcpy(f + 6, mac, 6);
        f[12] = 0x88;
        f[13] = 0xb5; /* local experimental EtherType */
        for (int i = 14; i < 100; i++) f[i] = (uint8_t)i;
        struct tx_desc *d = &txr[tail];
        memset(d, 0, sizeof *d);
        d->addr = phys(f);
        d->length = is("tx-runt") ? 42 : 100;
        d->cmd = CMD_EOP | CMD_IFCS | CMD_RS;
        if (is("tx-no-eop")) d->cmd = CMD_IFCS | CMD_RS;
        if (is("tx-no-rs")) d->cmd = CMD_EOP | CMD_IFCS;
        if (is("tx-no-ifcs")) d->cmd = CMD_EOP | CMD_RS;
        if (is("tx-context-unused")) d->cmd |= CMD_DEXT;
        if (is("tx-cmd-in-cso")) { /* the command one byte early, CMD left 0 */
            d->cso = d->cmd;
            d->cmd = 0;
        }
        if (is("tx-desc-too-long")) d->length = 20000;
        if (is("dma-outside-ram")) d->addr = 0xf011b000; /* a kernel virtual address */
        tail = (tail + 1) % NDESC;
        __sync_synchronize();
        wr(TDT, tail);
        if (is("tx-no-rs")) { /* no DD to wait for: watch TDH */
            for (int i = 0; i < 1000 && rd(TDH) != tail; i++) usleep(100);
        }
    }
    for (int i = 0; i < 1000 && rd(TDH) != tail; i++) usleep(100);
    for (unsigned i = 0; i < NDESC; i++) sent += txr[i].status & 1;

    /* ---- poll the receive ring for 1.5 s ---- */
    unsigned next = 0, received = 0;
    t0 = now();
    while (now() - t0 < 1.5) {
        for (int k = 0; k < NDESC && (rxr[next].status & 1); k++) {
            if (!is("rx-stale-dd")) rxr[next].status = 0;
            received++;
            __sync_synchronize();
            wr(RDT, next);
            next = (next + 1) % NDESC;
        }
        usleep(1000);
    }

    wr(IMC, 0xffffffff);
    wr(RCTL, 0);
    wr(TCTL, 0);
    wr(CTRL, rd(CTRL) | CTRL_RST);
    usleep(10000);
    printf("MISTAKE-END %s sent=%u received=%u\n", m, sent, received);
    return 0;
}
