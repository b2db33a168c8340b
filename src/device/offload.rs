//! Transmit offloads: checksum insertion and TCP/UDP segmentation.
