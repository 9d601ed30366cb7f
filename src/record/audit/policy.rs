//! [`AccessPolicy`]: which actors may read or write which collections, for which declared
//! purposes; stored and versioned in the store (`M|policy`), changed only through an
//! audited [`ActorStore::set_policy`](super::ActorStore::set_policy).
//!
//! A policy is a list of [`AccessRule`]s; an access is allowed when some rule names its
//! actor, its purpose (or `*`) and, for a collection, that collection (or `*`), with the
//! right (read, write, admin). No rule, no access: a store with a policy denies everything
//! the policy does not allow. Erasure and ID-prefix queries span every collection and need
//! a rule with collection `*`; changing the policy or pruning the audit log needs `admin`.
//!
//! Stored value: `version: u64 BE | MessagePack of the policy`.

use serde::{Deserialize, Serialize};

use super::AccessContext;

/// The wildcard in a rule's collections or purposes.
pub const ANY: &str = "*";

/// Who may do what; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPolicy {
    /// The rules; an access is allowed if any rule allows it.
    pub rules: Vec<AccessRule>,
}

/// One rule of an [`AccessPolicy`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRule {
    /// The actor it applies to.
    pub actor: String,
    /// Collections it covers; `*` for all.
    pub collections: Vec<String>,
    /// Declared purposes it covers; `*` for any.
    pub purposes: Vec<String>,
    /// May read records (get, person, scan; query when collections holds `*`).
    #[serde(default)]
    pub read: bool,
    /// May write records (insert, upsert, delete; erase when collections holds `*`).
    #[serde(default)]
    pub write: bool,
    /// May change the policy and prune the audit log.
    #[serde(default)]
    pub admin: bool,
}

/// A right a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Right {
    Read,
    Write,
    Admin,
}

impl AccessRule {
    fn grants(&self, ctx: &AccessContext, right: Right) -> bool {
        let has = match right {
            Right::Read => self.read,
            Right::Write => self.write,
            Right::Admin => self.admin,
        };
        has && self.actor == ctx.actor() && self.purposes.iter().any(|p| p == ANY || p == ctx.purpose())
    }

    fn covers(&self, collection: &str) -> bool {
        self.collections.iter().any(|c| c == ANY || c == collection)
    }
}

impl AccessPolicy {
    /// Whether `ctx` may exercise `right` on `collection`.
    pub(crate) fn allows(&self, ctx: &AccessContext, right: Right, collection: &str) -> bool {
        self.rules.iter().any(|r| r.grants(ctx, right) && r.covers(collection))
    }

    /// Whether `ctx` may exercise `right` on every collection (a rule with `*`).
    pub(crate) fn allows_all(&self, ctx: &AccessContext, right: Right) -> bool {
        self.rules.iter().any(|r| r.grants(ctx, right) && r.collections.iter().any(|c| c == ANY))
    }

    /// Whether `ctx` may exercise `right` at all (admin rights ignore collections).
    pub(crate) fn allows_any(&self, ctx: &AccessContext, right: Right) -> bool {
        self.rules.iter().any(|r| r.grants(ctx, right))
    }

    /// Checks names: actors and purposes non-empty, every rule grants something.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (i, r) in self.rules.iter().enumerate() {
            if r.actor.is_empty() || r.purposes.is_empty() || r.purposes.iter().any(String::is_empty) {
                return Err(format!("access rule {i}: actor and purposes must be non-empty"));
            }
            if !(r.read || r.write || r.admin) {
                return Err(format!("access rule {i} grants nothing (read, write or admin)"));
            }
            if (r.read || r.write) && r.collections.is_empty() {
                return Err(format!("access rule {i} names no collection (use \"*\" for all)"));
            }
        }
        Ok(())
    }

    /// The stored value: `version | MessagePack`.
    pub(crate) fn encode(&self, version: u64) -> Result<Vec<u8>, String> {
        let mut v = version.to_be_bytes().to_vec();
        v.extend(rmp_serde::to_vec(self).map_err(|e| format!("encoding the access policy: {e}"))?);
        Ok(v)
    }

    /// Decodes a stored value into `(version, policy)`.
    pub(crate) fn decode(v: &[u8]) -> Result<(u64, AccessPolicy), String> {
        let (version, body) = v.split_at_checked(8).ok_or("access policy cut short")?;
        let version = u64::from_be_bytes(version.try_into().map_err(|_| "access policy version")?);
        let policy = rmp_serde::from_slice(body).map_err(|_| "access policy does not decode".to_string())?;
        Ok((version, policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(actor: &str, purpose: &str) -> AccessContext {
        AccessContext::new(actor, purpose).unwrap()
    }

    #[test]
    fn rules_allow_only_what_they_name() {
        let p = AccessPolicy {
            rules: vec![
                AccessRule {
                    actor: "tax".into(),
                    collections: vec!["tax".into()],
                    purposes: vec!["assessment".into()],
                    read: true,
                    ..AccessRule::default()
                },
                AccessRule {
                    actor: "registry".into(),
                    collections: vec![ANY.into()],
                    purposes: vec![ANY.into()],
                    read: true,
                    write: true,
                    ..AccessRule::default()
                },
            ],
        };
        p.validate().unwrap();
        let tax = ctx("tax", "assessment");
        assert!(p.allows(&tax, Right::Read, "tax"));
        assert!(!p.allows(&tax, Right::Read, "health"));
        assert!(!p.allows(&tax, Right::Write, "tax"));
        assert!(!p.allows(&ctx("tax", "marketing"), Right::Read, "tax"));
        assert!(!p.allows_all(&tax, Right::Read));
        let reg = ctx("registry", "anything");
        assert!(p.allows(&reg, Right::Write, "health") && p.allows_all(&reg, Right::Write));
        assert!(!p.allows_any(&reg, Right::Admin));
        let (v, back) = AccessPolicy::decode(&p.encode(7).unwrap()).unwrap();
        assert_eq!((v, back), (7, p));
        assert!(AccessPolicy::decode(&[1, 2]).is_err());
        let empty = AccessPolicy { rules: vec![AccessRule { actor: "x".into(), ..AccessRule::default() }] };
        assert!(empty.validate().is_err());
    }
}
