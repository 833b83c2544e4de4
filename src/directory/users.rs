//! From user and group entries to users (contract §12): each user's name, its groups in
//! ascending byte order without duplicates, and its mapped attributes.
//!
//! The same code serves an LDIF file and a live directory, so both give the same answers:
//! a member DN is matched to a user entry by its canonical [`Dn`]; a member that is no user
//! (a nested group, a DN outside the users' base) is ignored; a user in no group has none.
//! Users come out in case-folded name order, the order `registry export` writes, so a
//! directory's user order never depends on the order the server or the file returns them.

use std::collections::HashMap;
use std::hash::BuildHasher;

use rayon::prelude::*;

use super::DirectoryUser;
use super::config::{Mapping, Membership};
use super::dn::Dn;
use super::entry::Entry;
use crate::credential::{self, Credential, CredentialBuilder};
use crate::fold::fold;
use crate::intern::{Sym, intern};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A problem with one entry: where it is (`line N` or `entry DN`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    /// The LDIF line, when the entry came from a file.
    pub line: Option<u64>,
    pub message: String,
}

fn entry_err(e: &Entry<'_>, message: String) -> EntryError {
    EntryError {
        line: (e.line > 0).then_some(e.line),
        message: if e.line > 0 {
            message
        } else {
            format!("entry `{}`: {message}", e.dn)
        },
    }
}

fn text<'v>(e: &Entry<'_>, ty: &str, v: &'v [u8]) -> Result<&'v str, EntryError> {
    std::str::from_utf8(v).map_err(|_| entry_err(e, format!("a value of `{ty}` is not UTF-8 text")))
}

/// An entry's canonical DN, or an error naming it.
pub fn dn_of(e: &Entry<'_>) -> Result<Dn, EntryError> {
    Dn::parse(&e.dn).map_err(|m| entry_err(e, format!("the DN `{}` is not a DN: {m}", e.dn)))
}

/// The canonical form of a member value, written into `buf`.
fn member_dn<'b>(
    e: &Entry<'_>,
    text: &str,
    what: &str,
    buf: &'b mut String,
) -> Result<&'b str, EntryError> {
    Dn::canonical_into(text, buf)
        .map_err(|m| entry_err(e, format!("{what} `{text}` is not a DN: {m}")))?;
    Ok(buf.as_str())
}

/// An entry with its canonical DN.
pub type Placed<'e, 'a> = (&'e Entry<'a>, &'e Dn);

/// A user entry, read.
struct User<'e, 'a> {
    entry: &'e Entry<'a>,
    dn: &'e Dn,
    name: &'e str,
}

/// Builds the users from `users` (the entries that are users) and `groups` (the entries
/// that are groups), each with its canonical DN.
pub fn build(
    users: &[Placed<'_, '_>],
    groups: &[Placed<'_, '_>],
    m: &Mapping,
) -> Result<Vec<DirectoryUser>, EntryError> {
    let read: Vec<Option<User<'_, '_>>> = users
        .par_iter()
        .map(|(e, dn)| {
            let Some(first) = e.values_of(&m.users.name).next() else {
                return Ok(None); // no name: not a user anyone can log in as
            };
            Ok(Some(User {
                entry: e,
                dn,
                name: text(e, &m.users.name, first)?,
            }))
        })
        .collect::<Result<_, _>>()?;
    let read: Vec<User<'_, '_>> = read.into_iter().flatten().collect();
    let by_dn = index(&read)?;
    let (syms, memberships) = memberships(&read, &by_dn, groups, m)?;
    let names = Names::new(m);
    let mut out: Vec<(compact_str::CompactString, DirectoryUser)> = read
        .into_par_iter()
        .enumerate()
        .map(|(i, u)| {
            // Groups are numbered in byte order of their names: sorting the numbers sorts
            // the names, and one name in two group entries is one number.
            let mut numbers: smallvec::SmallVec<[u32; 16]> = memberships.of(i).into();
            numbers.sort_unstable();
            numbers.dedup();
            let groups: smallvec::SmallVec<[Sym; 16]> =
                numbers.iter().map(|n| syms[*n as usize]).collect();
            Ok((
                fold(u.name),
                DirectoryUser {
                    name: u.name.to_string(),
                    credential: names.credential(u.entry, u.name, &groups)?,
                },
            ))
        })
        .collect::<Result<_, EntryError>>()?;
    out.par_sort_unstable_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
    Ok(out.into_iter().map(|(_, u)| u).collect())
}

/// The credential's attribute names, interned once for every user.
struct Names<'m> {
    principal: Sym,
    groups: Sym,
    /// (credential name, LDAP type)
    attributes: Vec<(Sym, &'m str)>,
}

impl<'m> Names<'m> {
    fn new(m: &'m Mapping) -> Self {
        Self {
            principal: intern(credential::PRINCIPAL_NAME),
            groups: intern(credential::GROUPS),
            attributes: m
                .attributes
                .iter()
                .map(|(name, ty)| (intern(name), ty.as_str()))
                .collect(),
        }
    }

    /// The credential a fresh login would get: the principal, the groups, then the mapped
    /// attributes (one value as a string, several as a list).
    fn credential(
        &self,
        e: &Entry<'_>,
        name: &str,
        groups: &[Sym],
    ) -> Result<Credential, EntryError> {
        let mut b =
            CredentialBuilder::with_capacity(self.attributes.len() + 2, 64 + 8 * groups.len());
        let dup = |d: credential::DuplicateAttr| entry_err(e, d.to_string());
        b.push_str_sym(self.principal, name).map_err(dup)?;
        b.push_list_syms(self.groups, groups).map_err(dup)?;
        let mut values: smallvec::SmallVec<[&str; 4]> = smallvec::SmallVec::new();
        for (name, ty) in &self.attributes {
            values.clear();
            for v in e.values_of(ty) {
                values.push(text(e, ty, v)?);
            }
            match values.as_slice() {
                [] => Ok(()),
                [one] => b.push_str_sym(*name, one),
                many => {
                    let syms: smallvec::SmallVec<[Sym; 4]> =
                        many.iter().map(|v| intern(v)).collect();
                    b.push_list_syms(*name, &syms)
                }
            }
            .map_err(dup)?;
        }
        Ok(b.build())
    }
}

/// The users by DN: as written (most member values spell a user's DN exactly as its entry
/// does, and need no parsing) and canonical.
struct ByDn<'u> {
    written: Written,
    canonical: Map<&'u str, u32>,
}

impl ByDn<'_> {
    /// The user a member value names, if any.
    fn find(
        &self,
        e: &Entry<'_>,
        value: &str,
        what: &str,
        buf: &mut String,
    ) -> Result<Option<u32>, EntryError> {
        if let Some(u) = self.written.get(value) {
            return Ok(Some(u));
        }
        Ok(self.canonical.get(member_dn(e, value, what, buf)?).copied())
    }
}

/// User DNs as written, copied next to each other, and a table of their indices by hash:
/// hundreds of thousands of member lookups then touch a few megabytes, not the whole file.
struct Written {
    table: hashbrown::HashTable<u32>,
    text: Vec<u8>,
    /// The end of each DN in `text`.
    ends: Vec<u32>,
    state: foldhash::fast::RandomState,
}

impl Written {
    fn new<'s>(dns: impl ExactSizeIterator<Item = &'s str>) -> Self {
        let mut w = Self {
            table: hashbrown::HashTable::with_capacity(dns.len()),
            text: Vec::new(),
            ends: Vec::with_capacity(dns.len()),
            state: foldhash::fast::RandomState::default(),
        };
        for (i, dn) in dns.enumerate() {
            w.text.extend_from_slice(dn.as_bytes());
            w.ends.push(u32::try_from(w.text.len()).unwrap_or(u32::MAX));
            let Written {
                table,
                text,
                ends,
                state,
            } = &mut w;
            let hash = state.hash_one(dn.as_bytes());
            let dn_of = |j: u32| Self::slice(text, ends, j);
            if table.find(hash, |j| dn_of(*j) == dn.as_bytes()).is_none() {
                table.insert_unique(hash, i as u32, |j| state.hash_one(dn_of(*j)));
            }
        }
        w
    }

    fn slice<'t>(text: &'t [u8], ends: &[u32], i: u32) -> &'t [u8] {
        let end = ends[i as usize] as usize;
        let start = if i == 0 {
            0
        } else {
            ends[i as usize - 1] as usize
        };
        &text[start..end]
    }

    fn get(&self, dn: &str) -> Option<u32> {
        let hash = self.state.hash_one(dn.as_bytes());
        self.table
            .find(hash, |i| {
                Self::slice(&self.text, &self.ends, *i) == dn.as_bytes()
            })
            .copied()
    }
}

/// The users by DN; two entries with one DN, or two users with one name, are errors. The
/// three maps are built at once, each in file order (so the first of two is named).
fn index<'u>(read: &'u [User<'_, '_>]) -> Result<ByDn<'u>, EntryError> {
    let twice = |i: usize, prev: u32, what: String| {
        let u = &read[i];
        entry_err(
            u.entry,
            format!("{what} {}", read[prev as usize].entry.place()),
        )
    };
    let n = read.len();
    let ((canonical, names), written) = rayon::join(
        || {
            rayon::join(
                || {
                    let mut by_dn: Map<&str, u32> =
                        Map::with_capacity_and_hasher(n, Default::default());
                    for (i, u) in read.iter().enumerate() {
                        if let Some(prev) = by_dn.insert(u.dn.as_str(), i as u32) {
                            let what =
                                format!("the entry `{}` is given twice (first at", u.entry.dn);
                            return Err(twice(i, prev, what).closing());
                        }
                    }
                    Ok(by_dn)
                },
                || {
                    let mut by_name: Map<compact_str::CompactString, u32> =
                        Map::with_capacity_and_hasher(n, Default::default());
                    for (i, u) in read.iter().enumerate() {
                        if let Some(prev) = by_name.insert(fold(u.name), i as u32) {
                            let what = format!("the user name `{}` is also the name of", u.name);
                            return Err(twice(i, prev, what).ignoring_case());
                        }
                    }
                    Ok(())
                },
            )
        },
        || Written::new(read.iter().map(|u| &*u.entry.dn)),
    );
    let canonical = canonical?;
    names?;
    Ok(ByDn { written, canonical })
}

impl EntryError {
    fn closing(mut self) -> Self {
        self.message.push(')');
        self
    }

    fn ignoring_case(mut self) -> Self {
        self.message.push_str(" (user names ignore case)");
        self
    }
}

/// Each user's group numbers, flat: user `i`'s are `numbers[offsets[i]..offsets[i + 1]]`.
struct Memberships {
    offsets: Vec<u32>,
    numbers: Vec<u32>,
}

impl Memberships {
    fn of(&self, user: usize) -> &[u32] {
        &self.numbers[self.offsets[user] as usize..self.offsets[user + 1] as usize]
    }

    /// From (user, group number) pairs, by counting: no vector per user.
    fn from_pairs(users: usize, pairs: impl Iterator<Item = (u32, u32)> + Clone) -> Self {
        let mut offsets = vec![0u32; users + 1];
        for (u, _) in pairs.clone() {
            offsets[u as usize + 1] += 1;
        }
        for i in 0..users {
            offsets[i + 1] += offsets[i];
        }
        let mut next: Vec<u32> = offsets[..users].to_vec();
        let mut numbers = vec![0u32; offsets[users] as usize];
        for (u, n) in pairs {
            numbers[next[u as usize] as usize] = n;
            next[u as usize] += 1;
        }
        Self { offsets, numbers }
    }
}

/// The group names in byte order, interned, and each user's groups as numbers into them.
fn memberships(
    users: &[User<'_, '_>],
    by_dn: &ByDn<'_>,
    groups: &[Placed<'_, '_>],
    m: &Mapping,
) -> Result<(Vec<Sym>, Memberships), EntryError> {
    // Every named group and its name.
    let named: Vec<Option<&str>> = groups
        .par_iter()
        .map(|(g, _)| match g.values_of(&m.groups.name).next() {
            Some(first) => text(g, &m.groups.name, first).map(Some),
            None => Ok(None),
        })
        .collect::<Result<_, EntryError>>()?;
    let mut sorted: Vec<&str> = named.iter().flatten().copied().collect();
    sorted.par_sort_unstable();
    sorted.dedup();
    let number: Map<&str, u32> = sorted
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, i as u32))
        .collect();
    let syms: Vec<Sym> = sorted.iter().map(|n| intern(n)).collect();
    let group_number = |g: usize| named[g].map(|n| number[n]);
    let flat = match &m.groups.membership {
        Membership::Members(attrs) => {
            // Resolve every member value in parallel: (user, group number) per membership.
            let hits: Vec<Vec<u32>> = groups
                .par_iter()
                .enumerate()
                .map_init(String::new, |buf, (i, (g, _))| {
                    let mut hits = Vec::new();
                    if named[i].is_none() {
                        return Ok(hits);
                    }
                    for a in attrs {
                        for v in g.values_of(a) {
                            if let Some(u) = by_dn.find(g, text(g, a, v)?, "the member", buf)? {
                                hits.push(u);
                            }
                        }
                    }
                    Ok(hits)
                })
                .collect::<Result<_, EntryError>>()?;
            let pairs = hits.iter().enumerate().flat_map(|(g, us)| {
                let n = group_number(g).unwrap_or_default();
                us.iter().map(move |u| (*u, n))
            });
            Memberships::from_pairs(users.len(), pairs)
        }
        Membership::From(attr) => {
            let by_group: Map<&str, u32> = groups
                .iter()
                .enumerate()
                .filter_map(|(i, (_, dn))| group_number(i).map(|n| (dn.as_str(), n)))
                .collect();
            let per_user: Vec<Vec<u32>> = users
                .par_iter()
                .map_init(String::new, |buf, u| {
                    let mut numbers = Vec::new();
                    for v in u.entry.values_of(attr) {
                        let dn = member_dn(u.entry, text(u.entry, attr, v)?, "the group", buf)?;
                        if let Some(n) = by_group.get(dn) {
                            numbers.push(*n);
                        }
                    }
                    Ok(numbers)
                })
                .collect::<Result<_, EntryError>>()?;
            let pairs = per_user
                .iter()
                .enumerate()
                .flat_map(|(u, ns)| ns.iter().map(move |n| (u as u32, *n)));
            Memberships::from_pairs(users.len(), pairs)
        }
    };
    Ok((syms, flat))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::AttrValue;
    use crate::directory::entry::Wanted;
    use crate::directory::ldif;

    const LDIF: &str = "\
dn: uid=zoe,ou=people,o=x
objectClass: inetOrgPerson
uid: Zoë
mail: z@x
mail: zoe@x

dn: uid=a,ou=people,o=x
objectClass: inetOrgPerson
uid: a
mail: a@x

dn: uid=lonely,ou=people,o=x
objectClass: inetOrgPerson
uid: lonely

dn: cn=staff,ou=groups,o=x
objectClass: groupOfNames
cn: staff
member: UID=ZOE, OU=People,o=X
member: uid=a,ou=people,o=x
member: cn=nested,ou=groups,o=x
member: uid=ghost,ou=people,o=x

dn: cn=nested,ou=groups,o=x
objectClass: groupOfUniqueNames
cn: nested
uniqueMember: uid=a,ou=people,o=x
member: uid=zoe,ou=people,o=x

dn: cn=Admins,ou=groups,o=x
objectClass: groupOfNames
cn: Admins
member: uid=zoe,ou=people,o=x
member: uid=zoe,ou=people,o=x
";

    fn group_names(u: &DirectoryUser) -> Vec<&'static str> {
        u.credential.groups()
    }

    fn run(text: &str, m: &Mapping) -> Result<Vec<DirectoryUser>, EntryError> {
        let mut wanted = m.user_types().types().to_vec();
        wanted.extend(m.group_types().types().iter().cloned());
        let entries = ldif::parse(text.as_bytes(), &Wanted::new(wanted)).unwrap();
        let dns: Vec<Dn> = entries.iter().map(|e| dn_of(e).unwrap()).collect();
        let placed = |f: &crate::directory::filter::Filter| {
            entries
                .iter()
                .zip(&dns)
                .filter(|(e, _)| f.matches(*e))
                .collect::<Vec<_>>()
        };
        build(&placed(&m.users.filter), &placed(&m.groups.filter), m)
    }

    #[test]
    fn groups_sorted_members_matched_as_dns() {
        let users = run(LDIF, &Mapping::default()).unwrap();
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a", "lonely", "Zoë"]);
        assert_eq!(group_names(&users[0]), ["nested", "staff"]);
        assert!(group_names(&users[1]).is_empty());
        assert_eq!(group_names(&users[2]), ["Admins", "nested", "staff"]);
        assert_eq!(users[2].credential.len(), 3);
        assert_eq!(
            users[2].credential.get("emailaddress"),
            Some(AttrValue::Many(vec!["z@x".into(), "zoe@x".into()]))
        );
        assert_eq!(
            users[0].credential.get("emailAddress"),
            Some(AttrValue::One("a@x".into()))
        );
        assert_eq!(users[1].credential.len(), 2, "principal and groups only");
        assert_eq!(
            users[1].credential.get_str("AZN_CRED_PRINCIPAL_NAME"),
            Some("lonely")
        );
    }

    #[test]
    fn groups_from_member_of() {
        let text = "dn: uid=a,o=x\nobjectClass: inetOrgPerson\nuid: a\nmemberOf: CN=G2,o=x\nmemberOf: cn=g1,o=x\nmemberOf: cn=unknown,o=x\n\ndn: cn=g1,o=x\nobjectClass: groupOfNames\ncn: g1\n\ndn: cn=g2,o=x\nobjectClass: groupOfNames\ncn: g2\n";
        let mut m = Mapping::default();
        m.groups.membership = Membership::From("memberof".into());
        let users = run(text, &m).unwrap();
        assert_eq!(group_names(&users[0]), ["g1", "g2"]);
    }

    #[test]
    fn duplicates_and_bad_values_name_the_line() {
        let text = "dn: uid=a,o=x\nobjectClass: inetOrgPerson\nuid: a\n\ndn: uid=b,o=x\nobjectClass: inetOrgPerson\nuid: A\n";
        let e = run(text, &Mapping::default()).unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(
            e.message.contains("also the name of line 1"),
            "{}",
            e.message
        );
        let text = "dn: cn=g,o=x\nobjectClass: groupOfNames\ncn: g\nmember: not a dn\n\ndn: uid=a,o=x\nobjectClass: inetOrgPerson\nuid: a\n";
        let e = run(text, &Mapping::default()).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(
            e.message.contains("the member `not a dn` is not a DN"),
            "{}",
            e.message
        );
    }
}
