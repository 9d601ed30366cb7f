//! [`LevelIter`]: one cursor over a level's sorted, non-overlapping tables, opening each
//! table only when the cursor reaches it.

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::InternalIterator;
use crate::key::compare_internal;
use crate::sst::SstIter;
use crate::version::TableFile;
use crate::Result;

/// Concatenates the tables of one level (level >= 1).
pub(crate) struct LevelIter {
    files: Vec<Arc<TableFile>>,
    index: usize,
    cur: Option<SstIter>,
}

impl LevelIter {
    /// `files` must be sorted by smallest key and must not overlap.
    pub(crate) fn new(files: Vec<Arc<TableFile>>) -> Self {
        LevelIter { files, index: 0, cur: None }
    }

    fn open(&mut self, index: usize) -> Result<bool> {
        self.cur = None;
        self.index = index;
        let Some(f) = self.files.get(index) else {
            return Ok(false);
        };
        self.cur = Some(f.reader()?.iter());
        Ok(true)
    }

    fn cur_valid(&self) -> bool {
        self.cur.as_ref().is_some_and(|c| c.valid())
    }

    /// Moves to following tables until positioned on an entry or past the last table.
    fn skip_forward(&mut self) -> Result<()> {
        while self.cur.is_some() && !self.cur_valid() {
            if !self.open(self.index + 1)? {
                return Ok(());
            }
            if let Some(c) = &mut self.cur {
                c.seek_to_first()?;
            }
        }
        Ok(())
    }

    /// Moves to preceding tables until positioned on an entry or before the first table.
    fn skip_backward(&mut self) -> Result<()> {
        while self.cur.is_some() && !self.cur_valid() {
            let Some(prev) = self.index.checked_sub(1) else {
                self.cur = None;
                return Ok(());
            };
            self.open(prev)?;
            if let Some(c) = &mut self.cur {
                c.seek_to_last()?;
            }
        }
        Ok(())
    }

    fn guard<T>(&mut self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.cur = None;
        }
        r
    }
}

impl InternalIterator for LevelIter {
    fn valid(&self) -> bool {
        self.cur_valid()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        let r = (|| {
            if self.open(0)? {
                if let Some(c) = &mut self.cur {
                    c.seek_to_first()?;
                }
            }
            self.skip_forward()
        })();
        self.guard(r)
    }

    fn seek_to_last(&mut self) -> Result<()> {
        let r = (|| {
            if let Some(last) = self.files.len().checked_sub(1) {
                self.open(last)?;
                if let Some(c) = &mut self.cur {
                    c.seek_to_last()?;
                }
            } else {
                self.cur = None;
            }
            self.skip_backward()
        })();
        self.guard(r)
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let r = (|| {
            let i = self.files.partition_point(|f| compare_internal(&f.meta.largest, target) == Ordering::Less);
            if self.open(i)? {
                if let Some(c) = &mut self.cur {
                    c.seek(target)?;
                }
            }
            self.skip_forward()
        })();
        self.guard(r)
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        let r = (|| {
            let i = self.files.partition_point(|f| compare_internal(&f.meta.smallest, target) != Ordering::Greater);
            let Some(i) = i.checked_sub(1) else {
                self.cur = None;
                return Ok(());
            };
            self.open(i)?;
            if let Some(c) = &mut self.cur {
                c.seek_for_prev(target)?;
            }
            self.skip_backward()
        })();
        self.guard(r)
    }

    fn next(&mut self) -> Result<()> {
        debug_assert!(self.valid(), "LevelIter::next on a cursor that is not valid");
        let r = (|| {
            if let Some(c) = &mut self.cur {
                c.next()?;
            }
            self.skip_forward()
        })();
        self.guard(r)
    }

    fn prev(&mut self) -> Result<()> {
        debug_assert!(self.valid(), "LevelIter::prev on a cursor that is not valid");
        let r = (|| {
            if let Some(c) = &mut self.cur {
                c.prev()?;
            }
            self.skip_backward()
        })();
        self.guard(r)
    }

    fn key(&self) -> &[u8] {
        debug_assert!(self.valid(), "LevelIter::key on a cursor that is not valid");
        self.cur.as_ref().map(|c| c.key()).unwrap_or_default()
    }

    fn value(&self) -> Bytes {
        debug_assert!(self.valid(), "LevelIter::value on a cursor that is not valid");
        self.cur.as_ref().map(|c| c.value()).unwrap_or_default()
    }
}
