//! Register offsets (BAR0-relative) and bit names of the 82540EM, as the Intel 8254x
//! software developer's manual names them. Every offset the device model uses lives here.

#![allow(missing_docs)] // names are the datasheet's; each group below says what it is

/// Size of BAR0 (memory-mapped registers).
pub const BAR0_SIZE: u64 = 0x2_0000;
/// Size of BAR1 (I/O window: IOADDR at 0, IODATA at 4).
pub const BAR1_SIZE: u64 = 0x40;
/// I/O BAR: address latch.
pub const IOADDR: u64 = 0x00;
/// I/O BAR: data window onto the register named by IOADDR.
pub const IODATA: u64 = 0x04;

// ---- general ----
pub const CTRL: u32 = 0x0000;
pub const STATUS: u32 = 0x0008;
pub const EECD: u32 = 0x0010;
pub const EERD: u32 = 0x0014;
pub const CTRL_EXT: u32 = 0x0018;
/// Flash access: the 82541/82547's, not a register of the 82540EM or 82545EM.
pub const FLA: u32 = 0x001C;
pub const MDIC: u32 = 0x0020;
pub const FCAL: u32 = 0x0028;
pub const FCAH: u32 = 0x002C;
pub const FCT: u32 = 0x0030;
pub const VET: u32 = 0x0038;
pub const ICR: u32 = 0x00C0;
pub const ITR: u32 = 0x00C4;
pub const ICS: u32 = 0x00C8;
pub const IMS: u32 = 0x00D0;
pub const IMC: u32 = 0x00D8;
pub const RCTL: u32 = 0x0100;
pub const FCTTV: u32 = 0x0170;
pub const TXCW: u32 = 0x0178;
pub const RXCW: u32 = 0x0180;
pub const TCTL: u32 = 0x0400;
pub const TIPG: u32 = 0x0410;
pub const AIT: u32 = 0x0458;
pub const LEDCTL: u32 = 0x0E00;
pub const PBA: u32 = 0x1000;
pub const FCRTL: u32 = 0x2160;
pub const FCRTH: u32 = 0x2168;
// ---- receive data FIFO (diagnostic access) ----
pub const RDFH: u32 = 0x2410;
pub const RDFT: u32 = 0x2418;
pub const RDFHS: u32 = 0x2420;
pub const RDFTS: u32 = 0x2428;
pub const RDFPC: u32 = 0x2430;
// ---- receive ring ----
pub const RDBAL: u32 = 0x2800;
pub const RDBAH: u32 = 0x2804;
pub const RDLEN: u32 = 0x2808;
pub const RDH: u32 = 0x2810;
pub const RDT: u32 = 0x2818;
pub const RDTR: u32 = 0x2820;
pub const RXDCTL: u32 = 0x2828;
pub const RADV: u32 = 0x282C;
pub const RSRPD: u32 = 0x2C00;
// ---- transmit data FIFO (diagnostic access) ----
pub const TDFH: u32 = 0x3410;
pub const TDFT: u32 = 0x3418;
pub const TDFHS: u32 = 0x3420;
pub const TDFTS: u32 = 0x3428;
pub const TDFPC: u32 = 0x3430;
// ---- transmit ring ----
pub const TDBAL: u32 = 0x3800;
pub const TDBAH: u32 = 0x3804;
pub const TDLEN: u32 = 0x3808;
pub const TDH: u32 = 0x3810;
pub const TDT: u32 = 0x3818;
pub const TIDV: u32 = 0x3820;
pub const TXDCTL: u32 = 0x3828;
pub const TADV: u32 = 0x382C;
pub const TSPMT: u32 = 0x3830;
// ---- statistics block ----
pub const STATS_START: u32 = 0x4000;
pub const STATS_END: u32 = 0x4100; // exclusive
pub const CRCERRS: u32 = 0x4000;
pub const ALGNERRC: u32 = 0x4004;
pub const SYMERRS: u32 = 0x4008;
pub const RXERRC: u32 = 0x400C;
pub const MPC: u32 = 0x4010;
pub const SCC: u32 = 0x4014;
pub const ECOL: u32 = 0x4018;
pub const MCC: u32 = 0x401C;
pub const LATECOL: u32 = 0x4020;
pub const COLC: u32 = 0x4028;
pub const DC: u32 = 0x4030;
pub const TNCRS: u32 = 0x4034;
pub const SEC: u32 = 0x4038;
pub const CEXTERR: u32 = 0x403C;
pub const RLEC: u32 = 0x4040;
pub const XONRXC: u32 = 0x4048;
pub const XONTXC: u32 = 0x404C;
pub const XOFFRXC: u32 = 0x4050;
pub const XOFFTXC: u32 = 0x4054;
pub const FCRUC: u32 = 0x4058;
pub const PRC64: u32 = 0x405C;
pub const PRC127: u32 = 0x4060;
pub const PRC255: u32 = 0x4064;
pub const PRC511: u32 = 0x4068;
pub const PRC1023: u32 = 0x406C;
pub const PRC1522: u32 = 0x4070;
pub const GPRC: u32 = 0x4074;
pub const BPRC: u32 = 0x4078;
pub const MPRC: u32 = 0x407C;
pub const GPTC: u32 = 0x4080;
pub const GORCL: u32 = 0x4088;
pub const GORCH: u32 = 0x408C;
pub const GOTCL: u32 = 0x4090;
pub const GOTCH: u32 = 0x4094;
pub const RNBC: u32 = 0x40A0;
pub const RUC: u32 = 0x40A4;
pub const RFC: u32 = 0x40A8;
pub const ROC: u32 = 0x40AC;
pub const RJC: u32 = 0x40B0;
pub const MGTPRC: u32 = 0x40B4;
pub const MGTPDC: u32 = 0x40B8;
pub const MGTPTC: u32 = 0x40BC;
pub const TORL: u32 = 0x40C0;
pub const TORH: u32 = 0x40C4;
pub const TOTL: u32 = 0x40C8;
pub const TOTH: u32 = 0x40CC;
pub const TPR: u32 = 0x40D0;
pub const TPT: u32 = 0x40D4;
pub const PTC64: u32 = 0x40D8;
pub const PTC127: u32 = 0x40DC;
pub const PTC255: u32 = 0x40E0;
pub const PTC511: u32 = 0x40E4;
pub const PTC1023: u32 = 0x40E8;
pub const PTC1522: u32 = 0x40EC;
pub const MPTC: u32 = 0x40F0;
pub const BPTC: u32 = 0x40F4;
pub const TSCTC: u32 = 0x40F8;
pub const TSCTFC: u32 = 0x40FC;
// ---- receive filtering and offload ----
pub const RXCSUM: u32 = 0x5000;
pub const MTA: u32 = 0x5200; // 128 words
pub const MTA_WORDS: u32 = 128;
pub const RAL0: u32 = 0x5400; // RAL(n) = 0x5400 + 8n, RAH(n) = 0x5404 + 8n
pub const RAH0: u32 = 0x5404;
pub const RA_ENTRIES: u32 = 16;
pub const VFTA: u32 = 0x5600; // 128 words
pub const VFTA_WORDS: u32 = 128;
// ---- wake-up and manageability ----
pub const WUC: u32 = 0x5800;
pub const WUFC: u32 = 0x5808;
pub const WUS: u32 = 0x5810;
pub const MANC: u32 = 0x5820;
pub const IPAV: u32 = 0x5838;
pub const IP4AT: u32 = 0x5840; // 4 entries, 8 bytes apart
pub const IP6AT: u32 = 0x5880; // 4 words
pub const WUPL: u32 = 0x5900;
pub const WUPM: u32 = 0x5A00; // 32 words
/// Software semaphore of the 82571 and later, absent from the 82540EM's register map;
/// kept as storage because U-Boot's e1000 driver takes it on every part (see the table).
pub const SWSM: u32 = 0x5B50;
pub const FFLT: u32 = 0x5F00; // 4 entries, 8 bytes apart
pub const FFMT: u32 = 0x9000; // 128 entries, 8 bytes apart
pub const FFVT: u32 = 0x9800; // 128 entries, 8 bytes apart
                              // ---- packet buffer memory (diagnostic access) ----
pub const PBM: u32 = 0x1_0000;
pub const PBM_WORDS: u32 = 0x4000;

/// Offset of RAL(n).
pub const fn ral(n: u32) -> u32 {
    RAL0 + 8 * n
}
/// Offset of RAH(n).
pub const fn rah(n: u32) -> u32 {
    RAH0 + 8 * n
}

// ---- CTRL bits ----
pub const CTRL_FD: u32 = 1 << 0;
pub const CTRL_LRST: u32 = 1 << 3;
pub const CTRL_ASDE: u32 = 1 << 5;
pub const CTRL_SLU: u32 = 1 << 6;
pub const CTRL_ILOS: u32 = 1 << 7;
pub const CTRL_SPD_1000: u32 = 2 << 8;
pub const CTRL_FRCSPD: u32 = 1 << 11;
pub const CTRL_FRCDPX: u32 = 1 << 12;
pub const CTRL_SWDPIN0: u32 = 1 << 18;
pub const CTRL_SWDPIN2: u32 = 1 << 20;
pub const CTRL_RST: u32 = 1 << 26;
pub const CTRL_RFCE: u32 = 1 << 27;
pub const CTRL_TFCE: u32 = 1 << 28;
pub const CTRL_VME: u32 = 1 << 30;
pub const CTRL_PHY_RST: u32 = 1 << 31;
/// Bits of CTRL a write stores: FD, LRST, ASDE, SLU, ILOS, SPEED, FRCSPD, FRCDPX,
/// SDP0/SDP1 data and direction, ADVD3WUC, EN_PHY_PWR_MGMT, RFCE, TFCE, VME, PHY_RST
/// (RST acts and reads 0; bits 1, 2, 4, 10, 13-17, 24, 25 and 29 are reserved).
pub const CTRL_STORED: u32 = 0xD8FC_1BE9;
pub const CTRL_SPEED_MASK: u32 = 3 << 8;
pub const CTRL_SPEED_SHIFT: u32 = 8;

// ---- CTRL_EXT bits ----
pub const CTRL_EXT_EE_RST: u32 = 1 << 13;
/// Bits of CTRL_EXT a write stores: GPI_EN (3:0), SDP4 data (4), SDP6/SDP7 data (7:6),
/// SDP4 direction (8), SDP6/SDP7 direction (11:10), ASDCHK (12), SPD_BYPS (15), RO_DIS
/// (17), LINK_MODE (23:22). EE_RST (13) acts and reads 0; PHYINT (5) is the PHY's.
pub const CTRL_EXT_STORED: u32 = 0x00C2_9DDF;

// ---- STATUS bits ----
pub const STATUS_FD: u32 = 1 << 0;
pub const STATUS_LU: u32 = 1 << 1;
pub const STATUS_TXOFF: u32 = 1 << 4;
pub const STATUS_SPEED_SHIFT: u32 = 6;
pub const STATUS_SPEED_1000: u32 = 2 << 6;
pub const STATUS_ASDV_SHIFT: u32 = 8;
pub const STATUS_ASDV_1000: u32 = 2 << 8;
pub const STATUS_PCI66: u32 = 1 << 11;
pub const STATUS_BUS64: u32 = 1 << 12;
pub const STATUS_PCIX_MODE: u32 = 1 << 13;

// ---- EECD bits ----
pub const EECD_SK: u32 = 1 << 0;
pub const EECD_CS: u32 = 1 << 1;
pub const EECD_DI: u32 = 1 << 2;
pub const EECD_DO: u32 = 1 << 3;
pub const EECD_FWE_MASK: u32 = 3 << 4;
pub const EECD_REQ: u32 = 1 << 6;
pub const EECD_GNT: u32 = 1 << 7;
pub const EECD_PRES: u32 = 1 << 8;
pub const EECD_SIZE: u32 = 1 << 9;

// ---- EERD bits (8254x layout) ----
pub const EERD_START: u32 = 1 << 0;
pub const EERD_DONE: u32 = 1 << 4;
pub const EERD_ADDR_SHIFT: u32 = 8;
pub const EERD_ADDR_MASK: u32 = 0xFF << 8;
pub const EERD_DATA_SHIFT: u32 = 16;

// ---- MDIC bits ----
pub const MDIC_DATA_MASK: u32 = 0xFFFF;
pub const MDIC_REG_SHIFT: u32 = 16;
pub const MDIC_PHY_SHIFT: u32 = 21;
pub const MDIC_OP_WRITE: u32 = 1 << 26;
pub const MDIC_OP_READ: u32 = 2 << 26;
pub const MDIC_READY: u32 = 1 << 28;
pub const MDIC_INT_EN: u32 = 1 << 29;
pub const MDIC_ERROR: u32 = 1 << 30;

// ---- interrupt causes (ICR/ICS/IMS/IMC) ----
pub const ICR_TXDW: u32 = 1 << 0;
pub const ICR_TXQE: u32 = 1 << 1;
pub const ICR_LSC: u32 = 1 << 2;
pub const ICR_RXSEQ: u32 = 1 << 3;
pub const ICR_RXDMT0: u32 = 1 << 4;
pub const ICR_RXO: u32 = 1 << 6;
pub const ICR_RXT0: u32 = 1 << 7;
pub const ICR_MDAC: u32 = 1 << 9;
pub const ICR_RXCFG: u32 = 1 << 10;
pub const ICR_GPI_EN0: u32 = 1 << 11;
pub const ICR_TXD_LOW: u32 = 1 << 15;
pub const ICR_SRPD: u32 = 1 << 16;
pub const ICR_INT_ASSERTED: u32 = 1 << 31;
/// Cause bits that exist on the 82540EM (everything else in ICR/IMS reads as 0).
pub const ICR_VALID: u32 = 0x0001_FFFF;

// ---- RCTL bits ----
pub const RCTL_EN: u32 = 1 << 1;
pub const RCTL_SBP: u32 = 1 << 2;
pub const RCTL_UPE: u32 = 1 << 3;
pub const RCTL_MPE: u32 = 1 << 4;
pub const RCTL_LPE: u32 = 1 << 5;
pub const RCTL_LBM_MASK: u32 = 3 << 6;
pub const RCTL_RDMTS_SHIFT: u32 = 8;
pub const RCTL_RDMTS_MASK: u32 = 3 << 8;
pub const RCTL_MO_SHIFT: u32 = 12;
pub const RCTL_MO_MASK: u32 = 3 << 12;
pub const RCTL_BAM: u32 = 1 << 15;
pub const RCTL_BSIZE_SHIFT: u32 = 16;
pub const RCTL_BSIZE_MASK: u32 = 3 << 16;
pub const RCTL_VFE: u32 = 1 << 18;
pub const RCTL_CFIEN: u32 = 1 << 19;
pub const RCTL_CFI: u32 = 1 << 20;
pub const RCTL_DPF: u32 = 1 << 22;
pub const RCTL_PMCF: u32 = 1 << 23;
pub const RCTL_BSEX: u32 = 1 << 25;

pub const RCTL_SECRC: u32 = 1 << 26;
pub const RCTL_LBM_SHIFT: u32 = 6;
/// Defined RCTL bits (the rest reserved): what Linux's register test expects.
pub const RCTL_WRITABLE: u32 = 0x06DF_B3FE;

/// Buffer size selected by `rctl`'s BSIZE and BSEX.
pub fn rctl_buffer_size(rctl: u32) -> usize {
    let bsize = (rctl & RCTL_BSIZE_MASK) >> RCTL_BSIZE_SHIFT;
    match (rctl & RCTL_BSEX != 0, bsize) {
        (false, 0) => 2048,
        (false, 1) => 1024,
        (false, 2) => 512,
        (false, _) => 256,
        (true, 1) => 16384,
        (true, 2) => 8192,
        (true, 3) => 4096,
        (true, _) => 2048, // BSEX with BSIZE 00 is reserved; behave as 2048
    }
}

// ---- TCTL bits ----
pub const TCTL_EN: u32 = 1 << 1;
pub const TCTL_PSP: u32 = 1 << 3;
pub const TCTL_SWXOFF: u32 = 1 << 22;
/// Bits of TCTL a write stores: EN, PSP, CT (11:4), COLD (21:12), RTLC (24); SWXOFF acts
/// and reads 0.
pub const TCTL_WRITABLE: u32 = 0x013F_FFFA;

// ---- TXDCTL / RXDCTL ----
pub const TXDCTL_LWTHRESH_SHIFT: u32 = 25;

// ---- PBA ----
/// PBA.RXA: the receive share of the packet buffer, in KB.
pub const PBA_RXA_MASK: u32 = 0x7F;
/// The packet buffer is 64 KB; PBA.TXA (31:16) reads as what RXA leaves.
pub const PACKET_BUFFER_KB: u32 = 64;

// ---- wake-up ----
pub const WUC_APME: u32 = 1 << 0;
pub const WUC_PME_EN: u32 = 1 << 1;
pub const WUC_PME_STATUS: u32 = 1 << 2;
pub const WUC_APMPME: u32 = 1 << 3;
pub const WUC_WRITABLE: u32 = 0xF;
/// WUFC and WUS: LNKC, MAG, EX, MC, BC, ARP, IPV4, IPV6 (7:0), FLX0-FLX3 (19:16).
pub const WUFC_WRITABLE: u32 = 0x000F_00FF;

// ---- RXCSUM bits ----
pub const RXCSUM_PCSS_MASK: u32 = 0xFF;
pub const RXCSUM_IPOFLD: u32 = 1 << 8;
pub const RXCSUM_TUOFLD: u32 = 1 << 9;

// ---- SWSM bits (82571 and later) ----
pub const SWSM_SMBI: u32 = 1 << 0;
pub const SWSM_SWESMBI: u32 = 1 << 1;

// ---- RAH bits ----
pub const RAH_AV: u32 = 1 << 31;

// ---- RDTR / TIDV ----
pub const RDTR_FPD: u32 = 1 << 31;
pub const TIDV_FPD: u32 = 1 << 31;

// ---- reset values (the hardware defaults drivers expect) ----
pub const CTRL_RESET: u32 = CTRL_SLU | CTRL_SPD_1000 | CTRL_SWDPIN0 | CTRL_SWDPIN2;
/// STATUS with the link up at 1000 Mb/s full duplex (FD, LU, SPEED and ASDV = 1000); the
/// device computes it from the PHY and CTRL.
pub const STATUS_RESET: u32 = STATUS_FD | STATUS_LU | STATUS_SPEED_1000 | STATUS_ASDV_1000;
pub const TSPMT_RESET: u32 = 0x0100_0400;
pub const PBA_RESET: u32 = 0x0010_0030;
pub const LEDCTL_RESET: u32 = 0x0602;
pub const MANC_RESET: u32 = 0x0022_2300;
pub const VET_RESET: u32 = 0x8100;

/// Largest frame the device accepts with RCTL.LPE, without FCS.
pub const MAX_JUMBO_FRAME: usize = 16384;

// Backends carry every frame the device can send or take.
const _: () = assert!(MAX_JUMBO_FRAME <= crate::wire::MAX_FRAME);
