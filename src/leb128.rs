//! LEB128 numbers in bytes this process wrote itself (credential blobs, the store's id
//! arena): seven bits a byte, low first. Files from disk are read by the strict, checked
//! reader in `site/binary_io.rs`; these blobs are trusted, so a malformed number here reads
//! as what it has so far rather than failing.

/// Appends `v`.
pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The number at `*pos`, moving `pos` past it.
pub(crate) fn get(b: &[u8], pos: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    while let Some(&byte) = b.get(*pos) {
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 || shift >= 63 {
            break;
        }
        shift += 7;
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_round_trip() {
        let values = [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ];
        let mut out = Vec::new();
        for v in values {
            super::put(&mut out, v);
        }
        let mut pos = 0;
        for v in values {
            assert_eq!(super::get(&out, &mut pos), v);
        }
        assert_eq!(pos, out.len());
        // A truncated number reads as what it has, and stops at the end.
        let mut pos = 0;
        assert_eq!(super::get(&[0x81], &mut pos), 1);
        assert_eq!(pos, 1);
    }
}
