//! WebSEAL credential refresh rules (contract §3, after IBM's "credential refresh rules").
//!
//! A refresh builds a new credential from the registry and merges it with the old one:
//! seven login-context attributes always come from the old credential when it has them;
//! every other attribute is decided by the first matching `pattern: preserve|refresh` rule
//! (case-insensitive globs with `*`, `?` and `[...]`), and with no matching rule the new
//! value wins and old-only attributes are dropped.

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};

use crate::credential::{Attr, Credential};
use crate::fold::eq_folded;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
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

/// The ordered rule list of a run.
#[derive(Debug, Clone)]
pub struct RefreshRules {
    rules: Vec<Rule>,
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
        Ok(Self { rules })
    }

    /// IBM's shipped defaults: `authentication_level: preserve`, `tagvalue_*: preserve`.
    pub fn defaults() -> Self {
        Self::new([
            ("authentication_level", RuleAction::Preserve),
            ("tagvalue_*", RuleAction::Preserve),
        ])
        .unwrap_or_else(|_| Self { rules: Vec::new() })
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

    /// Merges an old credential with a freshly built one.
    pub fn merge(&self, old: &Credential, new: &Credential) -> Credential {
        let mut out = Credential::with_capacity(new.len() + 4);
        for attr in new.attrs() {
            let keep_old = match old.attr(&attr.name) {
                Some(old_attr) if is_keep_old(&attr.name) => Some(old_attr),
                Some(old_attr) if self.decide(&attr.name) == Some(RuleAction::Preserve) => {
                    Some(old_attr)
                }
                _ => None,
            };
            out.push_unchecked(keep_old.cloned().unwrap_or_else(|| attr.clone()));
        }
        for attr in old.attrs() {
            if new.attr(&attr.name).is_none()
                && (is_keep_old(&attr.name)
                    || self.decide(&attr.name) == Some(RuleAction::Preserve))
            {
                out.push_unchecked(Attr {
                    name: attr.name.clone(),
                    value: attr.value.clone(),
                });
            }
        }
        out
    }
}

/// Whether `name` is one of the seven attributes kept from the old credential.
pub fn is_keep_old(name: &str) -> bool {
    KEEP_OLD.iter().any(|k| eq_folded(k, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::AttrValue;

    fn cred(pairs: &[(&str, &str)]) -> Credential {
        let mut c = Credential::new();
        for (k, v) in pairs {
            c.insert(*k, AttrValue::One((*v).into())).unwrap();
        }
        c
    }

    fn rules(list: &[(&str, RuleAction)]) -> RefreshRules {
        RefreshRules::new(list.iter().map(|(p, a)| (*p, *a))).unwrap()
    }

    fn val<'a>(c: &'a Credential, name: &str) -> Option<&'a str> {
        c.get(name).and_then(AttrValue::as_str)
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
    fn bad_glob_is_an_error() {
        assert!(RefreshRules::new([("[abc", Preserve)]).is_err());
    }
}
