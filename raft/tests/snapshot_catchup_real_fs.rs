//! A follower that missed purged log entries catches up from a snapshot on the real file
//! system: the generation swap (unpack into `sm-000001/`, rename of `SM_CURRENT`, removal of
//! `sm-000000/`) and a reopen of the node afterwards, with the replicas equal.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kho::record::{NationalId, StoreOptions};
use kho_raft::testing::{test_config, Router};
use kho_raft::{digest, NodeDir, RaftStore, RecordOp};
use openraft::BasicNode;

async fn start(router: &Router, root: &std::path::Path, id: u64) -> RaftStore {
    let dir = NodeDir::std(root.join(format!("node-{id}"))).unwrap();
    let s =
        RaftStore::start(id, dir, StoreOptions::default(), test_config().unwrap(), router.network(id)).await.unwrap();
    router.add(id, s.raft().clone());
    s
}

async fn caught_up(a: &RaftStore, b: &RaftStore) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ma, mb) = (a.raft().metrics().borrow().clone(), b.raft().metrics().borrow().clone());
        if ma.last_applied.is_some()
            && ma.last_applied == mb.last_applied
            && ma.last_applied.map(|l| l.index) == ma.last_log_index
        {
            return;
        }
        assert!(Instant::now() < deadline, "no catch-up: {:?} vs {:?}", ma.last_applied, mb.last_applied);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_installs_a_snapshot_and_reopens_on_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let router = Router::new(5);
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(&router, root, id).await);
    }
    let members: BTreeMap<u64, BasicNode> = (1..=3).map(|id| (id, BasicNode::default())).collect();
    nodes[0].raft().initialize(members).await.unwrap();
    nodes[0].raft().wait(Some(Duration::from_secs(30))).current_leader(1, "leader").await.unwrap();
    let n3 = nodes.pop().unwrap();
    n3.shutdown().await.unwrap();
    router.remove(3);

    // 120 entries: snapshots every 40, all but 5 purged.
    let id = NationalId::parse("079190001234").unwrap();
    for i in 0..120u32 {
        let op = RecordOp::upsert("tax", format!("pk{}", i % 50), &id, &i).unwrap();
        nodes[0].write(vec![op]).await.unwrap();
    }
    let n3 = start(&router, root, 3).await;
    caught_up(&nodes[0], &n3).await;
    assert!(n3.state_machine().snapshot_counts().1 >= 1, "node 3 caught up without a snapshot");
    let node3 = root.join("node-3");
    assert!(!node3.join("sm-000000").exists(), "the old generation was not removed");
    let want = digest(&nodes[0].state_machine().store()).unwrap();
    assert_eq!(digest(&n3.state_machine().store()).unwrap(), want);

    // Reopen node 3: it comes back on the installed generation.
    n3.shutdown().await.unwrap();
    router.remove(3);
    let n3 = start(&router, root, 3).await;
    caught_up(&nodes[0], &n3).await;
    assert_eq!(digest(&n3.state_machine().store()).unwrap(), want);
    assert!(n3.state_machine().store().verify_index().unwrap().is_clean());
    for n in nodes.iter().chain([&n3]) {
        n.shutdown().await.unwrap();
    }
}
