#!/usr/bin/env bash
# CPU profile of the gateway's hot path (scenario c of the proxy bench: full
# authentication + 20 policies + state on a cached token), for `perf report`.
#
#   cargo build --release --bin accessgate && BENCH_SCENARIOS=c BENCH_QUICK=1 cargo bench --bench proxy
#   benches/profile.sh [seconds] [h1|h2] [tuned|shipped]
#
# Needs perf (Debian linux-perf) and h2load (nghttp2-client). Uses the config, state and
# DEV certificates the proxy bench wrote to target/bench/. The gateway is pinned to CPU 0
# (with the upstream); h2load runs on CPU 1. `tuned` (the default) is row (c) with one
# worker and the decision log off; `shipped` is row (s): the config a user ships, no
# [runtime] tuning and the decision log on, to a file (for a build without the `[log]
# decisions = PATH` form, set SHIPPED_STDOUT=1: the log goes to stdout, redirected to a
# file, as the issue measured it). ACCESSGATE_BIN profiles another build of the gateway
# (e.g. an older commit's, for a before/after).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
proto=${2:-h1}
variant=${3:-tuned}
bin=${ACCESSGATE_BIN:-target/release/accessgate}
bench=target/bench
[ -x "$bin" ] || { echo "build first: cargo build --release --bin accessgate" >&2; exit 1; }
case $variant in
  tuned) toml=$bench/gw-c.toml; workers='s|^worker_threads = .*|worker_threads = 1|' ;;
  shipped) toml=$bench/gw-s-shipped.toml; workers='' ;;
  *) echo "variant: tuned or shipped, not $variant" >&2; exit 2 ;;
esac
[ -f "$toml" ] || { echo "run the proxy bench once first (writes $toml)" >&2; exit 1; }
work=$(mktemp -d)
# The gateway's stdout goes outside $work: the gateway watches its config's folder, and a
# log written there would wake the watcher on every line.
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work" "$out"; }
trap cleanup EXIT

port_up=18081; port_gw=18443; port_admin=19901
taskset -c 0 "$bin" dev-echo --listen 127.0.0.1:$port_up >/dev/null & pids+=($!)
sed -e "s|^upstream = .*|upstream = \"http://127.0.0.1:$port_up\"|" \
    -e "s|^address = \"127.0.0.1:0\"|address = \"127.0.0.1:PORT\"|" \
    ${workers:+-e "$workers"} \
    ${SHIPPED_STDOUT:+-e 's|^decisions = .*|decisions = "stdout"|'} "$toml" \
  | awk -v gw=$port_gw -v ad=$port_admin '/PORT/ { n++; sub("PORT", n==1 ? gw : ad) } { print }' \
  > "$work/gw.toml"
taskset -c 0 "$bin" run --config "$work/gw.toml" >"$out/stdout.log" & gw=$!; pids+=($gw)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port_admin/readyz" >/dev/null && break; sleep 0.1; done
token=$("$bin" dev-token --keys "$bench/certs" \
  --iss "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0" \
  --aud api://corp-api --oid b0000000-0000-4000-8000-00000000beef \
  --azp 0c1307d4-29d6-4389-a11c-5cbe7f65d7fa --deviceid d0000000-0000-4000-8000-00000000beef \
  --group 6b1f0c2e-0000-4000-8000-00000000b001 --amr pwd --amr mfa --cae)
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$bench/certs/ca.crt" \
  -H "authorization: Bearer $token" "https://localhost:$port_gw/api/v1/ping")
[ "$status" = 200 ] || { echo "gateway answered $status, expected 200" >&2; exit 1; }
args=(-c 32 -D "$secs" --warm-up-time=2 -H "authorization: Bearer $token")
if [ "$proto" = h1 ]; then args+=(--h1 -m 1); else args+=(-m 10); fi
perf record -F 1999 -o "$work/perf.data" -p "$gw" -- sleep $((secs + 2)) 2>/dev/null &
rec=$!
taskset -c 1 h2load "${args[@]}" "https://127.0.0.1:$port_gw/api/v1/ping" | grep -E 'finished in|requests:|status codes'
wait $rec || true
cp "$work/perf.data" /tmp/perf.data 2>/dev/null || true
perf report -i "$work/perf.data" --no-children --percent-limit 0.35 --stdio -g none 2>/dev/null \
  | grep -v '^$' | grep -v '^#' | head -70
