//! Streaming reads: records of a collection ([`Store::scan`]) and index entries or persons
//! whose national ID starts with a prefix ([`IdQuery`]: a province, a province and
//! century/gender digit, a birth year within a province).
//!
//! Each iterator reads from one snapshot taken when it is created, so it sees one state of
//! the store however long it runs, and holds only the current block of each file in memory.

use std::sync::Arc;

use bytes::Bytes;

use super::error::{Error, Result};
use super::keys::{collection_prefix, parse_index_key, parse_record_key, TAG_INDEX};
use super::national_id::{Gender, NationalId};
use super::store::{Store, StoreInner};
use super::value::{IndexEntry, Record};
use crate::DbIterator;

/// A set of national IDs sharing a prefix, for range queries over the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdQuery {
    /// Everyone: the whole index.
    All,
    /// Everyone whose birth was registered in `province` (`PPP`).
    Province(u16),
    /// Everyone registered in `province` with century/gender digit `digit` (`PPP G`).
    ProvinceCenturyGender {
        /// Province code.
        province: u16,
        /// Century/gender digit, 0-9.
        digit: u8,
    },
    /// Everyone registered in `province` and born in `year`, both genders (`PPP G YY` for
    /// the two digits of that century).
    BirthYear {
        /// Province code.
        province: u16,
        /// Birth year, 1900-2399.
        year: u16,
    },
}

impl IdQuery {
    /// The index-key prefixes covering the query, ascending.
    pub(crate) fn prefixes(&self) -> Result<Vec<Vec<u8>>> {
        let bad = |m: String| Err(Error::invalid(m));
        let province = |p: u16| -> Result<String> {
            if p >= 1000 {
                return Err(Error::invalid(format!("province code {p} has more than 3 digits")));
            }
            Ok(format!("{p:03}"))
        };
        let with_tag = |s: String| {
            let mut k = vec![TAG_INDEX];
            k.extend_from_slice(s.as_bytes());
            k
        };
        match *self {
            IdQuery::All => Ok(vec![vec![TAG_INDEX]]),
            IdQuery::Province(p) => Ok(vec![with_tag(province(p)?)]),
            IdQuery::ProvinceCenturyGender { province: p, digit } => {
                if digit > 9 {
                    return bad(format!("century/gender digit {digit} is not a digit"));
                }
                Ok(vec![with_tag(format!("{}{digit}", province(p)?))])
            }
            IdQuery::BirthYear { province: p, year } => {
                let p = province(p)?;
                let ids = [Gender::Male, Gender::Female].map(|g| NationalId::from_parts(0, g, year, 0));
                let [Some(m), Some(f)] = ids else {
                    return bad(format!("birth year {year} is outside 1900-2399"));
                };
                Ok([m, f].iter().map(|id| with_tag(format!("{p}{}", &id.as_str()[3..6]))).collect())
            }
        }
    }
}

impl Store {
    /// Every record of `collection`, in primary-key byte order (empty if the collection does
    /// not exist).
    pub fn scan(&self, collection: &str) -> Result<RecordIter> {
        self.inner.check_unaudited()?;
        self.scan_unchecked(collection)
    }

    /// [`Self::scan`] without the access check (the audited path checks first).
    pub(crate) fn scan_unchecked(&self, collection: &str) -> Result<RecordIter> {
        let snap = self.inner.db.snapshot();
        let iter = match self.inner.catalog.lookup(collection) {
            Some(cid) => Some(snap.prefix(collection_prefix(cid))?),
            None => None,
        };
        Ok(RecordIter { inner: self.inner.clone(), iter })
    }

    /// Every index entry whose national ID matches `query`, ordered by ID, collection id and
    /// primary key.
    pub fn query(&self, query: &IdQuery) -> Result<IndexIter> {
        self.inner.check_unaudited()?;
        self.query_unchecked(query)
    }

    /// [`Self::query`] without the access check (the audited path checks first).
    pub(crate) fn query_unchecked(&self, query: &IdQuery) -> Result<IndexIter> {
        let snap = self.inner.db.snapshot();
        let iters = query.prefixes()?.iter().map(|p| snap.prefix(p)).collect::<crate::Result<Vec<_>>>()?;
        Ok(IndexIter { inner: self.inner.clone(), iters: iters.into_iter().rev().collect() })
    }

    /// Every distinct person (national ID) with at least one record matching `query`,
    /// ascending.
    pub fn persons(&self, query: &IdQuery) -> Result<PersonIter> {
        Ok(PersonIter::new(self.query(query)?))
    }
}

/// The records of a collection; see [`Store::scan`].
pub struct RecordIter {
    inner: Arc<StoreInner>,
    iter: Option<DbIterator>,
}

impl std::fmt::Debug for RecordIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordIter").finish_non_exhaustive()
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (k, v) = match self.iter.as_mut()?.next()? {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            let Some((cid, pk)) = parse_record_key(&k) else {
                return Some(Err(self.inner.corrupt_record(&k, "malformed record key")));
            };
            let pk = k.slice_ref(pk);
            match self.inner.to_record(&k, cid, pk, &v) {
                // Sealed under a destroyed key: an erased person's ciphertext.
                Ok(None) => continue,
                Ok(Some(r)) => return Some(Ok(r)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Index entries matching an [`IdQuery`]; see [`Store::query`].
pub struct IndexIter {
    inner: Arc<StoreInner>,
    /// Remaining prefix scans, the next one last.
    iters: Vec<DbIterator>,
}

impl std::fmt::Debug for IndexIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexIter").finish_non_exhaustive()
    }
}

impl IndexIter {
    fn entry(&self, k: &Bytes) -> Result<IndexEntry> {
        let (id, cid, pk) = parse_index_key(k).ok_or_else(|| self.inner.corrupt_record(k, "malformed index key"))?;
        let collection =
            self.inner.catalog.name(cid).ok_or_else(|| self.inner.corrupt_record(k, "unknown collection id"))?;
        Ok(IndexEntry { id, collection, pk: k.slice_ref(pk) })
    }
}

impl Iterator for IndexIter {
    type Item = Result<IndexEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let it = self.iters.last_mut()?;
            match it.next() {
                Some(Ok((k, _))) => return Some(self.entry(&k)),
                Some(Err(e)) => return Some(Err(e.into())),
                None => {
                    self.iters.pop();
                }
            }
        }
    }
}

/// Distinct persons matching an [`IdQuery`]; see [`Store::persons`].
#[derive(Debug)]
pub struct PersonIter {
    entries: IndexIter,
    last: Option<NationalId>,
}

impl PersonIter {
    pub(crate) fn new(entries: IndexIter) -> PersonIter {
        PersonIter { entries, last: None }
    }
}

impl Iterator for PersonIter {
    type Item = Result<NationalId>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.entries.next()? {
                Ok(e) if Some(e.id) == self.last => continue,
                Ok(e) => {
                    self.last = Some(e.id);
                    return Some(Ok(e.id));
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
