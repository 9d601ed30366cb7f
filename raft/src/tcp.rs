//! A simple TCP transport between Raft nodes (the `kho cluster demo`'s network): one
//! connection per (source, target) pair, one request at a time on it.
//!
//! ```text
//! frame    := len: u32 BE | body: MessagePack (rmp-serde), len <= MAX_FRAME
//! request  := Rpc::{AppendEntries | InstallSnapshot | Vote}(openraft request)
//! reply    := Reply::{AppendEntries | InstallSnapshot | Vote}(Result<response, RaftError>)
//! ```
//!
//! Any transport failure (connect, write, read, an oversized or undecodable frame, the
//! call's deadline) drops the connection and is `Unreachable` to openraft, which retries;
//! the next call reconnects. There is no authentication or encryption: a demo on 127.0.0.1,
//! not a production transport.

use std::io;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::types::{NodeId, Raft, TypeConfig};

/// Largest frame accepted, in bytes (a snapshot chunk is 3 MiB by default; an append of
/// entries is at most `max_payload_entries` x [`crate::MAX_REQUEST_BYTES`]: configure
/// `max_payload_entries <= 16`).
pub const MAX_FRAME: u32 = 64 << 20;

/// A request frame.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
enum Rpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
}

/// A reply frame.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
enum Reply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
}

async fn write_frame<T: Serialize>(s: &mut TcpStream, v: &T) -> io::Result<()> {
    let body = rmp_serde::to_vec(v).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| io::Error::other("frame too large"))?;
    s.write_all(&len.to_be_bytes()).await?;
    s.write_all(&body).await?;
    s.flush().await
}

async fn read_frame<T: DeserializeOwned>(s: &mut TcpStream) -> io::Result<T> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too large"));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body).await?;
    rmp_serde::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Serves `raft`'s RPCs on `listener` until the returned task is aborted, which also ends
/// every connection it accepted (a "killed" node's peers see their connections drop).
pub fn serve(listener: TcpListener, raft: Raft) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((conn, _)) = listener.accept().await else { continue };
            let raft = raft.clone();
            // Reap finished connections so the set does not grow.
            while connections.try_join_next().is_some() {}
            connections.spawn(async move {
                let mut conn = conn;
                let _ = conn.set_nodelay(true);
                while let Ok(rpc) = read_frame::<Rpc>(&mut conn).await {
                    let reply = match rpc {
                        Rpc::AppendEntries(r) => Reply::AppendEntries(raft.append_entries(r).await),
                        Rpc::InstallSnapshot(r) => Reply::InstallSnapshot(raft.install_snapshot(r).await),
                        Rpc::Vote(r) => Reply::Vote(raft.vote(r).await),
                    };
                    if write_frame(&mut conn, &reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}

/// The network of one node: connections to its peers, by their `BasicNode::addr`.
#[derive(Debug, Clone, Default)]
pub struct TcpNetwork;

/// A connection to one peer.
pub struct TcpClient {
    target: NodeId,
    addr: String,
    conn: Option<TcpStream>,
}

impl RaftNetworkFactory<TypeConfig> for TcpNetwork {
    type Network = TcpClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> TcpClient {
        TcpClient { target, addr: node.addr.clone(), conn: None }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl TcpClient {
    async fn call(&mut self, rpc: &Rpc, option: &RPCOption) -> Result<Reply, Unreachable> {
        let attempt = async {
            if self.conn.is_none() {
                let c = TcpStream::connect(&self.addr).await?;
                c.set_nodelay(true)?;
                self.conn = Some(c);
            }
            let conn = self.conn.as_mut().ok_or_else(|| io::Error::other("no connection"))?;
            write_frame(conn, rpc).await?;
            read_frame::<Reply>(conn).await
        };
        let r = match tokio::time::timeout(option.hard_ttl(), attempt).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "rpc deadline")),
        };
        r.map_err(|e| {
            self.conn = None;
            Unreachable::new(&e)
        })
    }

    fn unexpected<E: std::error::Error>() -> RPCError<NodeId, BasicNode, E> {
        RPCError::Network(NetworkError::new(&io::Error::other("reply of another kind")))
    }
}

impl RaftNetwork<TypeConfig> for TcpClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        match self.call(&Rpc::AppendEntries(rpc), &option).await.map_err(RPCError::Unreachable)? {
            Reply::AppendEntries(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(Self::unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        match self.call(&Rpc::InstallSnapshot(rpc), &option).await.map_err(RPCError::Unreachable)? {
            Reply::InstallSnapshot(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(Self::unexpected()),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        match self.call(&Rpc::Vote(rpc), &option).await.map_err(RPCError::Unreachable)? {
            Reply::Vote(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(Self::unexpected()),
        }
    }
}
