#!/usr/bin/env bash
# Bytes per call and calls/s, C# client against the TypeScript client, alternating rounds on
# one real Volley server (server.ts: echo, no rate limit). Usage: csharp/Volley.Bench/run.sh [calls] [inflight] [rounds]
# VOLLEY_ROOT: the checkout whose server/ and client/ to use (default: this repository).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${VOLLEY_ROOT:-$(cd "$here/../.." && pwd)}
calls=${1:-20000}; inflight=${2:-64}; rounds=${3:-3}
dotnet build -c Release "$here/Volley.Bench.csproj" -v q -nologo >/dev/null
dll=$(dotnet msbuild "$here/Volley.Bench.csproj" -nologo -getProperty:TargetPath -p:Configuration=Release)
out=$(mktemp)
# The server exits when its stdin closes: hold it open with a sleep, in a process group of its own.
setsid bash -c "cd '$root' && sleep 100000 | node_modules/.bin/tsx csharp/Volley.Bench/server.ts >'$out' 2>&1" &
server=$!
trap 'kill -- -$server 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q '^LISTENING' "$out" && break; sleep 0.1; done
url="ws://127.0.0.1:$(sed -n 's/^LISTENING \([0-9]*\).*/\1/p' "$out")/"
for r in $(seq "$rounds"); do
  dotnet "$dll" "$url" "$calls" "$inflight" 1
  (cd "$root" && node_modules/.bin/tsx csharp/Volley.Bench/ts-bench.ts "$url" "$calls" "$inflight" 1)
done
