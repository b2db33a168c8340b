/*
 * embed.c - nic-emu from C: create an e1000 over malloc'd guest RAM, bring it up the way
 * a driver does, send a frame and receive it back.
 *
 * The program plays both the machine (it owns guest RAM and forwards BAR accesses) and
 * the guest driver (it writes descriptors and registers). The "outside world" is a
 * one-frame loopback: the frame the guest transmits comes back in as a received frame.
 *
 * Build (from the repository root):
 *   cargo build --lib --no-default-features --features generate-bindings
 *   cc -std=c11 -Wall -Wextra -Iinclude examples/c/embed.c target/debug/libnic_emu.a \
 *      -lpthread -ldl -lm -o embed
 *   ./embed        # prints what happened; exit status 0 when every check passed
 */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nic_emu.h"

/* Registers (BAR0 offsets) and bits, from the 8254x manual. */
#define CTRL 0x0000
#define STATUS 0x0008
#define EERD 0x0014
#define ICR 0x00C0
#define IMS 0x00D0
#define RCTL 0x0100
#define TCTL 0x0400
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
#define CTRL_SLU (1u << 6)
#define CTRL_RST (1u << 26)
#define STATUS_LU (1u << 1)
#define EERD_START 1u
#define EERD_DONE (1u << 4)
#define ICR_TXDW (1u << 0)
#define ICR_LSC (1u << 2)
#define ICR_RXT0 (1u << 7)
#define RCTL_EN (1u << 1)
#define RCTL_BAM (1u << 15)
#define RCTL_SECRC (1u << 26)
#define TCTL_EN (1u << 1)
#define TCTL_PSP (1u << 3)
#define TXD_EOP 0x01
#define TXD_IFCS 0x02
#define TXD_RS 0x08
#define DESC_DD 0x01
#define DESC_EOP 0x02
#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO_MEM_MASTER 0x0007

/* Guest physical layout: 1 MiB of RAM at 1 GiB. */
#define RAM_BASE 0x40000000ull
#define RAM_SIZE (1u << 20)
#define TX_RING (RAM_BASE + 0x1000)
#define RX_RING (RAM_BASE + 0x2000)
#define TX_BUF (RAM_BASE + 0x10000)
#define RX_BUFS (RAM_BASE + 0x20000)
#define RING_LEN 8
#define RX_BUF_SIZE 2048

static int failures;
#define CHECK(cond, ...)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      failures++;                                                                          \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                      \
      fprintf(stderr, __VA_ARGS__);                                                        \
      fprintf(stderr, "\n");                                                               \
    }                                                                                      \
  } while (0)
#define OK(call)                                                                           \
  do {                                                                                     \
    NicEmuStatus st_ = (call);                                                             \
    if (st_ != NIC_EMU_STATUS_OK) {                                                        \
      fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                   \
              nic_emu_status_string(st_));                                                 \
      exit(2);                                                                             \
    }                                                                                      \
  } while (0)

/* What the callbacks saw. */
struct host {
  NicEmuDevice *dev;
  uint8_t sent[2048];
  size_t sent_len;
  int frames_sent;
  int irq_level;
  int irq_raises;
  NicEmuStatus reentry_status;
};

static bool on_send(void *user, const uint8_t *frame, size_t len) {
  struct host *h = user;
  h->frames_sent++;
  /* Calling back into the same device from its callback is refused, not deadlocked. */
  bool ready;
  h->reentry_status = nic_emu_rx_ready(h->dev, &ready);
  if (len > sizeof h->sent) return false;
  memcpy(h->sent, frame, len);
  h->sent_len = len;
  return true;
}

static void on_irq(void *user, bool asserted) {
  struct host *h = user;
  if (asserted && !h->irq_level) h->irq_raises++;
  h->irq_level = asserted;
}

/* Guest RAM as the guest sees it. */
static uint8_t *ram;
static uint8_t *gpa(uint64_t addr) { return ram + (addr - RAM_BASE); }
static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static uint32_t rd32(NicEmuDevice *d, uint64_t off) {
  uint8_t b[4];
  OK(nic_emu_bar_read(d, NIC_EMU_BAR_MMIO, off, b, 4));
  return (uint32_t)get_le(b, 4);
}
static void wr32(NicEmuDevice *d, uint64_t off, uint32_t v) {
  uint8_t b[4];
  put_le(b, v, 4);
  OK(nic_emu_bar_write(d, NIC_EMU_BAR_MMIO, off, b, 4));
}
static uint16_t eeprom_word(NicEmuDevice *d, uint32_t word) {
  wr32(d, EERD, (word << 8) | EERD_START);
  for (int i = 0; i < 100; i++) {
    uint32_t v = rd32(d, EERD);
    if (v & EERD_DONE) return (uint16_t)(v >> 16);
  }
  CHECK(0, "EERD never completed for word %u", word);
  return 0;
}

int main(void) {
  printf("nic-emu %s\n", nic_emu_version());
  void *mem = NULL;
  if (posix_memalign(&mem, 4096, RAM_SIZE) != 0) return 2; /* page-aligned malloc */
  ram = mem;
  memset(ram, 0, RAM_SIZE);

  struct host host = {0};
  NicEmuConfig cfg;
  OK(nic_emu_config_init(&cfg));
  const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xC0, 0xFF, 0xEE};
  memcpy(cfg.mac, mac, 6);
  cfg.user_data = &host;
  cfg.send_frame = on_send;
  cfg.set_irq_level = on_irq;
  OK(nic_emu_create(&cfg, &host.dev));
  NicEmuDevice *dev = host.dev;
  NicEmuMemRegion region = {.guest_addr = RAM_BASE, .host_addr = ram, .len = RAM_SIZE};
  OK(nic_emu_set_memory(dev, &region, 1));

  /* Errors are return codes. */
  CHECK(nic_emu_bar_read(dev, 0, 0, NULL, 4) == NIC_EMU_STATUS_NULL_POINTER, "NULL data");
  uint8_t b4[4];
  CHECK(nic_emu_bar_read(dev, 0, 0, b4, 3) == NIC_EMU_STATUS_INVALID_LENGTH, "3-byte read");
  CHECK(nic_emu_bar_read(dev, 2, 0, b4, 4) == NIC_EMU_STATUS_INVALID_ARGUMENT, "BAR 2");
  CHECK(nic_emu_bar_read(dev, 0, 0x20000, b4, 4) == NIC_EMU_STATUS_OUT_OF_RANGE, "past BAR0");

  /* PCI identity, then what the driver's probe does: memory, I/O, bus master. */
  OK(nic_emu_config_read(dev, 0, b4, 4));
  printf("pci: vendor %04x device %04x\n", (unsigned)get_le(b4, 2),
         (unsigned)get_le(b4 + 2, 2));
  CHECK(get_le(b4, 4) == 0x100E8086u, "vendor/device %08x", (unsigned)get_le(b4, 4));
  uint8_t cmd[2];
  put_le(cmd, PCI_COMMAND_IO_MEM_MASTER, 2);
  OK(nic_emu_config_write(dev, PCI_COMMAND, cmd, 2));

  /* Reset, link up, MAC from the EEPROM through EERD. */
  wr32(dev, CTRL, rd32(dev, CTRL) | CTRL_RST);
  wr32(dev, CTRL, rd32(dev, CTRL) | CTRL_SLU);
  CHECK(rd32(dev, STATUS) & STATUS_LU, "link down after SLU");
  uint8_t eeprom_mac[6];
  for (uint32_t w = 0; w < 3; w++) put_le(eeprom_mac + 2 * w, eeprom_word(dev, w), 2);
  printf("mac: %02x:%02x:%02x:%02x:%02x:%02x\n", eeprom_mac[0], eeprom_mac[1], eeprom_mac[2],
         eeprom_mac[3], eeprom_mac[4], eeprom_mac[5]);
  CHECK(memcmp(eeprom_mac, mac, 6) == 0, "EEPROM MAC differs from the configured one");
  (void)rd32(dev, ICR); /* clear what reset and link-up raised */

  /* Rings: RX with buffers posted, TX empty; interrupts on; enable both. */
  for (int i = 0; i < RING_LEN; i++)
    put_le(gpa(RX_RING + 16 * (uint64_t)i), RX_BUFS + (uint64_t)i * RX_BUF_SIZE, 8);
  wr32(dev, RDBAL, (uint32_t)RX_RING);
  wr32(dev, RDBAH, (uint32_t)(RX_RING >> 32));
  wr32(dev, RDLEN, RING_LEN * 16);
  wr32(dev, RDH, 0);
  wr32(dev, RDT, RING_LEN - 1);
  wr32(dev, TDBAL, (uint32_t)TX_RING);
  wr32(dev, TDBAH, (uint32_t)(TX_RING >> 32));
  wr32(dev, TDLEN, RING_LEN * 16);
  wr32(dev, TDH, 0);
  wr32(dev, TDT, 0);
  wr32(dev, IMS, ICR_RXT0 | ICR_TXDW | ICR_LSC);
  wr32(dev, RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
  wr32(dev, TCTL, TCTL_EN | TCTL_PSP);
  bool ready = false;
  OK(nic_emu_rx_ready(dev, &ready));
  CHECK(ready, "RX not ready after bring-up");

  /* A frame addressed to us: destination our MAC, source a neighbour, IPv4 ethertype. */
  uint8_t frame[64];
  memcpy(frame, mac, 6);
  const uint8_t peer[6] = {0x02, 0, 0, 0, 0, 0x01};
  memcpy(frame + 6, peer, 6);
  frame[12] = 0x08;
  frame[13] = 0x00;
  for (int i = 14; i < (int)sizeof frame; i++) frame[i] = (uint8_t)i;

  /* Transmit it: one legacy descriptor, EOP|IFCS|RS, then bump TDT. */
  memcpy(gpa(TX_BUF), frame, sizeof frame);
  uint8_t *txd = gpa(TX_RING);
  put_le(txd, TX_BUF, 8);
  put_le(txd + 8, sizeof frame, 2);
  txd[11] = TXD_EOP | TXD_IFCS | TXD_RS;
  wr32(dev, TDT, 1);
  printf("tx: %d frame(s) sent, %zu bytes, TDH %u, descriptor status %02x\n",
         host.frames_sent, host.sent_len, rd32(dev, TDH), txd[12]);
  CHECK(host.frames_sent == 1, "send callback saw %d frames", host.frames_sent);
  CHECK(host.sent_len == sizeof frame && memcmp(host.sent, frame, sizeof frame) == 0,
        "sent frame differs");
  CHECK(txd[12] & DESC_DD, "TX descriptor not done");
  CHECK(host.reentry_status == NIC_EMU_STATUS_REENTRANT, "reentry from callback gave %d",
        (int)host.reentry_status);
  (void)rd32(dev, ICR);

  /* The world answers: deliver the frame we sent back to the guest. */
  NicEmuRxOutcome outcome = -1;
  OK(nic_emu_receive_frame(dev, host.sent, host.sent_len, &outcome));
  const uint8_t *rxd = gpa(RX_RING);
  uint16_t rx_len = (uint16_t)get_le(rxd + 8, 2);
  printf("rx: outcome %d, descriptor length %u, status %02x, RDH %u, irq %s\n", (int)outcome,
         rx_len, rxd[12], rd32(dev, RDH), host.irq_level ? "asserted" : "low");
  CHECK(outcome == NIC_EMU_RX_OUTCOME_DELIVERED, "outcome %d", (int)outcome);
  CHECK((rxd[12] & (DESC_DD | DESC_EOP)) == (DESC_DD | DESC_EOP), "status %02x", rxd[12]);
  CHECK(rx_len == sizeof frame, "length %u", rx_len);
  CHECK(memcmp(gpa(RX_BUFS), frame, sizeof frame) == 0, "received bytes differ");
  CHECK(host.irq_level && host.irq_raises > 0, "no interrupt for the received frame");
  uint32_t icr = rd32(dev, ICR);
  CHECK(icr & ICR_RXT0, "ICR %08x without RXT0", icr);
  CHECK(!host.irq_level, "interrupt still asserted after reading ICR");

  /* Interrupt moderation in virtual time: with a receive delay (RDTR, 1.024 us units)
   * the interrupt waits for the timer; the embedder moves the clock and runs timers. */
  wr32(dev, RDTR, 100);
  OK(nic_emu_receive_frame(dev, frame, sizeof frame, &outcome));
  uint64_t now, deadline;
  OK(nic_emu_now_ns(dev, &now));
  OK(nic_emu_next_timer_deadline(dev, &deadline));
  CHECK(outcome == NIC_EMU_RX_OUTCOME_DELIVERED && !host.irq_level, "delayed frame");
  CHECK(deadline != NIC_EMU_NO_DEADLINE && deadline > now, "deadline %llu",
        (unsigned long long)deadline);
  OK(nic_emu_set_time_ns(dev, deadline));
  OK(nic_emu_run_timers(dev));
  printf("timer: receive interrupt delayed %llu ns, irq %s after run_timers\n",
         (unsigned long long)(deadline - now), host.irq_level ? "asserted" : "low");
  CHECK(host.irq_level, "no interrupt after the receive timer expired");
  (void)rd32(dev, ICR);

  /* A frame for somebody else is filtered (no promiscuous mode). */
  frame[5] ^= 0x01;
  OK(nic_emu_receive_frame(dev, frame, sizeof frame, &outcome));
  CHECK(outcome == NIC_EMU_RX_OUTCOME_FILTERED, "foreign frame outcome %d", (int)outcome);

  NicEmuMetrics m;
  OK(nic_emu_get_metrics(dev, &m));
  printf("metrics: tx_frames %llu rx_frames %llu rx_filtered %llu irq_asserts %llu "
         "dma_errors %llu\n",
         (unsigned long long)m.tx_frames, (unsigned long long)m.rx_frames,
         (unsigned long long)m.rx_filtered, (unsigned long long)m.irq_asserts,
         (unsigned long long)m.dma_errors);
  CHECK(m.rx_frames == 2 && m.rx_filtered == 1 && m.dma_errors == 0, "metrics");

  OK(nic_emu_destroy(dev));
  free(mem); /* only after destroy: the device could reach it until then */
  if (failures) {
    printf("embed: %d check(s) failed\n", failures);
    return 1;
  }
  printf("embed: all checks passed\n");
  return 0;
}
