#!/usr/bin/env bash
# plm_rsh_agent for scripts/mpi-netns.sh: called by mpirun like ssh ("agent [options] HOST COMMAND..."), it runs
# COMMAND (Open MPI's orted) in the network namespace that owns HOST instead of logging in anywhere.
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done   # ssh-style options mpirun may add
host="$1"; shift
case "$host" in
  10.231.77.1) ns=bdmpi-a ;;
  10.231.77.2) ns=bdmpi-b ;;
  *) echo "mpi-netns-agent: unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" /bin/sh -c "$*"
