#!/usr/bin/env bash
# Two "hosts" on one machine for multi-host MPI tests: network namespaces bdmpi-a (10.231.77.1) and bdmpi-b
# (10.231.77.2) joined by a veth pair. Traffic stays inside the two namespaces (no route, no NAT to the outside).
#   scripts/mpi-netns.sh up              create them (root; needs iproute2)
#   scripts/mpi-netns.sh down            delete them
#   scripts/mpi-netns.sh run ARGS...     mpirun ARGS with rank slots on both "hosts", launched without ssh:
#                                        mpirun runs in bdmpi-a, its daemon on bdmpi-b is started by the agent below.
set -euo pipefail
A=bdmpi-a B=bdmpi-b IPA=10.231.77.1 IPB=10.231.77.2 NET=10.231.77.0/24
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
  up)
    ip netns add $A; ip netns add $B
    ip link add bdmpi-va type veth peer name bdmpi-vb
    ip link set bdmpi-va netns $A; ip link set bdmpi-vb netns $B
    ip -n $A addr add $IPA/24 dev bdmpi-va; ip -n $B addr add $IPB/24 dev bdmpi-vb
    for ns in $A $B; do ip -n $ns link set lo up; done
    ip -n $A link set bdmpi-va up; ip -n $B link set bdmpi-vb up
    ip -n $A addr show dev bdmpi-va | grep -q $IPA && echo "netns $A ($IPA) <-> $B ($IPB) up" ;;
  down)
    ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true ;;
  run)
    shift
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    exec ip netns exec $A mpirun --mca plm_rsh_agent "$HERE/mpi-netns-agent.sh" \
      --mca btl self,tcp --mca btl_tcp_if_include $NET --mca oob_tcp_if_include $NET \
      --host $IPA:1,$IPB:1 "$@" ;;
  *) sed -n '2,8p' "$0"; exit 2 ;;
esac
