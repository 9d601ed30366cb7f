//! The record layer: person-centric records over [`crate::Db`] with a secondary index on
//! the 12-digit national ID (see `docs/record-model.md`).
//!
//! - [`NationalId`] parses and validates IDs (`national_id.rs`);
//! - [`Store`] holds named collections of records (`store.rs`), written atomically with
//!   their index entries under per-key stripe locks (`write.rs`, `locks.rs`), in batches
//!   ([`StoreBatch`], `batch.rs`), read per person, per collection or per ID prefix
//!   (`query.rs`), checked and repaired (`verify.rs`), erased per person (`erase.rs`) and
//!   bulk-loaded per collection (`import.rs`);
//! - [`audit`]: the audit log and access policy — [`Store::as_actor`] gives the checked,
//!   audited way in ([`audit::ActorStore`]);
//! - [`feed`]: the change feed — every write's change in the same batch, subscriptions with
//!   durable cursors, retention;
//! - application keys (`app_keys.rs`): an application's bookkeeping committed in a record
//!   batch ([`StoreBatch::put_app`]), e.g. the Raft state machine's last applied log id;
//! - keys and values have fixed layouts (`keys.rs`, `value.rs`), collection names map to
//!   small ids through a persisted catalog (`catalog.rs`);
//! - `population` (feature `testing`) generates seeded synthetic populations for tests,
//!   demos and benchmarks.

mod app_keys;
pub mod audit;
mod batch;
mod catalog;
mod erase;
mod error;
pub mod feed;
mod import;
mod keys;
mod locks;
mod national_id;
#[cfg(any(test, feature = "testing"))]
pub mod population;
mod query;
mod store;
mod value;
pub mod vault;
mod verify;
mod write;

pub use app_keys::MAX_APP_KEY_LEN;
pub use audit::{AccessContext, AccessPolicy, AccessRule, ActorStore, AuditKey, AuditOptions};
pub use batch::StoreBatch;
pub use catalog::MAX_COLLECTIONS;
pub use erase::{Erasure, ErasureReceipt};
pub use error::{Error, Result};
pub use feed::{
    AckMode, Change, ChangeCursor, ChangeKind, FeedOptions, SubscriptionFilter, SubscriptionInfo, TrimReport,
};
pub use import::{ImportReport, RowProblem, MAX_LISTED_ROW_PROBLEMS};
pub use keys::{CollectionId, StoreKey, MAX_COLLECTION_NAME_LEN, MAX_PK_LEN};
pub use locks::DEFAULT_LOCK_STRIPES;
pub use national_id::{Gender, IdRules, InvalidIdReason, NationalId, NATIONAL_ID_LEN, PROVINCE_CODES};
pub use query::{IdQuery, IndexIter, PersonIter, RecordIter};
pub use store::{Store, StoreOptions};
pub use value::{decode_payload, decode_record_value, IndexEntry, Record};
pub use vault::PersonKeys;
pub use verify::{IndexProblem, IndexReport, MAX_LISTED_PROBLEMS};
