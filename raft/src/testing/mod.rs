//! The in-process cluster harness (feature `testing`): [`Router`], an in-memory Raft network
//! that drops, delays (and so reorders) and partitions messages; [`Cluster`], 3 or 5 nodes,
//! each on its own kho `FaultFs` so a kill loses exactly the unsynced data; and [`run`], the
//! seeded randomized run with its checks (see docs/scale-out.md, "Failure handling").

mod cluster;
mod router;
mod run;

pub use cluster::{test_config, Cluster, DurableView};
pub use router::{Router, RouterNetwork};
pub use run::{run, RunReport, RunSpec};
