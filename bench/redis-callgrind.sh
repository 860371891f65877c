#!/bin/bash
# Redis's instructions per task of a W1 burn-down, counted by callgrind: repeatable from run to run
# whatever else the machine does (a timing is not, here), so two commits' Lua can be compared exactly.
#   bash bench/redis-callgrind.sh [a|b] [n] [port]      (defaults: a 5000 6390)
# Starts a private redis-server under valgrind on `port` (never the shared one), runs
# bench/cpu-per-task.ts against it, counting from the end of the pre-fill (callgrind_control -z), stops
# it, prints the total and the count a task, and leaves the profile in /tmp/redis-callgrind.<port>.out
# for callgrind_annotate.
set -euo pipefail
mode=${1:-a}; n=${2:-5000}; port=${3:-6390}
out=/tmp/redis-callgrind.$port.out
cd "$(dirname "$0")/.."
if redis-cli -p "$port" ping >/dev/null 2>&1; then echo "port $port is taken" >&2; exit 1; fi
rm -f "$out"
valgrind --tool=callgrind --callgrind-out-file="$out" redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
vg=$!
for _ in $(seq 1 150); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
line=$(LOVAGE_BENCH_REDIS_PORT=$port ON_BURN_DOWN="callgrind_control -z $vg >/dev/null" npx tsx bench/cpu-per-task.ts redis "$mode" "$n" 2>&1 | tail -1)
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait $vg || true
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
echo "redis W1$mode, $n tasks: $total instructions, $((total / n)) a task (burn-down only) | $line"
