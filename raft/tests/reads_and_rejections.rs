//! `RaftStore`'s record API on a 3-node in-process cluster: linearizable reads on the
//! leader, `NotLeader` for a linearizable read on a follower, stale reads on followers that
//! catch up, and a refused insert that is refused on every replica alike.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use kho::record::NationalId;
use kho_raft::testing::{test_config, Cluster};
use kho_raft::{Consistency, Error, RecordOp, Rejection, WriteResponse};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_writes_at_the_consistency_asked() {
    let mut c = Cluster::start(3, 7, test_config().unwrap()).await.unwrap();
    let id = NationalId::parse("079190001234").unwrap();
    let t = Duration::from_secs(30);
    let a = c.write(vec![RecordOp::insert("tax", "pk1", &id, &("An", 2024u32)).unwrap()], t).await.unwrap();
    assert_eq!(a.response, WriteResponse::Applied(1));

    let leader = c.leader().await.unwrap();
    let recs = c.node(leader).unwrap().person(&id, Consistency::Linearizable).await.unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].decode::<(String, u32)>().unwrap().1, 2024);

    let follower = c.ids().into_iter().find(|n| *n != leader).unwrap();
    match c.node(follower).unwrap().person(&id, Consistency::Linearizable).await {
        Err(Error::NotLeader { leader: Some(l) }) => assert_eq!(l, leader),
        other => panic!("linearizable read on a follower: {other:?}"),
    }
    // A stale read on a follower sees the write once it has applied it.
    c.wait_converged(t).await.unwrap();
    let r = c.node(follower).unwrap().get("tax", "pk1", Consistency::Stale).await.unwrap();
    assert_eq!(r.map(|r| r.id), Some(id));

    // An insert over an existing record is refused, on every replica, and changes nothing.
    let a = c.write(vec![RecordOp::insert("tax", "pk1", &id, &("Binh", 1u32)).unwrap()], t).await.unwrap();
    assert_eq!(a.response, WriteResponse::Rejected(Rejection::RecordExists));
    c.wait_converged(t).await.unwrap();
    for n in c.ids() {
        let store = c.node(n).unwrap().state_machine().store();
        assert_eq!(store.get::<(String, u32)>("tax", "pk1").unwrap().unwrap().payload.1, 2024);
        assert_eq!(c.node(n).unwrap().state_machine().applied(), Some(a.log_id));
    }
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_write_is_refused_before_it_is_proposed() {
    let mut c = Cluster::start(3, 8, test_config().unwrap()).await.unwrap();
    let id = NationalId::parse("079190001234").unwrap();
    let big = vec![0u8; kho_raft::MAX_REQUEST_BYTES];
    let leader = c.leader().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(l) = c.leader().await.or(leader) {
            break l;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let op = RecordOp::upsert("tax", "pk", &id, &serde_bytes::Bytes::new(&big)).unwrap();
    assert!(matches!(c.node(leader).unwrap().write(vec![op]).await, Err(Error::Invalid(_))));
    // The cluster still takes writes.
    let a = c.write(vec![RecordOp::upsert("tax", "pk", &id, &1u32).unwrap()], Duration::from_secs(30)).await.unwrap();
    assert_eq!(a.response, WriteResponse::Applied(1));
    c.shutdown().await.unwrap();
}
