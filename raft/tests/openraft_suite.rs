//! openraft's own storage test suite (`openraft::testing::Suite`) against kho's log store
//! and state machine, each test on a fresh node directory.

use kho::record::StoreOptions;
use kho_raft::{LogStore, NodeDir, StateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

struct KhoBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for KhoBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let tmp = tempfile::tempdir().map_err(|e| openraft::StorageIOError::write(&e))?;
        let err = |e: kho_raft::Error| StorageError::from(openraft::StorageIOError::write(&e));
        let dir = NodeDir::std(tmp.path()).map_err(err)?;
        let log = LogStore::open(dir.log_dir(), dir.db_options()).map_err(err)?;
        let sm = StateMachine::open(dir, StoreOptions::default()).map_err(err)?;
        Ok((tmp, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes_on_kho() -> Result<(), Box<StorageError<u64>>> {
    Suite::test_all(KhoBuilder).map_err(Box::new)
}
