#!/usr/bin/env bash
# kho beside its two strongest peers, in one run on this machine: RocksDB (built from source with
# optimizations through the rust-rocksdb crate: zstd, bloom 10, 64 MiB cache) and fjall 3 (the
# leading pure-Rust LSM). Same workload shape as compare.sh, db_bench style: 16-byte keys,
# 100-byte half-compressible values, one thread, WAL on, no sync. Prints ops/s, the ratio of kho
# to the BEST peer per benchmark, disk bytes and peak anonymous memory (RssAnon, sampled every
# 50 ms; memory-mapped file pages are not counted for anyone).
# kho runs through the same harness (peers/kho, built against this checkout), not `kho bench`.
# Usage (from the project root): tools/bench/peers.sh [NUM] [READS]   (default 2000000 500000)
# PEERS="kho" (or any subset of "rocksdb fjall kho") runs only those; the others' columns show "?".
# KHO_PEER_MEM=1 makes the kho harness print, after each phase, its peak RssAnon (sampled every
# 10 ms inside the process) and glibc's mallinfo2 in-use/free bytes; they are shown at the end.
# First run builds the peers (RocksDB's C++ takes ~13 min on 2 cores; needs clang, libclang-dev).
set -euo pipefail
num=${1:-2000000}; reads=${2:-500000}
here=$(cd "$(dirname "$0")" && pwd)
cache=${KHO_PEERS_TARGET:-${XDG_CACHE_HOME:-$HOME/.cache}/kho-peers}
command -v clang >/dev/null && [ -n "$(ls /usr/lib/llvm-*/lib/libclang*.so* 2>/dev/null | head -1)" ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-dev >/dev/null; }
peers=${PEERS:-rocksdb fjall kho}
want() { case " $peers " in *" $1 "*) return 0;; *) return 1;; esac; }
for p in rocksdb fjall; do
  want $p || continue
  (cd "$here/peers/$p" && CARGO_TARGET_DIR="$cache/$p" cargo build --release -q)
done
# kho through the same harness, linked against this checkout (system allocator, like the peers)
root=$(pwd); mkdir -p "$cache/kho-src"; cp -rp "$here/peers/kho/src" "$cache/kho-src/"
sed "s|@KHO_ROOT@|$root|" "$here/peers/kho/Cargo.toml.in" > "$cache/kho-src/Cargo.toml"
(cd "$cache/kho-src" && CARGO_TARGET_DIR="$cache/kho" cargo build --release -q)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

peak() {  # run a command, print its output, then "peakanon KiB"
  "$@" > "$work/out" 2>&1 & local pid=$! pa=0 a
  while kill -0 $pid 2>/dev/null; do
    a=$(awk '/RssAnon/{print $2}' /proc/$pid/status 2>/dev/null || true)
    [ -n "$a" ] && [ "$a" -gt "$pa" ] && pa=$a
    sleep 0.05
  done
  wait $pid; cat "$work/out"; echo "PEERS_ANON $pa"
}
rate() { awk -v b="$1" '$1==b {for(i=1;i<=NF;i++) if($i=="ops/sec") print $(i-1)}' "$2" | head -1; }

benches="fillseq fillrandom overwrite readrandom seekrandom readseq readreverse"
touch "$work/rocksdb.txt" "$work/fjall.txt" "$work/kho.txt"
if want rocksdb; then
sync; peak "$cache/rocksdb/release/rocksdb-peer" "$work/rocks" "$num" "$reads" | tr '\r' '\n' > "$work/rocksdb.txt"
echo "PEERS_DISK $(du -sbc "$work/rocks" "$work/rocks-seq" | tail -1 | cut -f1)" >> "$work/rocksdb.txt"; rm -rf "$work/rocks" "$work/rocks-seq"
fi
if want fjall; then
sync; peak "$cache/fjall/release/fjall-peer" "$work/fjall" "$num" "$reads" | tr '\r' '\n' > "$work/fjall.txt"
echo "PEERS_DISK $(du -sb "$work/fjall" | cut -f1)" >> "$work/fjall.txt"; rm -rf "$work/fjall"
fi
if want kho; then
sync; peak "$cache/kho/release/kho-peer" "$work/kho" "$num" "$reads" | tr '\r' '\n' > "$work/kho.txt"
echo "PEERS_DISK $(du -sb "$work/kho" | cut -f1)" >> "$work/kho.txt"
fi

echo "(ops/s; last column kho / the faster peer; for disk_bytes and anon_MiB, kho / rocksdb)"
printf '%-12s %12s %12s %12s %9s\n' benchmark rocksdb fjall kho kho/best
for b in $benches; do
  r=$(rate $b "$work/rocksdb.txt"); f=$(rate $b "$work/fjall.txt"); k=$(rate $b "$work/kho.txt")
  printf '%-12s %12s %12s %12s %9s\n' "$b" "${r:-?}" "${f:-?}" "${k:-?}" \
    "$(awk -v r="${r:-0}" -v f="${f:-0}" -v k="${k:-0}" 'BEGIN{m=(r>f)?r:f; if (m>0 && k>0) printf "%.2f", k/m; else print "n/a"}')"
done
d() { awk '$1=="PEERS_DISK"{print $2}' "$1"; }
m() { awk '$1=="PEERS_ANON"{if ($2>x) x=$2} END{printf "%.0f", x/1024}' "$1"; }
printf '%-12s %12s %12s %12s %9s\n' disk_bytes "$(d "$work/rocksdb.txt")" "$(d "$work/fjall.txt")" "$(d "$work/kho.txt")" \
  "$(awk -v r="$(d "$work/rocksdb.txt")" -v k="$(d "$work/kho.txt")" 'BEGIN{if (r>0 && k>0) printf "%.2f", k/r; else print "n/a"}')"
printf '%-12s %12s %12s %12s %9s\n' anon_MiB "$(m "$work/rocksdb.txt")" "$(m "$work/fjall.txt")" "$(m "$work/kho.txt")" \
  "$(awk -v r="$(m "$work/rocksdb.txt")" -v k="$(m "$work/kho.txt")" 'BEGIN{if (r>0 && k>0) printf "%.2f", k/r; else print "n/a"}')"
if grep -q '^mem ' "$work/kho.txt"; then
  echo "(kho memory after each phase, KHO_PEER_MEM=1; peak_anon is the phase's peak RssAnon)"
  grep '^mem ' "$work/kho.txt"
  awk '$1=="PEERS_MEM_PEAK"{printf "kho whole-run peak RssAnon (10 ms sampler): %.0f MiB\n", $2/1024}' "$work/kho.txt"
fi
