#!/usr/bin/env bash
# tepai's cluster on one machine, without Docker (docs/cluster.md): three
# nats-servers with JetStream routed to each other on loopback, the events
# stream in three copies, two command nodes with failover (one writes, the
# other stands by, following the stream, and takes over when the writer's
# lease lapses) and two query nodes. Everything lives under one directory;
# Ctrl-C stops it all.
#
#   cargo build --release
#   scripts/cluster-local.sh [DATA_DIR]        # default ./cluster-data
#
# Authorization is on (AUTHORIZATION=false turns it off, e.g. for
# `tepai bench`), with nats.conf's users (development passwords
# "<user>-dev", docs/authorization.md). Then, for example:
#
#   target/release/tepai send --authorization --nats-url nats://127.0.0.1:14222 \
#       --nats-user admin --nats-password admin-dev --actor admin \
#       establish-workstation …
#   curl -s http://127.0.0.1:18081/v1/status     # query node 1
#   curl -s http://127.0.0.1:18082/v1/status     # query node 2
#
# Environment: TEPAI_BIN (the tepai binary; default target/release/tepai,
# else target/debug/tepai), BASE_PORT (default 14222: NATS clients on
# BASE_PORT..+2, routes on +2000.., monitoring on +4000..; HTTP on 18081 and
# 18082 unless HTTP_PORT says otherwise), NATS_SERVER (default nats-server),
# REPLICAS (copies of the events stream, default 3).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
data="$(mkdir -p "${1:-./cluster-data}" && cd "${1:-./cluster-data}" && pwd)"
base="${BASE_PORT:-14222}"
http="${HTTP_PORT:-18081}"
export PATH="$PATH:/usr/sbin"
nats_server="${NATS_SERVER:-nats-server}"
tepai="${TEPAI_BIN:-}"
if [ -z "$tepai" ]; then
  for candidate in "$root/target/release/tepai" "$root/target/debug/tepai"; do
    if [ -x "$candidate" ]; then tepai="$candidate"; break; fi
  done
fi
[ -x "$tepai" ] || { echo "no tepai binary: run cargo build --release, or set TEPAI_BIN" >&2; exit 1; }
command -v "$nats_server" >/dev/null || { echo "no nats-server (apt-get install nats-server)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed to watch the servers' health" >&2; exit 1; }

authorization="${AUTHORIZATION:-true}"
if [ "$authorization" = true ]; then
  nats_config=(-c "$root/nats.conf")
  # In the environment, not on the command line where `ps` shows them.
  command_user=(TEPAI_NATS_USER=tepai-command TEPAI_NATS_PASSWORD=tepai-command-dev)
  query_user=(TEPAI_NATS_USER=tepai-query TEPAI_NATS_PASSWORD=tepai-query-dev)
else
  nats_config=() command_user=() query_user=()
fi

mkdir -p "$data/logs"
pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping…"
  # tepai nodes first (they drain and flush), then the servers.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  exit 0
}
trap stop INT TERM EXIT

client_url() { echo "nats://127.0.0.1:$((base + $1))"; }
urls="$(client_url 0),$(client_url 1),$(client_url 2)"
routes="nats://127.0.0.1:$((base + 2000)),nats://127.0.0.1:$((base + 2001)),nats://127.0.0.1:$((base + 2002))"

for i in 0 1 2; do
  mkdir -p "$data/nats-$i"
  "$nats_server" "${nats_config[@]}" -a 127.0.0.1 -p "$((base + i))" -n "nats-$i" \
    -m "$((base + 4000 + i))" --cluster_name tepai \
    --cluster "nats://127.0.0.1:$((base + 2000 + i))" --routes "$routes" \
    -js -sd "$data/nats-$i" >"$data/logs/nats-$i.log" 2>&1 &
  pids+=("$!")
done

# Every server must know the JetStream meta leader before tepai asks it
# for anything.
for i in 0 1 2; do
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$((base + 4000 + i))/jsz" 2>/dev/null | grep -q '"leader"'; then
      break
    fi
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$((base + 4000 + i))/jsz" | grep -q '"leader"' \
    || { echo "nats-$i has no JetStream meta leader; see $data/logs/nats-$i.log" >&2; exit 1; }
done
echo "NATS cluster up: $urls"

export TEPAI_NATS_URL="$urls" TEPAI_STREAM_REPLICAS="${REPLICAS:-3}" TEPAI_AUTHORIZATION="$authorization"

for c in 1 2; do
  env "${command_user[@]}" "$tepai" serve command --failover --node-id "command-$c" \
    --data-dir "$data/command-$c" >"$data/logs/command-$c.log" 2>&1 &
  pids+=("$!")
done
# The query nodes start once one command node writes (it made the stream).
for _ in $(seq 1 300); do
  grep -qs "this node writes now" "$data/logs/command-1.log" "$data/logs/command-2.log" && break
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "a command node stopped; see $data/logs/" >&2; exit 1; }
  sleep 0.1
done
writer="$(grep -ls "this node writes now" "$data/logs/command-1.log" "$data/logs/command-2.log" | head -1)"
echo "command nodes up; the writer logs to $writer (kill it: the other takes over)"

for q in 1 2; do
  env "${query_user[@]}" "$tepai" serve query --node-id "query-$q" --data-dir "$data/query-$q" \
    --http-addr "127.0.0.1:$((http + q - 1))" >"$data/logs/query-$q.log" 2>&1 &
  pids+=("$!")
done
for q in 1 2; do
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$((http + q - 1))/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "query node $q: http://127.0.0.1:$((http + q - 1))/v1/status (log: $data/logs/query-$q.log)"
done
echo "tepai cluster up under $data; Ctrl-C stops it"
# Until Ctrl-C. A process that dies is not the end: the standby takes over
# from a dead writer, and the nodes go on with two of three servers.
wait "${pids[@]}" || true
echo "logs: $data/logs"
