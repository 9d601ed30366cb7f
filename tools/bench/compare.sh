#!/usr/bin/env bash
# Side-by-side: RocksDB's db_bench and `kho bench` on the same workload, on this machine, in one run.
# Prints ops/sec for each benchmark and the ratio kho/RocksDB (>1 means kho is faster).
# Usage: tools/bench/compare.sh [--num=N] [--reads=N] [--value_size=N] [--threads=N] [--benchmarks=a,b,c]
# Run from the project root. Needs `kho bench` to accept the same flags and print db_bench-style
# lines: "NAME : X micros/op Y ops/sec ...". Debian's db_bench is built with assertions on, so
# its figures understate RocksDB a little; treat a ratio near 1.0 as "not yet ahead".
set -euo pipefail
num=1000000; reads=200000; value_size=100; threads=1
benchmarks=fillseq,fillrandom,overwrite,readrandom,seekrandom,readseq,readreverse
for a in "$@"; do
  case "$a" in
    --num=*) num=${a#*=} ;; --reads=*) reads=${a#*=} ;; --value_size=*) value_size=${a#*=} ;;
    --threads=*) threads=${a#*=} ;; --benchmarks=*) benchmarks=${a#*=} ;;
    *) echo "unknown flag $a" >&2; exit 2 ;;
  esac
done
command -v db_bench >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rocksdb-tools >/dev/null; }
cargo build --release -q -p kho-tools
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
common="--num=$num --reads=$reads --key_size=16 --value_size=$value_size --threads=$threads --compression_ratio=0.5 --seek_nexts=10"
db_bench --db="$work/rocks" --benchmarks="$benchmarks" $common --compression_type=zstd --bloom_bits=10 \
  --cache_size=67108864 --histogram=0 --statistics=0 2>&1 | tr '\r' '\n' | grep -E '^[a-z]+ +:.*ops/sec' > "$work/rocks.txt" || true
./target/release/kho bench --db="$work/kho" --benchmarks="$benchmarks" $common 2>&1 | tr '\r' '\n' \
  | grep -E '^[a-z]+ +:.*ops/sec' > "$work/kho.txt" || true
printf '%-12s %14s %14s %8s\n' benchmark rocksdb_ops/s kho_ops/s ratio
IFS=, read -ra names <<<"$benchmarks"
for b in "${names[@]}"; do
  r=$(awk -v b="$b" '$1==b {for(i=1;i<=NF;i++) if($i=="ops/sec") print $(i-1)}' "$work/rocks.txt" | head -1)
  k=$(awk -v b="$b" '$1==b {for(i=1;i<=NF;i++) if($i=="ops/sec") print $(i-1)}' "$work/kho.txt" | head -1)
  ratio=$(awk -v r="${r:-0}" -v k="${k:-0}" 'BEGIN{ if (r>0 && k>0) printf "%.2f", k/r; else print "n/a" }')
  printf '%-12s %14s %14s %8s\n' "$b" "${r:-missing}" "${k:-missing}" "$ratio"
done
