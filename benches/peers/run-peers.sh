#!/usr/bin/env bash
# Start one peer of the accessgate end-to-end benchmark standalone, in the foreground,
# pinned to CPU 0 when the machine has 2+ CPUs (as benches/proxy.rs pins it).
#
#   benches/peers/run-peers.sh nginx|haproxy|haproxy-jwt [PORT] [UPSTREAM]
#   benches/peers/run-peers.sh --check        # validate all three configs and exit
#
# PORT defaults to 9443, UPSTREAM to 127.0.0.1:8080 (any HTTP/1.1 server; e.g. the demo's
# echo upstream: `accessgate demo --upstream-port 8080`). The TLS certificate, the RS256
# public key and a valid token come from target/bench/, written by any bench run, e.g.
#   BENCH_QUICK=1 BENCH_SCENARIOS=a cargo bench --bench proxy
# Then drive it, e.g. with h2load (TLS 1.3, AES-128-GCM, 32 connections x 10 streams):
#   h2load -n 200000 -c 32 -m 10 --ciphers=TLS_AES_128_GCM_SHA256 \
#     -H "authorization: Bearer $(cat target/bench/peers/token.txt)" \
#     https://127.0.0.1:9443/api/v1/ping
# The token expires two hours after the bench run that minted it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bench="${CARGO_TARGET_DIR:-$root/target}/bench"
# Keep in sync with benches/proxy/fixture.rs.
issuer="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
audience="api://corp-api"

for f in "$bench/certs/localhost.crt" "$bench/certs/localhost.key" \
         "$bench/peers/localhost.pem" "$bench/peers/jwt-rsa-pub.pem"; do
    if [ ! -f "$f" ]; then
        echo "missing $f: run the bench once (BENCH_QUICK=1 BENCH_SCENARIOS=a cargo bench --bench proxy)" >&2
        exit 1
    fi
done

# render TEMPLATE PORT UPSTREAM -> prints the path of the filled-in config
render() {
    local name="$1" port="$2" upstream="$3"
    local run="$bench/peers/standalone-$name"
    mkdir -p "$run"
    local tmpl out
    case "$name" in
        nginx) tmpl="$here/nginx.conf"; out="$run/nginx.conf" ;;
        haproxy) tmpl="$here/haproxy.cfg"; out="$run/haproxy.cfg" ;;
        haproxy-jwt) tmpl="$here/haproxy-jwt.cfg"; out="$run/haproxy-jwt.cfg" ;;
        *) echo "unknown peer $name (nginx, haproxy, haproxy-jwt)" >&2; exit 2 ;;
    esac
    sed -e "s|{{RUN}}|$run|g" -e "s|{{PORT}}|$port|g" -e "s|{{UPSTREAM}}|$upstream|g" \
        -e "s|{{CERT}}|$bench/certs/localhost.crt|g" -e "s|{{KEY}}|$bench/certs/localhost.key|g" \
        -e "s|{{CERT_PEM}}|$bench/peers/localhost.pem|g" \
        -e "s|{{PUBKEY}}|$bench/peers/jwt-rsa-pub.pem|g" \
        -e "s|{{ISSUER}}|$issuer|g" -e "s|{{AUDIENCE}}|$audience|g" "$tmpl" > "$out"
    echo "$out"
}

pin=()
if [ "$(nproc)" -ge 2 ] && command -v taskset > /dev/null; then
    pin=(taskset -c 0)
else
    echo "pinning off: fewer than 2 CPUs or no taskset" >&2
fi

if [ "${1:-}" = "--check" ]; then
    status=0
    if command -v nginx > /dev/null; then
        conf="$(render nginx 9443 127.0.0.1:8080)"
        nginx -t -p "$(dirname "$conf")" -e stderr -c "$conf" || status=1
    else
        echo "skipped: nginx not installed (apt-get install nginx)"
    fi
    if command -v haproxy > /dev/null; then
        for p in haproxy haproxy-jwt; do
            haproxy -c -f "$(render "$p" 9443 127.0.0.1:8080)" || status=1
        done
    else
        echo "skipped: haproxy not installed (apt-get install haproxy)"
    fi
    exit "$status"
fi

peer="${1:?usage: run-peers.sh nginx|haproxy|haproxy-jwt [PORT] [UPSTREAM]}"
port="${2:-9443}"
upstream="${3:-127.0.0.1:8080}"
conf="$(render "$peer" "$port" "$upstream")"
echo "$peer on https://127.0.0.1:$port -> http://$upstream (config $conf)" >&2
case "$peer" in
    nginx) exec "${pin[@]}" nginx -p "$(dirname "$conf")" -e stderr -c "$conf" ;;
    *) exec "${pin[@]}" haproxy -db -f "$conf" ;;
esac
