//! WebSEAL credential refresh rules (contract §3, after IBM's "credential refresh rules").
//!
//! A refresh builds a new credential from the registry and merges it with the old one:
//! seven login-context attributes always come from the old credential when it has them;
//! every other attribute is decided by the first matching `pattern: preserve|refresh` rule
//! (case-insensitive globs with `*`, `?` and `[...]`), and with no matching rule the new
//! value wins and old-only attributes are dropped.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use globset::{GlobBuilder, GlobMatcher};

use crate::credential::{Credential, CredentialBuilder};
use crate::fold::eq_folded;
use crate::intern::{self, Sym};

/// The attributes always taken from the old credential when it has them.
pub const KEEP_OLD: [&str; 7] = [
    "AZN_CRED_AUTHNMECH_INFO",
    "AZN_CRED_BROWSER_INFO",
    "AZN_CRED_IP_ADDRESS",
    "AZN_CRED_PRINCIPAL_NAME",
    "AZN_CRED_AUTH_METHOD",
    "AZN_CRED_USER_INFO",
    "AZN_CRED_QOP_INFO",
];

/// What a rule does with a matching attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Preserve,
    Refresh,
}

impl fmt::Display for RuleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleAction::Preserve => "preserve",
            RuleAction::Refresh => "refresh",
        })
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: String,
    pub action: RuleAction,
    matcher: GlobMatcher,
}

/// A pattern that is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pattern `{pattern}` is not a valid glob: {reason}")]
pub struct BadPattern {
    pub pattern: String,
    pub reason: String,
}

/// What a compiled table says of one attribute name.
const UNKNOWN: u8 = 0;
const NO_RULE: u8 = 1;
const PRESERVE: u8 = 2;
const REFRESH: u8 = 3;
const KEEP_OLD_ATTR: u8 = 4;

/// The ordered rule list of a run, with a decision table per interned attribute name so that
/// a merge decides each attribute with one lookup instead of matching globs.
#[derive(Debug, Clone)]
pub struct RefreshRules {
    rules: Vec<Rule>,
    /// Decision per sym, built by [`RefreshRules::compile`]; syms past its end are decided
    /// by matching (names interned after compiling).
    table: Arc<[u8]>,
}

/// An old credential's attribute during a merge: its key, the byte range of its entry, and
/// whether the new credential has it too.
type OldEntry = (Sym, u32, u32, bool);

thread_local! {
    /// Per-thread scratch for merges: no allocation per merge but the result.
    static SCRATCH: RefCell<(CredentialBuilder, Vec<OldEntry>)> = RefCell::default();
}

impl RefreshRules {
    /// Compiles rules in order; the first match wins.
    pub fn new<S: AsRef<str>>(
        rules: impl IntoIterator<Item = (S, RuleAction)>,
    ) -> Result<Self, BadPattern> {
        let rules = rules
            .into_iter()
            .map(|(pattern, action)| {
                let pattern = pattern.as_ref();
                let glob = GlobBuilder::new(pattern)
                    .case_insensitive(true)
                    .literal_separator(false)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| BadPattern {
                        pattern: pattern.to_string(),
                        reason: e.kind().to_string(),
                    })?;
                Ok(Rule {
                    pattern: pattern.to_string(),
                    action,
                    matcher: glob.compile_matcher(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            rules,
            table: Arc::from(Vec::new()),
        })
    }

    /// IBM's shipped defaults: `authentication_level: preserve`, `tagvalue_*: preserve`.
    pub fn defaults() -> Self {
        Self::new([
            ("authentication_level", RuleAction::Preserve),
            ("tagvalue_*", RuleAction::Preserve),
        ])
        .unwrap_or_else(|_| Self {
            rules: Vec::new(),
            table: Arc::from(Vec::new()),
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The action of the first rule matching `name`, if any.
    pub fn decide(&self, name: &str) -> Option<RuleAction> {
        self.rules
            .iter()
            .find(|r| r.matcher.is_match(name))
            .map(|r| r.action)
    }

    fn code_for(&self, name: &str) -> u8 {
        if is_keep_old(name) {
            return KEEP_OLD_ATTR;
        }
        match self.decide(name) {
            None => NO_RULE,
            Some(RuleAction::Preserve) => PRESERVE,
            Some(RuleAction::Refresh) => REFRESH,
        }
    }

    /// Builds the decision table for every name interned so far (call once the site and
    /// policy are loaded; names seen later are still decided, by matching).
    pub fn compile(&mut self) {
        let n = intern::count();
        let table: Vec<u8> = (0..n)
            .map(|i| self.code_for(intern::resolve(Sym(i as u32))))
            .collect();
        self.table = Arc::from(table);
    }

    fn code(&self, name: Sym) -> u8 {
        match self.table.get(name.0 as usize) {
            Some(&c) if c != UNKNOWN => c,
            _ => self.code_for(intern::resolve(name)),
        }
    }

    /// The patterns of rules that would preserve an `AZN_*` attribute (allowed, but warned
    /// about: those attributes are internal to authorization decisions).
    pub fn azn_warnings(&self) -> Vec<&str> {
        const PROBES: [&str; 4] = [
            "AZN_CRED_GROUPS",
            "AZN_CRED_REGISTRY_ID",
            "AZN_CRED_NETWORK_ADDRESS_STR",
            "AZN_",
        ];
        self.rules
            .iter()
            .filter(|r| r.action == RuleAction::Preserve)
            .filter(|r| {
                r.pattern.to_ascii_lowercase().starts_with("azn_")
                    || PROBES
                        .iter()
                        .chain(KEEP_OLD.iter())
                        .any(|p| r.matcher.is_match(p))
            })
            .map(|r| r.pattern.as_str())
            .collect()
    }

    /// Merges an old credential with a freshly built one. When the result equals the old
    /// credential (already fresh) or the new one, that one is returned, sharing its bytes.
    pub fn merge(&self, old: &Credential, new: &Credential) -> Credential {
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (b, olds) = &mut *guard;
            b.clear();
            olds.clear();
            let old_bytes = old.bytes();
            let base = old_bytes.as_ptr() as usize;
            for a in old.iter() {
                let start = (a.raw.as_ptr() as usize - base) as u32;
                olds.push((a.key(), start, start + a.raw.len() as u32, false));
            }
            let raw_of = |o: &(Sym, u32, u32, bool)| &old_bytes[o.1 as usize..o.2 as usize];
            for attr in new.iter() {
                let key = attr.key();
                let code = self.code(key);
                match olds.iter_mut().find(|o| o.0 == key) {
                    Some(o) => {
                        o.3 = true;
                        if code == KEEP_OLD_ATTR || code == PRESERVE {
                            let raw = &old_bytes[o.1 as usize..o.2 as usize];
                            b.push_encoded(key, raw);
                        } else {
                            b.push_raw(&attr);
                        }
                    }
                    None => b.push_raw(&attr),
                }
            }
            for o in olds.iter().filter(|o| !o.3) {
                let code = self.code(o.0);
                if code == KEEP_OLD_ATTR || code == PRESERVE {
                    b.push_encoded(o.0, raw_of(o));
                }
            }
            if b.same_as(old) {
                old.clone()
            } else if b.same_as(new) {
                new.clone()
            } else {
                b.build()
            }
        })
    }
}

/// Whether `name` is one of the seven attributes kept from the old credential.
pub fn is_keep_old(name: &str) -> bool {
    KEEP_OLD.iter().any(|k| eq_folded(k, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(pairs: &[(&str, &str)]) -> Credential {
        let mut b = CredentialBuilder::default();
        for (k, v) in pairs {
            b.push_str(k, v).unwrap();
        }
        b.build()
    }

    fn rules(list: &[(&str, RuleAction)]) -> RefreshRules {
        RefreshRules::new(list.iter().map(|(p, a)| (*p, *a))).unwrap()
    }

    fn val<'a>(c: &'a Credential, name: &str) -> Option<&'a str> {
        c.get_str(name)
    }

    use RuleAction::{Preserve, Refresh};

    #[test]
    fn only_in_new_is_added_whatever_the_rules() {
        for r in [
            rules(&[]),
            rules(&[("x", Preserve)]),
            rules(&[("x", Refresh)]),
        ] {
            let m = r.merge(&cred(&[]), &cred(&[("x", "new")]));
            assert_eq!(val(&m, "x"), Some("new"));
        }
    }

    #[test]
    fn in_both_preserve_keeps_old_refresh_and_no_rule_take_new() {
        let old = cred(&[("x", "old")]);
        let new = cred(&[("x", "new")]);
        assert_eq!(
            val(&rules(&[("x", Preserve)]).merge(&old, &new), "x"),
            Some("old")
        );
        assert_eq!(
            val(&rules(&[("x", Refresh)]).merge(&old, &new), "x"),
            Some("new")
        );
        assert_eq!(
            val(&rules(&[("y", Preserve)]).merge(&old, &new), "x"),
            Some("new")
        );
    }

    #[test]
    fn only_in_old_preserve_keeps_refresh_and_no_rule_drop() {
        let old = cred(&[("x", "old")]);
        let new = cred(&[]);
        assert_eq!(
            val(&rules(&[("x", Preserve)]).merge(&old, &new), "x"),
            Some("old")
        );
        assert_eq!(val(&rules(&[("x", Refresh)]).merge(&old, &new), "x"), None);
        assert_eq!(val(&rules(&[]).merge(&old, &new), "x"), None);
    }

    #[test]
    fn the_seven_come_from_the_old_credential_even_against_rules() {
        let r = rules(&[("*", Refresh)]);
        for name in KEEP_OLD {
            let m = r.merge(&cred(&[(name, "old")]), &cred(&[(name, "new")]));
            assert_eq!(val(&m, name), Some("old"), "{name}");
            let m = r.merge(&cred(&[(name, "old")]), &cred(&[]));
            assert_eq!(val(&m, name), Some("old"), "{name} old only");
            let m = r.merge(&cred(&[]), &cred(&[(name, "new")]));
            assert_eq!(val(&m, name), Some("new"), "{name} missing from old");
        }
        // Other AZN_ attributes follow the rules: old-only is dropped under the defaults.
        let m =
            RefreshRules::defaults().merge(&cred(&[("AZN_CRED_REGISTRY_ID", "cn=x")]), &cred(&[]));
        assert_eq!(val(&m, "AZN_CRED_REGISTRY_ID"), None);
    }

    #[test]
    fn first_match_wins() {
        let r = rules(&[
            ("tagvalue_last_refresh_time", Refresh),
            ("tagvalue_*", Preserve),
        ]);
        let old = cred(&[("tagvalue_last_refresh_time", "t0"), ("tagvalue_x", "old")]);
        let new = cred(&[("tagvalue_last_refresh_time", "t1"), ("tagvalue_x", "new")]);
        let m = r.merge(&old, &new);
        assert_eq!(val(&m, "tagvalue_last_refresh_time"), Some("t1"));
        assert_eq!(val(&m, "tagvalue_x"), Some("old"));
        let r = rules(&[
            ("tagvalue_*", Preserve),
            ("tagvalue_last_refresh_time", Refresh),
        ]);
        assert_eq!(
            val(&r.merge(&old, &new), "tagvalue_last_refresh_time"),
            Some("t0")
        );
    }

    #[test]
    fn names_and_patterns_are_case_insensitive() {
        let r = rules(&[("TagValue_*", Preserve)]);
        let m = r.merge(
            &cred(&[("TAGVALUE_X", "old")]),
            &cred(&[("tagvalue_x", "new")]),
        );
        assert_eq!(val(&m, "tagvalue_x"), Some("old"));
        let m = r.merge(
            &cred(&[("azn_cred_ip_address", "1.1.1.1")]),
            &cred(&[("AZN_CRED_IP_ADDRESS", "2.2.2.2")]),
        );
        assert_eq!(val(&m, "AZN_CRED_IP_ADDRESS"), Some("1.1.1.1"));
    }

    #[test]
    fn question_mark_and_brackets() {
        let r = rules(&[("level?", Preserve), ("[ab]x", Preserve)]);
        assert_eq!(r.decide("level1"), Some(Preserve));
        assert_eq!(r.decide("level12"), None);
        assert_eq!(r.decide("Bx"), Some(Preserve));
        assert_eq!(r.decide("cx"), None);
    }

    #[test]
    fn defaults_preserve_level_and_tagvalues() {
        let r = RefreshRules::defaults();
        assert_eq!(r.decide("authentication_level"), Some(Preserve));
        assert_eq!(r.decide("tagvalue_session_index"), Some(Preserve));
        assert_eq!(r.decide("emailAddress"), None);
        let m = r.merge(
            &cred(&[
                ("authentication_level", "2"),
                ("tagvalue_a", "x"),
                ("dept", "old"),
            ]),
            &cred(&[("authentication_level", "1"), ("dept", "new")]),
        );
        assert_eq!(val(&m, "authentication_level"), Some("2"));
        assert_eq!(val(&m, "tagvalue_a"), Some("x"));
        assert_eq!(val(&m, "dept"), Some("new"));
    }

    #[test]
    fn azn_preserve_rules_are_warned_about() {
        assert!(RefreshRules::defaults().azn_warnings().is_empty());
        assert_eq!(
            rules(&[("AZN_CRED_GROUPS", Preserve)]).azn_warnings(),
            ["AZN_CRED_GROUPS"]
        );
        assert_eq!(rules(&[("*", Preserve)]).azn_warnings(), ["*"]);
        assert!(rules(&[("azn_*", Refresh)]).azn_warnings().is_empty());
    }

    #[test]
    fn compiled_table_decides_like_matching_and_shares_unchanged_results() {
        let mut r = rules(&[("tagvalue_*", Preserve), ("dept", Refresh)]);
        let old = cred(&[
            ("tagvalue_a", "x"),
            ("dept", "old"),
            ("AZN_CRED_IP_ADDRESS", "1.1.1.1"),
        ]);
        let new = cred(&[("dept", "new"), ("AZN_CRED_IP_ADDRESS", "2.2.2.2")]);
        let before = r.merge(&old, &new);
        r.compile();
        let after = r.merge(&old, &new);
        assert_eq!(before, after);
        assert_eq!(val(&after, "dept"), Some("new"));
        assert_eq!(val(&after, "AZN_CRED_IP_ADDRESS"), Some("1.1.1.1"));
        // Merging again changes nothing: the old credential itself comes back.
        let again = r.merge(&after, &new);
        assert!(Credential::ptr_eq(&again, &after));
        // Attribute order: the new credential's, then preserved old-only ones.
        let names: Vec<&str> = after.iter().map(|a| a.name_str()).collect();
        assert_eq!(names, ["dept", "AZN_CRED_IP_ADDRESS", "tagvalue_a"]);
    }

    #[test]
    fn bad_glob_is_an_error() {
        assert!(RefreshRules::new([("[abc", Preserve)]).is_err());
    }
}
