//! Case folding of user and realm names.
//!
//! The contract matches user and realm names with full Unicode case folding (`ZOË` = `zoë`,
//! `STRASSE` = `straße`), as an LDAP `uid` comparison would. Every index key is the folded
//! form; the original spelling is kept beside it for display.

use compact_str::CompactString;

/// The folded form of a user or realm name, used as an index key.
pub fn fold(name: &str) -> CompactString {
    if name.is_ascii() {
        // The common case: no Unicode tables, and no allocation for names of up to 24 bytes.
        let mut out = CompactString::from(name);
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            out.make_ascii_lowercase();
        }
        out
    } else {
        CompactString::from(caseless::default_case_fold_str(name))
    }
}

/// Whether two names are equal under full case folding.
pub fn eq_folded(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        fold(a) == fold(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_unicode_fold() {
        assert_eq!(fold("JohnQ"), "johnq");
        assert_eq!(fold("ZOË"), fold("zoë"));
        assert_eq!(fold("STRASSE"), fold("straße"));
        assert!(eq_folded("Mary Jones", "mary JONES"));
        assert!(!eq_folded("mary", "marie"));
    }
}
