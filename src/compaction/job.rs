//! Running one [`CompactionTask`]: merge the inputs, drop what no reader can see, write
//! output tables cut at the target size and at grandparent-overlap boundaries, and describe
//! the result as a [`VersionEdit`]. The caller logs the edit and installs the new version.
//!
//! Invariant: an output is cut only between two different user keys, so every version of a
//! key lands in one file and the files of a level never overlap in user keys.

use std::cmp::Ordering;

use crate::iter::{InternalIterator, MergingIter};
use crate::key::{compare_internal, ParsedKey, SeqNo};
use crate::options::Options;
use crate::sst::SstOptions;
use crate::version::{TableContext, VersionEdit};
use crate::{Error, Result};

use super::gc::VersionGc;
use super::output::TableOutput;
use super::picker::{max_grandparent_overlap, CompactionTask};

/// What a compaction did.
#[derive(Debug, Default)]
pub(crate) struct CompactionResult {
    /// Inputs removed and outputs added.
    pub edit: VersionEdit,
    /// Bytes of input tables read.
    pub bytes_read: u64,
    /// Bytes of output tables written.
    pub bytes_written: u64,
    /// Versions and tombstones dropped.
    pub entries_dropped: u64,
}

/// Runs `task`. `snapshots` are the live snapshot sequence numbers, ascending;
/// `new_file_number` hands out numbers for output tables.
pub(crate) fn run(
    task: &CompactionTask,
    ctx: &TableContext,
    opts: &Options,
    sst_opts: &SstOptions,
    snapshots: &[SeqNo],
    new_file_number: &mut dyn FnMut() -> u64,
) -> Result<CompactionResult> {
    let mut result = CompactionResult::default();
    for (level, f) in task.all_inputs() {
        result.edit.deleted_files.push((level as u32, f.meta.number));
    }
    let out_level = task.output_level() as u32;
    if task.trivial_move {
        for f in &task.inputs {
            result.edit.new_files.push((out_level, f.meta.clone()));
        }
        return Ok(result);
    }

    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    for (_, f) in task.all_inputs() {
        children.push(Box::new(f.reader()?.scan_iter()));
    }
    let mut merged = MergingIter::new(children);
    merged.seek_to_first()?;

    let mut gc = VersionGc::with_deeper(snapshots, task.bottommost, &task.deeper_ranges);
    let mut cutter = OutputCutter::new(task, opts);
    let bounds = ctx.partitions.snapshot();
    let mut output: Option<TableOutput> = None;
    let mut settled = Vec::new();
    while merged.valid() {
        let key = merged.key();
        // Table blocks refuse malformed keys as corruption (`BlockIter`): here it is a bug.
        let p = ParsedKey::parse(key).ok_or_else(|| {
            Error::Internal(format!("compaction input yielded a malformed internal key of {} bytes", key.len()))
        })?;
        if !gc.keep(&p) {
            merged.next()?;
            continue;
        }
        let cut_here = cutter.should_cut_before(key);
        if let Some(out) = &output {
            let new_user_key = out.last_user_key() != p.user_key;
            if new_user_key
                && (cut_here
                    || out.estimated_size() >= opts.target_file_size
                    || out.index_full()
                    || crate::version::crosses_partition(&bounds, out.last_user_key(), p.user_key))
            {
                finish(output.take(), out_level, &mut result)?;
                cutter.output_finished();
            }
        }
        let out = match &mut output {
            Some(out) => out,
            None => output.insert(TableOutput::create(ctx, new_file_number(), sst_opts)?),
        };
        if gc.can_zero_seq(&p) && p.seq != 0 {
            settled.clear();
            crate::key::encode_internal_key(&mut settled, p.user_key, 0, p.kind);
            out.add(&settled, &merged.value())?;
        } else {
            out.add(key, &merged.value())?;
        }
        merged.next()?;
    }
    finish(output.take(), out_level, &mut result)?;
    result.bytes_read = task.input_bytes();
    result.entries_dropped = gc.dropped;
    if !result.edit.new_files.is_empty() {
        ctx.fs.sync_dir(&ctx.dir)?;
    }
    Ok(result)
}

fn finish(output: Option<TableOutput>, level: u32, result: &mut CompactionResult) -> Result<()> {
    if let Some(meta) = output.map(TableOutput::finish).transpose()?.flatten() {
        result.bytes_written += meta.size;
        result.edit.new_files.push((level, meta));
    }
    Ok(())
}

/// Tracks how much of the grandparent level the current output overlaps (LevelDB's
/// `ShouldStopBefore`), so no output makes a future compaction too expensive.
struct OutputCutter<'a> {
    task: &'a CompactionTask,
    index: usize,
    seen_key: bool,
    overlapped: u64,
    limit: u64,
}

impl<'a> OutputCutter<'a> {
    fn new(task: &'a CompactionTask, opts: &Options) -> Self {
        OutputCutter { task, index: 0, seen_key: false, overlapped: 0, limit: max_grandparent_overlap(opts) }
    }

    fn should_cut_before(&mut self, ikey: &[u8]) -> bool {
        let gps = &self.task.grandparents;
        while let Some(gp) = gps.get(self.index) {
            if compare_internal(ikey, &gp.meta.largest) != Ordering::Greater {
                break;
            }
            if self.seen_key {
                self.overlapped += gp.meta.size;
            }
            self.index += 1;
        }
        self.seen_key = true;
        self.overlapped > self.limit
    }

    /// The current output was finished (for overlap or size): the next one starts counting
    /// its grandparent overlap from zero. Kept separate from `should_cut_before` because a
    /// cut it asks for may wait for the next user key.
    fn output_finished(&mut self) {
        self.overlapped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::picker::tests::{meta, version};
    use crate::key::{internal_key, ValueKind};

    /// A cut the grandparent overlap asks for stays asked for until an output is actually
    /// finished (it may have to wait for the next user key), then counting starts over.
    #[test]
    fn overlap_cut_waits_for_the_output_to_finish() {
        let v = version(&[(2, meta(1, "a", "b", 1500)), (2, meta(2, "c", "d", 10)), (2, meta(3, "e", "f", 10))]);
        let task = CompactionTask {
            level: 0,
            inputs: Vec::new(),
            next_inputs: Vec::new(),
            grandparents: v.levels[2].clone(),
            bottommost: false,
            deeper_ranges: Vec::new(),
            trivial_move: false,
            in_place: false,
        };
        let opts = Options { target_file_size: 100, ..Options::default() }; // limit: 1000 bytes
        let mut cutter = OutputCutter::new(&task, &opts);
        let k = |uk: &str, seq| internal_key(uk.as_bytes(), seq, ValueKind::Put);
        assert!(!cutter.should_cut_before(&k("a", 9)));
        assert!(cutter.should_cut_before(&k("c", 9)), "past 1500 bytes of grandparent");
        assert!(cutter.should_cut_before(&k("c", 8)), "same user key: the cut is deferred, still due");
        cutter.output_finished();
        assert!(!cutter.should_cut_before(&k("c1", 9)));
        assert!(!cutter.should_cut_before(&k("e", 9)), "only 10 more bytes");
    }
}
