//! [`CommitQueue`]: the group-commit protocol (RocksDB's `WriteThread`), independent of what
//! a commit does.
//!
//! A writer [`join`](CommitQueue::join)s the queue with its batch and sleeps until either a
//! leader has committed it ([`Turn::Committed`]) or it must lead ([`Turn::Lead`]): it is at
//! the front and no leader is active. A leader calls [`lead`](CommitQueue::lead), which may
//! first *gather* (below), then takes every queued batch up to [`MAX_GROUP_BYTES`] as one
//! [`Group`]; commits it (outside the queue's lock); and calls
//! [`finish`](CommitQueue::finish), which hands every member its result, wakes exactly those
//! members, and wakes the writer now at the front to lead the next group. The leader then
//! joins again with the same ticket ([`CommitQueue::next_turn`]): its own batch may not have
//! fit in the group it led.
//!
//! Gathering: a leader whose group will fsync first waits briefly (at most half the last
//! fsync's duration, [`MAX_GATHER`] at most) for the writers of the previous group that have
//! not queued again yet. Without it, concurrent sync writers split into two alternating
//! halves — one half queues while the other's fsync runs — and a group never holds more than
//! about half of them. A writer alone never waits: the previous group was itself.
//!
//! Invariants (asserted in debug builds): at most one leader at a time; a ticket's result is
//! delivered exactly once; every wait and notification happens under the queue's lock, and
//! each writer sleeps on its own condition variable.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::batch::WriteBatch;
use crate::{Error, Result};

/// Largest group one leader commits, in encoded bytes: bounds the latency a small write
/// waits behind a large group, as LevelDB's 1 MiB limit does.
pub(crate) const MAX_GROUP_BYTES: usize = 1 << 20;

/// The longest a leader waits to gather the previous group's writers before an fsync.
const MAX_GATHER: Duration = Duration::from_micros(500);

/// Writers remembered from the previous group (beyond this, gathering waits for no more).
const MAX_REMEMBERED_WRITERS: usize = 64;

/// One queued write.
pub(crate) struct Pending {
    ticket: u64,
    /// The write; a leader stamps and logs it.
    pub batch: WriteBatch,
    /// The writer asked for an fsync before its acknowledgement.
    pub sync: bool,
    writer: ThreadId,
    /// Wakes this writer (and only it): when its result is ready, or when it is at the front
    /// of the queue with no leader.
    waker: Arc<Condvar>,
}

/// A writer's place in the queue, with the condition variable it sleeps on.
pub(crate) struct Ticket {
    id: u64,
    waker: Arc<Condvar>,
}

/// What a writer does next.
#[derive(Debug)]
pub(crate) enum Turn {
    /// A leader committed this writer's batch (or failed to).
    Committed(Result<()>),
    /// This writer leads the next group: call [`CommitQueue::lead`].
    Lead,
}

/// The batches one leader commits together, in queue order.
pub(crate) struct Group {
    pub members: Vec<Pending>,
}

impl Group {
    /// True if any member asked for an fsync.
    pub(crate) fn wants_sync(&self) -> bool {
        self.members.iter().any(|p| p.sync)
    }
}

thread_local! {
    /// The condition variable a thread waits on for its write (a thread has at most one
    /// write queued, so one per thread suffices).
    static WAKER: Arc<Condvar> = Arc::new(Condvar::new());
}

/// Hashes a ticket to itself: tickets are unique consecutive integers, so SipHash's
/// protection buys nothing on this per-write path.
#[derive(Default)]
struct TicketHasher(u64);

impl Hasher for TicketHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<Pending>,
    done: HashMap<u64, Result<()>, BuildHasherDefault<TicketHasher>>,
    leader_active: bool,
    next_ticket: u64,
    /// While a leader waits for writers to queue: its waker, which new writers notify.
    gathering: Option<Arc<Condvar>>,
    /// The writers of the previous group.
    last_group: Vec<ThreadId>,
    /// How long the previous fsync took.
    last_sync: Duration,
}

impl QueueState {
    /// Writers of the previous group not queued now: those a leader about to fsync waits for.
    fn missing_writers(&self) -> usize {
        self.last_group.iter().filter(|w| !self.pending.iter().any(|p| p.writer == **w)).count()
    }

    /// The caller's turn, if it has one now.
    fn turn(&mut self, ticket: &Ticket) -> Option<Turn> {
        if let Some(r) = self.done.remove(&ticket.id) {
            return Some(Turn::Committed(r));
        }
        if self.leader_active {
            return None;
        }
        self.leader_active = true;
        Some(Turn::Lead)
    }
}

/// The queue writers join to be committed by a leader. See the module docs.
#[derive(Default)]
pub(crate) struct CommitQueue {
    state: Mutex<QueueState>,
}

impl CommitQueue {
    /// Queues `batch` and waits for this writer's turn.
    pub(crate) fn join(&self, batch: WriteBatch, sync: bool) -> (Ticket, Turn) {
        // `try_with`: a write from another thread-local's destructor may run after ours is gone.
        let waker = WAKER.try_with(Arc::clone).unwrap_or_else(|_| Arc::new(Condvar::new()));
        let mut st = self.state.lock();
        let ticket = Ticket { id: st.next_ticket, waker };
        st.next_ticket += 1;
        let writer = std::thread::current().id();
        st.pending.push_back(Pending { ticket: ticket.id, batch, sync, writer, waker: Arc::clone(&ticket.waker) });
        if let Some(leader) = &st.gathering {
            leader.notify_one();
        }
        loop {
            if let Some(turn) = st.turn(&ticket) {
                return (ticket, turn);
            }
            ticket.waker.wait(&mut st);
        }
    }

    /// After leading a group that did not hold this writer's batch: waits for its next turn.
    pub(crate) fn next_turn(&self, ticket: &Ticket) -> Turn {
        let mut st = self.state.lock();
        loop {
            if let Some(turn) = st.turn(ticket) {
                return turn;
            }
            ticket.waker.wait(&mut st);
        }
    }

    /// Leader only (after [`Turn::Lead`]): gathers if the group will fsync, then takes the
    /// group from the front of the queue (at least one batch, at most [`MAX_GROUP_BYTES`]
    /// unless the first alone is larger).
    pub(crate) fn lead(&self, leader: &Ticket) -> Group {
        let waker = &leader.waker;
        let mut st = self.state.lock();
        debug_assert!(st.leader_active, "lead() without the lead");
        if st.pending.iter().any(|p| p.sync) && st.missing_writers() > 0 {
            let deadline = Instant::now() + (st.last_sync / 2).min(MAX_GATHER);
            st.gathering = Some(Arc::clone(waker));
            while st.missing_writers() > 0 && !waker.wait_until(&mut st, deadline).timed_out() {}
            st.gathering = None;
        }
        let mut members = Vec::new();
        let mut bytes = 0;
        while let Some(p) = st.pending.front() {
            if !members.is_empty() && bytes + p.batch.encoded_size() > MAX_GROUP_BYTES {
                break;
            }
            bytes += p.batch.encoded_size();
            members.extend(st.pending.pop_front());
        }
        debug_assert!(!members.is_empty(), "a leader always has at least its own batch queued");
        st.last_group.clear();
        for p in &members {
            if st.last_group.len() < MAX_REMEMBERED_WRITERS && !st.last_group.contains(&p.writer) {
                st.last_group.push(p.writer);
            }
        }
        Group { members }
    }

    /// Leader only: delivers `result` to every member of `group` (each gets its own copy),
    /// records how long the group's fsync took, and hands the lead to the writer now at the
    /// front of the queue.
    pub(crate) fn finish(&self, group: Group, result: &Result<()>, synced_in: Option<Duration>) {
        let mut st = self.state.lock();
        debug_assert!(st.leader_active, "finish() without the lead");
        if let Some(d) = synced_in {
            st.last_sync = d;
        }
        for p in &group.members {
            let previous = st.done.insert(p.ticket, result.as_ref().map(|_| ()).map_err(Error::replicate));
            debug_assert!(previous.is_none(), "ticket {} delivered twice", p.ticket);
            p.waker.notify_one();
        }
        st.leader_active = false;
        if let Some(next) = st.pending.front() {
            next.waker.notify_one();
        }
    }
}

impl CommitQueue {
    /// A writer that stops waiting for its turn (its leader's commit panicked, and the panic
    /// goes on in its thread): withdraws its batch if it is still queued — a leader's own
    /// batch may not have fit in the group it led — drops a result delivered to it, and hands
    /// the lead to the writer now at the front. Without it, the front could be the abandoned
    /// batch, and every writer queued behind it would sleep forever.
    pub(crate) fn abandon(&self, ticket: &Ticket) {
        let mut st = self.state.lock();
        st.pending.retain(|p| p.ticket != ticket.id);
        st.done.remove(&ticket.id);
        if !st.leader_active {
            if let Some(next) = st.pending.front() {
                next.waker.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn batch(n: usize) -> WriteBatch {
        let mut b = WriteBatch::new();
        b.put(vec![b'k'; 8], vec![b'v'; n]);
        b
    }

    /// Runs `writers` threads, each committing `per_writer` batches through `commit`, and
    /// returns how many groups were led.
    fn run(writers: usize, per_writer: usize, value: usize, commit: impl Fn(&Group) -> Result<()> + Sync) -> usize {
        let queue = CommitQueue::default();
        let groups = AtomicUsize::new(0);
        let committed = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..writers {
                s.spawn(|| {
                    for _ in 0..per_writer {
                        let (ticket, mut turn) = queue.join(batch(value), true);
                        let result = loop {
                            match turn {
                                Turn::Committed(r) => break r,
                                Turn::Lead => {
                                    let group = queue.lead(&ticket);
                                    groups.fetch_add(1, Ordering::SeqCst);
                                    committed.fetch_add(group.members.len(), Ordering::SeqCst);
                                    let r = commit(&group);
                                    queue.finish(group, &r, Some(Duration::from_micros(50)));
                                    turn = queue.next_turn(&ticket);
                                }
                            }
                        };
                        let _ = result;
                    }
                });
            }
        });
        assert_eq!(committed.load(Ordering::SeqCst), writers * per_writer, "every batch committed exactly once");
        groups.load(Ordering::SeqCst)
    }

    #[test]
    fn every_batch_is_committed_once_and_groups_form() {
        let groups = run(8, 200, 10, |g| {
            std::thread::sleep(Duration::from_micros(100)); // an "fsync": others queue meanwhile
            assert!(g.wants_sync());
            Ok(())
        });
        assert!(groups < 8 * 200, "concurrent writers share groups ({groups} groups)");
    }

    #[test]
    fn a_group_never_passes_the_byte_limit_unless_one_batch_does() {
        run(4, 50, MAX_GROUP_BYTES / 3, |g| {
            let bytes: usize = g.members.iter().map(|p| p.batch.encoded_size()).sum();
            assert!(g.members.len() == 1 || bytes <= MAX_GROUP_BYTES, "{} members, {bytes} bytes", g.members.len());
            Ok(())
        });
    }

    /// Found by review: a leader whose own batch did not fit in the group it led panics while
    /// committing. Its batch is then the front of the queue, and a writer queued behind it
    /// must still be woken to lead (`abandon`). The interleaving (J takes the lead between
    /// A's `finish` and the woken B getting the lock) is raced for, up to 200 times.
    #[test]
    fn a_panicking_leader_whose_batch_was_left_out_does_not_strand_the_writers_behind_it() {
        use std::sync::mpsc;
        fn commit_all(q: &CommitQueue, t: Ticket, mut turn: Turn) -> Result<()> {
            loop {
                match turn {
                    Turn::Committed(r) => return r,
                    Turn::Lead => {
                        let g = q.lead(&t);
                        q.finish(g, &Ok(()), None);
                        turn = q.next_turn(&t);
                    }
                }
            }
        }
        for _attempt in 0..200 {
            let q = Arc::new(CommitQueue::default());
            let (ta, turn) = q.join(batch(200 << 10), false);
            assert!(matches!(turn, Turn::Lead));
            let qb = Arc::clone(&q);
            let b = std::thread::spawn(move || {
                let (t, turn) = qb.join(batch(900 << 10), false);
                commit_all(&qb, t, turn)
            });
            while q.state.lock().pending.len() < 2 {
                std::thread::yield_now();
            }
            let g = q.lead(&ta);
            q.finish(g, &Ok(()), None);
            assert!(matches!(q.next_turn(&ta), Turn::Committed(Ok(()))));
            // J joins before B wakes: J leads, and B (front, 900 KiB) leaves no room for J.
            let (tj, turn) = q.join(batch(900 << 10), false);
            if !matches!(turn, Turn::Lead) {
                let _ = commit_all(&q, tj, turn);
                let _ = b.join();
                continue;
            }
            let g = q.lead(&tj);
            if g.members.iter().any(|p| p.ticket == tj.id) {
                q.finish(g, &Ok(()), None);
                let turn = q.next_turn(&tj);
                let _ = commit_all(&q, tj, turn);
                let _ = b.join();
                continue; // not the interleaving sought
            }
            // K queues behind J while J "commits"; then J's commit panics.
            let qk = Arc::clone(&q);
            let (done_tx, done_rx) = mpsc::channel();
            std::thread::spawn(move || {
                let (t, turn) = qk.join(batch(1), false);
                let _ = done_tx.send(commit_all(&qk, t, turn));
            });
            while q.state.lock().pending.len() < 2 {
                std::thread::yield_now();
            }
            q.finish(g, &Err(Error::Poisoned), None);
            q.abandon(&tj);
            assert!(b.join().unwrap().is_err(), "B was in the failed group");
            let k = done_rx.recv_timeout(Duration::from_secs(10)).expect("K was stranded behind the abandoned batch");
            assert!(k.is_ok());
            assert!(q.state.lock().pending.is_empty());
            return;
        }
        // On a machine too loaded for the race to go this way in 200 tries, the case goes
        // untested this run rather than failing the suite (it is reached within a few tries
        // on an idle one).
        eprintln!("the interleaving was not reached in 200 attempts; not tested this run");
    }

    #[test]
    fn a_failed_group_fails_every_member_and_the_queue_moves_on() {
        let queue = CommitQueue::default();
        let (t, turn) = queue.join(batch(1), false);
        assert!(matches!(turn, Turn::Lead));
        let group = queue.lead(&t);
        assert_eq!(group.members.len(), 1);
        queue.finish(group, &Err(Error::Poisoned), None);
        assert!(matches!(queue.next_turn(&t), Turn::Committed(Err(Error::Poisoned))));
        // The next writer leads at once: no leader is left active.
        let (_, turn) = queue.join(batch(1), false);
        assert!(matches!(turn, Turn::Lead));
    }
}
