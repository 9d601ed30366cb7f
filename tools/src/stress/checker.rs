//! Checking what the database returns against the oracle: one read ([`Expect::check`]), and
//! the whole database after a recovery ([`verify_recovered`]), followed by [`reconcile`],
//! which turns the writes lost in flight into dead versions so they can never come back
//! unnoticed.

use bytes::Bytes;
use kho::{Db, WriteBatch, WriteOptions};

use super::codec::{self, decode_value};
use super::oracle::{Issued, Kind, Oracle, Source, State, CHECKER_THREAD};
use super::report::{Counter, Violation};

/// Which oracle word is the lower bound of what a read may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    /// Every acknowledged write: live reads, and recovery after a process crash (an
    /// acknowledged write was handed to the kernel, which a `SIGKILL` does not undo).
    Committed,
    /// Only writes acknowledged with sync: recovery after a simulated power loss (or a failed
    /// fsync that dropped the unsynced pages).
    Durable,
    /// Nothing: any version that was written (or absence) is allowed, but never a value that
    /// was not written. Recovery after an epoch with bit flips on write, whose damage recovery
    /// may drop as a torn tail (see `faults.rs`).
    Written,
}

impl Floor {
    pub fn load(self, o: &Oracle, key: u32) -> State {
        match self {
            Floor::Committed => o.committed(key),
            Floor::Durable => o.durable(key),
            Floor::Written => State { version: 0, absent: true },
        }
    }
}

/// What a read of one key may return: loaded `floor` before the read, `issued` after it.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub floor: State,
    pub issued: Issued,
}

/// Why a read is wrong.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub what: &'static str,
    pub expected: String,
    pub found: String,
}

impl Mismatch {
    pub fn into_violation(self, key: u32, during: String) -> Violation {
        Violation {
            key: Some(key),
            expected: self.expected,
            found: self.found,
            ..Violation::general(self.what, during)
        }
    }
}

impl Expect {
    /// Describes the allowed outcomes.
    pub fn describe(&self) -> String {
        let absent_ok = self.absent_allowed();
        let Expect { floor, issued } = *self;
        let later = if issued.version > floor.version {
            format!(", or a later version up to v{} (writes in flight)", issued.version)
        } else {
            String::new()
        };
        format!("{floor}{later}; absent allowed: {}", if absent_ok { "yes" } else { "no" })
    }

    fn absent_allowed(&self) -> bool {
        self.floor.absent || self.issued.last_delete > self.floor.version
    }

    /// Checks a read of key `key` that found `found`; returns the version found (`None`:
    /// absent).
    pub fn check(&self, key: u32, found: Option<&[u8]>, value_size: usize) -> Result<Option<u32>, Mismatch> {
        match found {
            None => self.check_version(None),
            Some(bytes) => match decode_value(key, bytes, value_size) {
                Ok(v) => self.check_version(Some(v)),
                Err(why) => {
                    Err(Mismatch { what: "a value that was never written", expected: self.describe(), found: why })
                }
            },
        }
    }

    /// Checks that version `found` (`None`: absent) is one a read may see.
    pub fn check_version(&self, found: Option<u32>) -> Result<Option<u32>, Mismatch> {
        let fail = |what: &'static str, found: String| Err(Mismatch { what, expected: self.describe(), found });
        let Some(version) = found else {
            return if self.absent_allowed() {
                Ok(None)
            } else {
                fail("acknowledged write lost: the key is absent", "absent".into())
            };
        };
        let found = format!("value v{version}");
        if version > self.issued.version {
            fail("a value that was never written (version never issued)", found)
        } else if version == self.issued.last_delete || (version == self.floor.version && self.floor.absent) {
            fail("a value that was never written (that version is a delete)", found)
        } else if version < self.floor.version {
            fail("acknowledged write lost: an older value is back", found)
        } else {
            Ok(Some(version))
        }
    }

    /// The state a recovery that found `version` (`None`: absent) leaves.
    pub fn recovered_state(&self, version: Option<u32>) -> State {
        match version {
            Some(v) => State { version: v, absent: false },
            None => State { version: self.floor.version.max(self.issued.last_delete), absent: true },
        }
    }
}

/// The database after a recovery, as found by [`verify_recovered`].
pub struct Recovered {
    /// Per key, the state found.
    pub states: Vec<State>,
    /// Keys present.
    pub present: u64,
}

/// One key of a full scan: index, version (if the value decodes) and the value.
type Scanned = (u32, Option<u32>, Vec<u8>);

/// Reads the whole database (forward scan, reverse scan, a point read of every key) and
/// checks every key against `floor ..= issued`: nothing acknowledged is missing, nothing never
/// written is there, the three views agree and the scans are ordered.
pub fn verify_recovered(db: &Db, o: &Oracle, floor: Floor, during: &str) -> Result<Recovered, Violation> {
    let n = o.keys();
    let vs = o.value_size();
    let err = |what: &str, e: kho::Error| Violation::general(format!("{what} failed after recovery: {e}"), during);
    let scan = |rev: bool| -> Result<Vec<Scanned>, Violation> {
        // The record layer's keys (upper-case tags) share the keyspace; ours start with `k`.
        let iter = db.prefix(b"k").map_err(|e| err("creating an iterator", e))?;
        let items: Box<dyn Iterator<Item = kho::Result<(Bytes, Bytes)>>> =
            if rev { Box::new(iter.rev()) } else { Box::new(iter) };
        let mut out: Vec<Scanned> = Vec::new();
        for item in items {
            let (k, v) = item.map_err(|e| err(if rev { "reverse scan" } else { "forward scan" }, e))?;
            let Some(i) = codec::parse_key(&k).filter(|&i| i < n) else {
                return Err(Violation {
                    found: format!("key {:?}", String::from_utf8_lossy(&k)),
                    ..Violation::general("a key that was never written appeared", during)
                });
            };
            if let Some(&(prev, _, _)) = out.last() {
                if (!rev && prev >= i) || (rev && prev <= i) {
                    return Err(Violation {
                        expected: format!("keys strictly {}", if rev { "descending" } else { "ascending" }),
                        found: format!("index {i} after index {prev}"),
                        key: Some(i),
                        ..Violation::general("scan out of order after recovery", during)
                    });
                }
            }
            out.push((i, decode_value(i, &v, vs).ok(), v.to_vec()));
        }
        Ok(out)
    };
    let forward = scan(false)?;
    let mut reverse = scan(true)?;
    reverse.reverse();
    if forward != reverse {
        let at = forward.iter().zip(&reverse).position(|(a, b)| a != b).unwrap_or(forward.len().min(reverse.len()));
        let key = forward.get(at).or(reverse.get(at)).map(|x| x.0);
        return Err(Violation {
            key,
            expected: format!("{} keys, as the forward scan found", forward.len()),
            found: format!("{} keys; first difference at position {at}", reverse.len()),
            ..Violation::general("forward and reverse scans disagree after recovery", during)
        });
    }
    let mut by_key: Vec<Option<&[u8]>> = vec![None; n as usize];
    for (i, _, v) in &forward {
        by_key[*i as usize] = Some(v);
    }
    let mut states = Vec::with_capacity(n as usize);
    for k in 0..n {
        let got = db.get(codec::key(k)).map_err(|e| err("get", e))?;
        let scanned = by_key[k as usize];
        if got.as_deref() != scanned {
            return Err(Violation {
                key: Some(k),
                expected: format!("what the scan found: {}", describe(k, scanned, vs)),
                found: describe(k, got.as_deref(), vs),
                ..Violation::general("get and scan disagree after recovery", during)
            }
            .with_history(o));
        }
        let expect = Expect { floor: floor.load(o, k), issued: o.issued(k) };
        let version = expect
            .check(k, scanned, vs)
            .map_err(|m| m.into_violation(k, format!("{during} (floor: {floor:?})")).with_history(o))?;
        states.push(expect.recovered_state(version));
    }
    Counter::Checks.add(o, u64::from(n));
    Ok(Recovered { present: forward.len() as u64, states })
}

fn describe(k: u32, v: Option<&[u8]>, vs: usize) -> String {
    match v {
        None => "absent".into(),
        Some(b) => match decode_value(k, b, vs) {
            Ok(v) => format!("value v{v}"),
            Err(why) => why,
        },
    }
}

/// After [`verify_recovered`]: records the recovered states in the oracle and, for every
/// key whose newest issued version did not survive, writes version `issued + 1` (same
/// presence as recovered, synced), so the versions lost in flight lie below the floor and any
/// later reappearance of one is caught. Single-threaded (no worker runs). Returns the number
/// of keys reconciled.
pub fn reconcile(db: &Db, o: &Oracle, rec: &Recovered, cycle: u16) -> kho::Result<u64> {
    let mut batch = WriteBatch::new();
    let mut pending: Vec<(u32, u32, Kind)> = Vec::new();
    let mut fixed = 0;
    for (k, &state) in (0u32..).zip(&rec.states) {
        o.set_recovered(k, state, cycle);
        if state.version >= o.issued(k).version {
            continue;
        }
        let kind = if state.absent { Kind::Delete } else { Kind::Put };
        let v = o.begin(k, kind, Source::Reconcile, CHECKER_THREAD, cycle);
        match kind {
            Kind::Put => batch.put(codec::key(k), codec::value(k, v, o.value_size())),
            Kind::Delete => batch.delete(codec::key(k)),
        }
        pending.push((k, v, kind));
        if pending.len() >= 512 {
            fixed += flush_reconcile(db, o, &mut batch, &mut pending, cycle)?;
        }
    }
    fixed += flush_reconcile(db, o, &mut batch, &mut pending, cycle)?;
    Ok(fixed)
}

fn flush_reconcile(
    db: &Db,
    o: &Oracle,
    batch: &mut WriteBatch,
    pending: &mut Vec<(u32, u32, Kind)>,
    cycle: u16,
) -> kho::Result<u64> {
    if pending.is_empty() {
        return Ok(0);
    }
    db.write(std::mem::take(batch), &WriteOptions::synced())?;
    let n = pending.len() as u64;
    for (k, v, kind) in pending.drain(..) {
        o.ack(k, v, kind, true, Source::Reconcile, CHECKER_THREAD, cycle);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VS: usize = 32;

    fn exp(floor: (u32, bool), issued: u32, last_delete: u32) -> Expect {
        Expect { floor: State { version: floor.0, absent: floor.1 }, issued: Issued { version: issued, last_delete } }
    }

    #[test]
    fn reads_within_floor_and_issued_pass() {
        let e = exp((3, false), 5, 4);
        assert_eq!(e.check(1, Some(&codec::value(1, 3, VS)), VS).unwrap(), Some(3));
        assert_eq!(e.check(1, Some(&codec::value(1, 5, VS)), VS).unwrap(), Some(5));
        assert_eq!(e.check(1, None, VS).unwrap(), None, "the delete v4 may have landed");
        assert_eq!(exp((0, true), 0, 0).check(1, None, VS).unwrap(), None);
    }

    #[test]
    fn lost_stale_phantom_and_foreign_values_fail() {
        let e = exp((3, false), 5, 1);
        assert!(e.check(1, None, VS).unwrap_err().what.contains("lost"));
        assert!(e.check(1, Some(&codec::value(1, 2, VS)), VS).unwrap_err().what.contains("older value"));
        assert!(e.check(1, Some(&codec::value(1, 6, VS)), VS).unwrap_err().what.contains("never issued"));
        assert!(e.check(1, Some(&codec::value(2, 4, VS)), VS).unwrap_err().what.contains("never written"));
        let d = exp((4, true), 4, 4);
        assert!(d.check(1, Some(&codec::value(1, 4, VS)), VS).unwrap_err().what.contains("delete"));
        assert!(d.describe().contains("absent allowed: yes"));
    }
}
