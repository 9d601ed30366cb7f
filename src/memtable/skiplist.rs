//! [`SkipList`]: the memtable's ordered index, an arena-allocated skiplist with one writer at
//! a time and any number of lock-free readers (the design of LevelDB's `SkipList` and
//! RocksDB's `InlineSkipList`).
//!
//! Node layout, in one arena allocation (`h` = the node's height, `1..=MAX_HEIGHT`):
//!
//! ```text
//! next[h-1] .. next[1] next[0] | key_len: u32 | value_len: u32 | key bytes | value bytes
//!                              ^ node pointer
//! ```
//!
//! The tower of atomic next pointers sits *before* the node pointer, so the level-0 link, the
//! lengths and the start of the key share a cache line, and a node's height never needs to
//! be stored. Keys are encoded internal keys ordered by [`compare_internal`]; branching
//! factor 4 keeps towers short (1.33 pointers a node on average).
//!
//! Invariants:
//! - Keys are unique. A node's key and value are written before the node is linked and never
//!   change; only its next pointers change afterwards, always through atomics.
//! - Linking stores each level's predecessor pointer with `Release`; readers load with
//!   `Acquire`, so a reader that reaches a node sees its key and value completely written.
//! - Nodes are never unlinked or freed before the list drops (the arena owns them).
//! - Inserts are serialized by the `writer` mutex. It also keeps the *splice*: each level's
//!   predecessor and successor of the last inserted key. Only this writer links nodes, so the
//!   splice is always current (`prev[i].next[i] == next[i]`) and nested (higher levels
//!   bracket wider ranges); when level 0 brackets a new key every level does, and the insert
//!   needs no search at all. Sequential keys (fillseq, recovery of a sorted log) hit this.

use std::cmp::Ordering;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering as AtomicOrdering};

use parking_lot::Mutex;

use super::arena::Arena;
use crate::key::compare_internal;

/// Tallest tower: 4^12 = 16M nodes before the top level stops thinning the search.
const MAX_HEIGHT: usize = 12;

/// One in `BRANCHING` nodes of level `i` also appears in level `i + 1`.
const BRANCHING: u64 = 4;

/// Size of one tower slot.
const LINK: usize = std::mem::size_of::<AtomicPtr<u8>>();

/// Bytes of the `key_len | value_len` header.
const HEADER: usize = 8;

/// A node of a [`SkipList`]. Valid only with the list it came from, which keeps it alive.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Node(NonNull<u8>);

// SAFETY: a `Node` is an address inside an arena whose contents are immutable once published
// (next pointers are atomics); it carries no ownership. Dereferencing it is done only by the
// `SkipList` it came from, which outlives every use (its callers hold the list alive).
unsafe impl Send for Node {}
// SAFETY: see `Send` above.
unsafe impl Sync for Node {}

impl Node {
    /// The atomic link of level `level` (must be below the node's height).
    ///
    /// # Safety
    /// `self` must be a live node of height greater than `level`.
    #[inline]
    unsafe fn link(&self, level: usize) -> &AtomicPtr<u8> {
        // SAFETY: the caller guarantees the tower has slot `level`, which lies `(level + 1)`
        // slots before the node pointer, 8-byte aligned, initialized before publication.
        unsafe { &*(self.0.as_ptr().sub((level + 1) * LINK) as *const AtomicPtr<u8>) }
    }

    /// The successor at `level`, or `None` at the end.
    ///
    /// # Safety
    /// As for [`Node::link`].
    #[inline]
    unsafe fn next(&self, level: usize) -> Option<Node> {
        // SAFETY: forwarded from the caller.
        NonNull::new(unsafe { self.link(level) }.load(AtomicOrdering::Acquire)).map(Node)
    }

    /// Hints the CPU to start loading the node after `self` at `level`, so that if the
    /// search steps right its key is on the way (RocksDB's `FindGreaterOrEqual` trick: with
    /// random keys nearly every step of a search is a cache miss).
    ///
    /// # Safety
    /// As for [`Node::link`].
    #[inline]
    unsafe fn prefetch_next(&self, level: usize) {
        // SAFETY: forwarded from the caller.
        crate::util::prefetch::prefetch(unsafe { self.link(level) }.load(AtomicOrdering::Relaxed));
    }

    /// # Safety
    /// `self` must be a live, published node (or the head, or a node being built whose
    /// header is written).
    #[inline]
    unsafe fn lens(&self) -> (usize, usize) {
        // SAFETY: the header is two aligned `u32`s at the node pointer, written before the
        // node was published.
        unsafe {
            let p = self.0.as_ptr() as *const u32;
            (p.read() as usize, p.add(1).read() as usize)
        }
    }

    /// # Safety
    /// As for [`Node::lens`]; the returned slice must not outlive the list.
    #[inline]
    unsafe fn key<'a>(&self) -> &'a [u8] {
        // SAFETY: the key bytes follow the header and never change after publication.
        unsafe {
            let (klen, _) = self.lens();
            std::slice::from_raw_parts(self.0.as_ptr().add(HEADER), klen)
        }
    }

    /// # Safety
    /// As for [`Node::key`].
    #[inline]
    unsafe fn value<'a>(&self) -> &'a [u8] {
        // SAFETY: the value bytes follow the key and never change after publication.
        unsafe {
            let (klen, vlen) = self.lens();
            std::slice::from_raw_parts(self.0.as_ptr().add(HEADER + klen), vlen)
        }
    }
}

/// The writer's state, behind the insert mutex.
struct Writer {
    arena: Arena,
    rng: u64,
    /// Predecessor of the last inserted key at each level (the head when none).
    splice_prev: [Node; MAX_HEIGHT],
    /// Successor of the last inserted key at each level (`None`: end of the list).
    splice_next: [Option<Node>; MAX_HEIGHT],
}

/// A concurrent ordered set of `(internal key, value)` entries; see the module docs.
pub(crate) struct SkipList {
    head: Node,
    /// Height of the tallest tower linked so far (at least 1).
    max_height: AtomicUsize,
    len: AtomicUsize,
    /// Arena bytes in use, mirrored from the writer for lock-free reads.
    memory: AtomicUsize,
    writer: Mutex<Writer>,
}

impl SkipList {
    pub(crate) fn new() -> SkipList {
        let mut arena = Arena::new();
        let head = Self::alloc_node(&mut arena, MAX_HEIGHT, &[], &[], &[]);
        for level in 0..MAX_HEIGHT {
            // SAFETY: the head was allocated with `MAX_HEIGHT` slots; each is initialized
            // here, before anyone can see the list.
            unsafe { ptr::write(head.0.as_ptr().sub((level + 1) * LINK) as *mut AtomicPtr<u8>, AtomicPtr::default()) };
        }
        let memory = AtomicUsize::new(arena.used());
        let writer = Writer {
            arena,
            rng: 0x2545_F491_4F6C_DD1D,
            splice_prev: [head; MAX_HEIGHT],
            splice_next: [None; MAX_HEIGHT],
        };
        SkipList { head, max_height: AtomicUsize::new(1), len: AtomicUsize::new(0), memory, writer: Mutex::new(writer) }
    }

    /// Allocates a node of `height` whose key is `key_parts` concatenated, copies key and
    /// value in, and leaves the tower uninitialized.
    fn alloc_node(arena: &mut Arena, height: usize, key_a: &[u8], key_b: &[u8], value: &[u8]) -> Node {
        let klen = key_a.len() + key_b.len();
        // Validated writes are far smaller (keys <= 1 MiB, values <= 1 GiB); a longer entry
        // would be silently truncated by the `u32` header, so refuse it loudly.
        assert!(u32::try_from(klen).is_ok() && u32::try_from(value.len()).is_ok(), "memtable entry over 4 GiB");
        let tower = height * LINK;
        let base = arena.allocate(tower + HEADER + klen + value.len());
        // SAFETY: the allocation has `tower + HEADER + klen + value.len()` bytes, 8-byte
        // aligned; the node pointer is `tower` bytes in (still 8-aligned) and every write
        // below stays inside the allocation. Nothing else references this fresh memory.
        // Lengths fit in `u32` (asserted above).
        unsafe {
            let node = base.as_ptr().add(tower);
            (node as *mut u32).write(klen as u32);
            (node as *mut u32).add(1).write(value.len() as u32);
            let k = node.add(HEADER);
            ptr::copy_nonoverlapping(key_a.as_ptr(), k, key_a.len());
            ptr::copy_nonoverlapping(key_b.as_ptr(), k.add(key_a.len()), key_b.len());
            ptr::copy_nonoverlapping(value.as_ptr(), k.add(klen), value.len());
            Node(NonNull::new_unchecked(node))
        }
    }

    /// Inserts the entry whose key is `key_a ++ key_b` (split so a caller can pass a user key
    /// and its trailer without building the internal key first). The key must not be in the
    /// list yet.
    pub(crate) fn insert(&self, key_a: &[u8], key_b: &[u8], value: &[u8]) {
        let mut guard = self.writer.lock();
        let w = &mut *guard;
        let height = random_height(&mut w.rng);
        let node = Self::alloc_node(&mut w.arena, height, key_a, key_b, value);
        // SAFETY: the header and key were just written.
        let key = unsafe { node.key() };

        if !self.splice_brackets(w, key) {
            self.search_splice(w, key);
        }
        // SAFETY: splice nodes are live nodes of this list.
        debug_assert!(w.splice_next[0].is_none_or(|n| unsafe { n.key() } != key), "duplicate memtable key");
        let max = self.max_height.load(AtomicOrdering::Relaxed);
        if height > max {
            // Levels above the old height have the head before and nothing after, which the
            // splice already holds (only a taller insert could have changed them).
            self.max_height.store(height, AtomicOrdering::Relaxed);
        }
        for level in 0..height {
            let next = w.splice_next[level].map_or(ptr::null_mut(), |n| n.0.as_ptr());
            // SAFETY: the node has `height` slots; slot `level` is initialized here, before
            // the node is published by the `Release` store below.
            unsafe { ptr::write(node.0.as_ptr().sub((level + 1) * LINK) as *mut AtomicPtr<u8>, AtomicPtr::new(next)) };
            // SAFETY: `splice_prev[level]` is the head or a published node whose height
            // exceeds `level` (it was found, or linked, at this level).
            unsafe { w.splice_prev[level].link(level) }.store(node.0.as_ptr(), AtomicOrdering::Release);
            w.splice_prev[level] = node;
        }
        self.len.fetch_add(1, AtomicOrdering::Relaxed);
        self.memory.store(w.arena.used(), AtomicOrdering::Relaxed);
    }

    /// True when the splice's level-0 bracket (hence, by nesting, every level's) still holds
    /// `key`, so it is where `key` goes.
    fn splice_brackets(&self, w: &Writer, key: &[u8]) -> bool {
        let after_prev = w.splice_prev[0] == self.head
            // SAFETY: splice nodes are live nodes of this list.
            || compare_internal(unsafe { w.splice_prev[0].key() }, key) == Ordering::Less;
        // SAFETY: as above.
        after_prev && w.splice_next[0].is_none_or(|n| compare_internal(unsafe { n.key() }, key) == Ordering::Greater)
    }

    /// Recomputes the splice for `key` by a search from the head.
    fn search_splice(&self, w: &mut Writer, key: &[u8]) {
        let mut x = self.head;
        // The node that ended the search one level up: known to be `>= key`, so reaching it
        // again on the next level needs no comparison.
        let mut stop: Option<Node> = None;
        for level in (0..MAX_HEIGHT).rev() {
            if level >= self.max_height.load(AtomicOrdering::Relaxed) {
                w.splice_prev[level] = self.head;
                w.splice_next[level] = None;
                continue;
            }
            loop {
                // SAFETY: `x` is the head or a node reached at this level, so its height
                // exceeds `level`.
                let next = unsafe { x.next(level) };
                if let Some(n) = next {
                    // SAFETY: `n` is a published node reached at this level.
                    unsafe { n.prefetch_next(level) };
                }
                match next {
                    // SAFETY: `n` is a published node of this list.
                    Some(n) if next != stop && compare_internal(unsafe { n.key() }, key) == Ordering::Less => x = n,
                    _ => {
                        stop = next;
                        break;
                    }
                }
            }
            w.splice_prev[level] = x;
            w.splice_next[level] = stop;
        }
    }

    /// The first node whose key is `>= target`.
    pub(crate) fn seek(&self, target: &[u8]) -> Option<Node> {
        self.find(target, false).1
    }

    /// The last node whose key is `< target`.
    pub(crate) fn seek_before(&self, target: &[u8]) -> Option<Node> {
        let (x, _) = self.find(target, false);
        (x != self.head).then_some(x)
    }

    /// The last node whose key is `<= target`.
    pub(crate) fn seek_for_prev(&self, target: &[u8]) -> Option<Node> {
        let (x, _) = self.find(target, true);
        (x != self.head).then_some(x)
    }

    /// Walks down from the head, stepping right over every node whose key is `< target`
    /// (`<= target` when `inclusive`). Returns the last node stepped onto (the head if none)
    /// and its level-0 successor.
    fn find(&self, target: &[u8], inclusive: bool) -> (Node, Option<Node>) {
        let mut x = self.head;
        let mut level = self.max_height.load(AtomicOrdering::Acquire) - 1;
        // The node that ended the walk one level up: known not to be stepped over, so
        // meeting it again needs no comparison.
        let mut stop: Option<Node> = None;
        loop {
            // SAFETY: `x` is the head or a node reached at `level`, so its height exceeds it.
            let next = unsafe { x.next(level) };
            if let Some(n) = next {
                // SAFETY: `n` is a published node reached at this level.
                unsafe { n.prefetch_next(level) };
            }
            match next {
                Some(n)
                    if next != stop && {
                        // SAFETY: `n` is a published node of this list.
                        let c = compare_internal(unsafe { n.key() }, target);
                        c == Ordering::Less || (inclusive && c == Ordering::Equal)
                    } =>
                {
                    x = n
                }
                _ if level == 0 => return (x, next),
                _ => {
                    stop = next;
                    level -= 1;
                }
            }
        }
    }

    /// The first node, if any.
    pub(crate) fn first(&self) -> Option<Node> {
        // SAFETY: the head has every level.
        unsafe { self.head.next(0) }
    }

    /// The last node, if any.
    pub(crate) fn last(&self) -> Option<Node> {
        let mut x = self.head;
        let mut level = self.max_height.load(AtomicOrdering::Acquire) - 1;
        loop {
            // SAFETY: `x` is the head or a node reached at `level`.
            match unsafe { x.next(level) } {
                Some(n) => x = n,
                None if level == 0 => return (x != self.head).then_some(x),
                None => level -= 1,
            }
        }
    }

    /// The node after `n`.
    ///
    /// # Safety
    /// `n` must come from this list (a node of another list may be freed already).
    pub(crate) unsafe fn next(&self, n: Node) -> Option<Node> {
        // SAFETY: every node has level 0; the caller passes a node of this list.
        unsafe { n.next(0) }
    }

    /// The node before `n` (found by a search: nodes have no back links).
    ///
    /// # Safety
    /// As for [`SkipList::next`].
    pub(crate) unsafe fn prev(&self, n: Node) -> Option<Node> {
        // SAFETY: forwarded from the caller.
        self.seek_before(unsafe { self.key(n) })
    }

    /// The key of `n`.
    ///
    /// # Safety
    /// As for [`SkipList::next`].
    pub(crate) unsafe fn key(&self, n: Node) -> &[u8] {
        // SAFETY: `n` is a published node of this list, which outlives the borrow of `self`.
        unsafe { n.key() }
    }

    /// The value of `n`.
    ///
    /// # Safety
    /// As for [`SkipList::next`].
    pub(crate) unsafe fn value(&self, n: Node) -> &[u8] {
        // SAFETY: as for `key`.
        unsafe { n.value() }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len.load(AtomicOrdering::Relaxed)
    }

    /// Arena bytes in use: nodes, keys and values.
    pub(crate) fn memory_usage(&self) -> usize {
        self.memory.load(AtomicOrdering::Relaxed)
    }
}

/// A tower height in `1..=MAX_HEIGHT`, each next level with probability `1 / BRANCHING`.
fn random_height(rng: &mut u64) -> usize {
    let mut height = 1;
    while height < MAX_HEIGHT {
        // xorshift64*: cheap, and plenty for choosing tower heights.
        *rng ^= *rng >> 12;
        *rng ^= *rng << 25;
        *rng ^= *rng >> 27;
        if !(rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32).is_multiple_of(BRANCHING) {
            break;
        }
        height += 1;
    }
    height
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{internal_key, ValueKind};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn ikey(k: &[u8], seq: u64) -> Vec<u8> {
        internal_key(k, seq, ValueKind::Put)
    }

    // SAFETY (for every `unsafe` call in these tests): each node passed to a list came from
    // that same list, which is alive.
    fn collect(list: &SkipList) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut n = list.first();
        while let Some(x) = n {
            unsafe {
                out.push(list.key(x).to_vec());
                n = list.next(x);
            }
        }
        out
    }

    fn key_of(list: &SkipList, n: Option<Node>) -> Option<Vec<u8>> {
        // SAFETY: see above.
        n.map(|n| unsafe { list.key(n) }.to_vec())
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Ik(Vec<u8>);
    impl Ord for Ik {
        fn cmp(&self, o: &Self) -> Ordering {
            compare_internal(&self.0, &o.0)
        }
    }
    impl PartialOrd for Ik {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Inserts in any order (random, ascending runs, descending runs), then every lookup
        /// agrees with a `BTreeMap` over the same keys.
        #[test]
        fn matches_btreemap(
            keys in proptest::collection::vec((proptest::collection::vec(0u8..4, 0..5), 1u64..50), 0..300),
            probes in proptest::collection::vec((proptest::collection::vec(0u8..4, 0..5), 0u64..60), 0..40),
        ) {
            let list = SkipList::new();
            let mut model = BTreeMap::new();
            for (k, seq) in keys {
                let ik = ikey(&k, seq);
                if model.contains_key(&Ik(ik.clone())) {
                    continue;
                }
                let (uk, trailer) = ik.split_at(k.len());
                list.insert(uk, trailer, &seq.to_le_bytes());
                model.insert(Ik(ik), seq);
            }
            prop_assert_eq!(list.len(), model.len());
            prop_assert_eq!(collect(&list), model.keys().map(|k| k.0.clone()).collect::<Vec<_>>());
            prop_assert_eq!(key_of(&list, list.last()), model.keys().next_back().map(|k| k.0.clone()));
            for (k, seq) in probes {
                let t = Ik(ikey(&k, seq));
                let ge = model.range(t.clone()..).next().map(|e| e.0 .0.clone());
                prop_assert_eq!(key_of(&list, list.seek(&t.0)), ge.clone());
                let lt = model.range(..t.clone()).next_back().map(|e| e.0 .0.clone());
                prop_assert_eq!(key_of(&list, list.seek_before(&t.0)), lt);
                let le = model.range(..=t.clone()).next_back().map(|e| e.0 .0.clone());
                prop_assert_eq!(key_of(&list, list.seek_for_prev(&t.0)), le);
                if let Some(n) = list.seek(&t.0) {
                    // SAFETY: see `collect`.
                    let (k, v, before) = unsafe { (list.key(n).to_vec(), list.value(n), list.prev(n)) };
                    prop_assert_eq!(v, &model[&Ik(k.clone())].to_le_bytes()[..]);
                    let want = model.range(..Ik(k)).next_back().map(|e| e.0 .0.clone());
                    prop_assert_eq!(key_of(&list, before), want);
                }
            }
        }
    }

    #[test]
    fn sequential_and_reverse_inserts_use_and_repair_the_splice() {
        let list = SkipList::new();
        for i in 0..5000u32 {
            list.insert(&i.to_be_bytes(), &1u64.to_le_bytes(), b"v");
        }
        for i in (5000..10_000u32).rev() {
            list.insert(&i.to_be_bytes(), &1u64.to_le_bytes(), b"");
        }
        let keys = collect(&list);
        assert_eq!(keys.len(), 10_000);
        assert!(keys.windows(2).all(|w| compare_internal(&w[0], &w[1]) == Ordering::Less));
        assert!(list.memory_usage() >= 10_000 * (HEADER + LINK + 12));
    }

    #[test]
    fn large_values_round_trip() {
        let list = SkipList::new();
        let big = vec![7u8; 3 << 20];
        list.insert(b"big", &[0; 8], &big);
        list.insert(b"a", &[0; 8], b"small");
        // SAFETY: see `collect`.
        let n = list.seek(&ikey(b"big", 0)).map(|n| unsafe { list.value(n) }.len());
        assert_eq!(n, Some(big.len()));
        // SAFETY: see `collect`.
        assert_eq!(list.first().map(|n| unsafe { list.value(n) }), Some(&b"small"[..]));
    }

    /// Readers run while one thread inserts: every reader sees a sorted list, and keys the
    /// writer announced as inserted are always found.
    #[test]
    fn readers_see_sorted_complete_prefixes_while_writing() {
        let list = Arc::new(SkipList::new());
        let published = Arc::new(AtomicUsize::new(0));
        const N: usize = 20_000;
        let key = |i: usize| ikey(&((i * 7919) % N).to_be_bytes(), 1);
        std::thread::scope(|s| {
            for _ in 0..2 {
                let (list, published) = (list.clone(), published.clone());
                s.spawn(move || {
                    while published.load(AtomicOrdering::Acquire) < N {
                        let upto = published.load(AtomicOrdering::Acquire);
                        let keys = collect(&list);
                        assert!(keys.len() >= upto);
                        assert!(keys.windows(2).all(|w| compare_internal(&w[0], &w[1]) == Ordering::Less));
                        if upto > 0 {
                            let k = key(upto - 1);
                            assert_eq!(key_of(&list, list.seek(&k)), Some(k));
                        }
                    }
                });
            }
            for i in 0..N {
                let k = key(i);
                let (uk, trailer) = k.split_at(k.len() - 8);
                list.insert(uk, trailer, &i.to_le_bytes());
                published.store(i + 1, AtomicOrdering::Release);
            }
        });
        assert_eq!(list.len(), N);
    }
}
