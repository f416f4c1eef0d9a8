//! The durable reservation of the sequence allocator (`SEQ`, see `docs/protocol.md`,
//! "Identity"): 16 bytes holding the first number not yet reserved, its CRC32C, and padding.

pub const LEN: usize = 16;

pub fn encode(reserved: u64) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[0..8].copy_from_slice(&reserved.to_le_bytes());
    let crc = crc32c::crc32c(&out[0..8]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out
}

pub fn decode(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() != LEN {
        return Err(format!("{} bytes, expected {LEN}", bytes.len()));
    }
    let value: [u8; 8] = bytes[0..8].try_into().expect("8 bytes");
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if crc32c::crc32c(&value) != crc || bytes[12..] != [0; 4] {
        return Err("checksum mismatch".into());
    }
    Ok(u64::from_le_bytes(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_round_trips_and_damage_is_caught() {
        let bytes = encode(1 << 40);
        assert_eq!(decode(&bytes), Ok(1 << 40));
        for i in 0..LEN {
            let mut damaged = bytes;
            damaged[i] ^= 1;
            assert!(decode(&damaged).is_err(), "byte {i}");
        }
        assert!(decode(&bytes[..8]).is_err());
    }
}
