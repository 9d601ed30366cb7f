//! The national-ID index check of `kho verify`: the index equals the records. It runs
//! `Store::verify_index_with` over a read-only open (a record store opened with
//! `Store::open_read_only`): two streaming passes over one snapshot, every record against its
//! index entry and every index entry against its record. Each discrepancy is one problem line
//! with file `index` and no offset:
//!
//! ```text
//! index - missing entry I|<id>|<collection>|<pk>: record R|<collection>|<pk> has no index entry
//! index - dangling entry I|<id>|<collection>|<pk>: no record
//! index - dangling entry I|<id>|<collection>|<pk>: the record belongs to <other id>
//! index - malformed key "<key>": <what>
//! ```
//!
//! (`<pk>` and `<key>` escaped as everywhere in `kho`.) Problems are handed to the caller as
//! they are found, never collected: a store whose index is wholly wrong costs no memory per
//! problem.
//!
//! A database that is not a record store (no `M|format` key) is not checked: a note. When
//! the database cannot be opened or read to the end, that is a problem if the file checks
//! found none (something they cannot see is wrong) and a note otherwise (the damage they
//! reported is the likely cause).

use std::path::Path;

use kho::record::{IndexProblem, NationalId, Store, StoreOptions};

use crate::dbdir::Problem;
use crate::fmt::escape;
use crate::out;

/// The file column of the index check's problem lines.
pub const FILE: &str = "index";

/// What the index check did.
#[derive(Debug, Default, serde::Serialize)]
pub struct IndexChecked {
    /// The index was compared with the records, to the end.
    pub checked: bool,
    /// Records read.
    pub records: u64,
    /// Index entries read.
    pub index_entries: u64,
    /// Records without their index entry.
    pub missing: u64,
    /// Index entries without their record (or whose record belongs to another ID).
    pub dangling: u64,
    /// Record-layer keys or values that do not decode.
    pub malformed: u64,
    /// Problem lines handed to `emit` (including one for a check that could not run or finish).
    pub problems: u64,
}

/// Compares the index of the record store in `dir` with its records, handing every problem
/// to `emit` as it is found. `files_clean` says whether the file checks found no problem;
/// notes go to `notes`. Errors are `emit`'s (e.g. a closed pipe).
pub fn check(
    dir: &Path,
    keys: &crate::keys::Keys,
    files_clean: bool,
    notes: &mut Vec<String>,
    emit: &mut dyn FnMut(&Problem) -> std::io::Result<()>,
) -> anyhow::Result<IndexChecked> {
    let mut done = IndexChecked::default();
    let db = match crate::kv::open(dir, keys) {
        Ok(db) => db,
        Err(e) => {
            could_not_check(files_clean, &mut done, notes, format!("national-ID index not checked: {e:#}"), emit)?;
            return Ok(done);
        }
    };
    let store = match Store::open_read_only(db, StoreOptions::default()) {
        Ok(s) => s,
        Err(kho::record::Error::Engine(kho::Error::NotFound(_))) => {
            notes.push("no record store (no M|format key): the national-ID index was not checked".into());
            return Ok(done);
        }
        Err(e) => {
            could_not_check(
                files_clean,
                &mut done,
                notes,
                format!("national-ID index not checked: cannot read the record store: {e}"),
                emit,
            )?;
            return Ok(done);
        }
    };

    let spinner = out::spinner("checking the national-ID index");
    let mut emitted = 0u64;
    let mut write_error = None;
    let result = store.verify_index_with(|p| {
        if write_error.is_some() {
            return;
        }
        emitted += 1;
        let line = problem(&p);
        if let Err(e) = spinner.suspend(|| emit(&line)) {
            write_error = Some(e);
        }
    });
    spinner.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e.into());
    }
    done.problems = emitted;
    match result {
        Ok(r) => {
            done.checked = true;
            done.records = r.records;
            done.index_entries = r.index_entries;
            done.missing = r.missing;
            done.dangling = r.dangling;
            done.malformed = r.malformed;
        }
        Err(e) => {
            could_not_check(files_clean, &mut done, notes, format!("national-ID index check stopped: {e}"), emit)?
        }
    }
    Ok(done)
}

/// The index could not be checked (to the end) for `what` reason: a problem when the files
/// are clean, else a note.
fn could_not_check(
    files_clean: bool,
    done: &mut IndexChecked,
    notes: &mut Vec<String>,
    what: String,
    emit: &mut dyn FnMut(&Problem) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if files_clean {
        done.problems += 1;
        emit(&Problem::at(FILE, None, what))
    } else {
        notes.push(format!("{what} (the problems above are the likely cause)"));
        Ok(())
    }
}

/// The problem line of one discrepancy.
fn problem(p: &IndexProblem) -> Problem {
    let entry = |id: &NationalId, collection: &str, pk: &[u8]| format!("I|{id}|{collection}|{}", escape(pk));
    let what = match p {
        IndexProblem::Missing { collection, pk, id } => format!(
            "missing entry {}: record R|{collection}|{} has no index entry",
            entry(id, collection, pk),
            escape(pk)
        ),
        IndexProblem::Dangling { id, collection, pk, record_id: None } => {
            format!("dangling entry {}: no record", entry(id, collection, pk))
        }
        IndexProblem::Dangling { id, collection, pk, record_id: Some(owner) } => {
            format!("dangling entry {}: the record belongs to {owner}", entry(id, collection, pk))
        }
        IndexProblem::Malformed { key, what } => format!("malformed key \"{}\": {what}", escape(key)),
        other => format!("{other:?}"),
    };
    Problem::at(FILE, None, what)
}
