//! The Internet checksum (RFC 1071): 16-bit one's complement sums, shared by the device's
//! checksum offloads and the backends that finish or cut packets.

/// Add `data` (big-endian 16-bit words, odd byte padded with zero) to a running sum.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // Eight bytes at a time: four big-endian words summed as one u64 add each.
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc = acc.wrapping_add(v >> 48);
        acc = acc.wrapping_add((v >> 32) & 0xFFFF);
        acc = acc.wrapping_add((v >> 16) & 0xFFFF);
        acc = acc.wrapping_add(v & 0xFFFF);
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        acc = acc.wrapping_add(u64::from(u16::from_be_bytes([w[0], w[1]])));
    }
    if let [b] = words.remainder() {
        acc = acc.wrapping_add(u64::from(*b) << 8);
    }
    acc
}

/// Fold a running sum to 16 bits (not complemented).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field value for `data` with an initial sum: `!fold(sum)`.
pub fn checksum(data: &[u8], initial: u64) -> u16 {
    !fold(sum(data, initial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_and_odd_lengths() {
        // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d, 0)), 0xddf2);
        assert_eq!(fold(sum(&[0xAB], 0)), 0xAB00);
        // Byte-at-a-time reference over many lengths.
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            let mut r: u64 = 0;
            for (i, b) in data[..n].iter().enumerate() {
                r += if i % 2 == 0 {
                    u64::from(*b) << 8
                } else {
                    u64::from(*b)
                };
            }
            assert_eq!(fold(sum(&data[..n], 0)), fold(r), "len {n}");
        }
    }
}
