#!/usr/bin/env bash
# Start or stop a background Azurite on its standard ports, data under .local/azurite (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
pidfile=.local/azurite.pid
case "${1:-start}" in
  start)
    mkdir -p .local/azurite
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "Azurite already running (pid $(cat "$pidfile"))."
      exit 0
    fi
    if (exec 3<>/dev/tcp/127.0.0.1/10000) 2>/dev/null; then
      echo "Something already listens on 127.0.0.1:10000; assuming it is Azurite."
      exit 0
    fi
    node_modules/.bin/azurite --silent --skipApiVersionCheck --location .local/azurite \
      --debug .local/azurite/debug.log >.local/azurite/azurite.log 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 50); do
      if (exec 3<>/dev/tcp/127.0.0.1/10001) 2>/dev/null; then
        echo "Azurite started (blob 10000, queue 10001, table 10002; pid $(cat "$pidfile")). Stop it with 'make stop'."
        exit 0
      fi
      sleep 0.2
    done
    echo "Azurite did not start; see .local/azurite/azurite.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then echo "Azurite stopped."; fi
    rm -f "$pidfile"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
