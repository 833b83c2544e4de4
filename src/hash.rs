//! The stable hash that picks a store partition.
//!
//! Partition choice must be the same on every run and machine (reproducible output, stable
//! per-partition statistics), so it uses 64-bit FNV-1a, a specified function, rather than a
//! seeded or version-dependent hasher such as foldhash.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a over a sequence of byte slices, with a separator between parts so that
/// `("ab", "c")` and `("a", "bc")` differ.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h = OFFSET;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(PRIME);
        }
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// MurmurHash3's 64-bit finaliser. FNV-1a mixes its last bytes poorly into the high bits,
/// which pick the partition; this spreads them (`user1`…`user999` otherwise crowd into a
/// few partitions).
pub fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The specified, stable hash of a sequence of byte strings: FNV-1a, then [`mix`].
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    mix(fnv1a(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_values() {
        // FNV-1a reference values: the empty input is the offset basis, "a" is published.
        assert_eq!(fnv1a(&[b""]), OFFSET);
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        assert_eq!(mix(0), 0);
        assert_eq!(stable_hash(&[b"johnq"]), mix(fnv1a(&[b"johnq"])));
    }
}
