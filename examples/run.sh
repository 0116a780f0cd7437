#!/usr/bin/env bash
# Runs the example clients (Rust and Python) against a real `popgate serve --dev`, as CI does.
# Usage: examples/run.sh [path/to/popgate]   (default: target/debug/popgate, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/popgate}
[ -x "$bin" ] || cargo build --bin popgate
dir=$(mktemp -d)
log="$dir/serve.log"
"$bin" serve --dev --dir "$dir/dev" >"$dir/serve.out" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 240); do
  grep -q "popgate serving" "$log" && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "popgate serve --dev exited"; exit 1; }
  sleep 0.5
done
grep -q "popgate serving" "$log" || { cat "$log"; echo "popgate did not start"; exit 1; }
# A citizen that exists: the dev setup prints one in its next steps.
id=$(grep -o 'lookup --dev --dir [^ ]* --as moh [0-9]*' "$dir/serve.out" | awk '{print $NF}')
[ -n "$id" ] || { cat "$dir/serve.out"; echo "no citizen id printed"; exit 1; }

echo "== Rust example (tonic)"
cargo run --quiet --example agency_client -- "$dir/dev" "$id"

echo "== Python example (grpcio)"
venv="$dir/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -r examples/python/requirements.txt
"$venv/bin/python" examples/python/popgate_client.py --dev-dir "$dir/dev" --citizen-id "$id"

echo "== CLI client"
"$bin" lookup --dev --dir "$dir/dev" --as evn "$id" --fields full_name,permanent_address
echo "examples: ok"
