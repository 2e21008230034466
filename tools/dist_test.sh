#!/usr/bin/env bash
# Multi-process evaluation with torchrun and MMEngine's `pytorch` launcher; the metric is
# gathered over the processes (same numbers as tools/test.py in one process).
#   tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py args...]
# Paths are relative to the current folder, as with tools/train.py.
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT; PYTHON picks the interpreter.
set -e
if [ $# -lt 3 ]; then
    echo "usage: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [tools/test.py arguments...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROCS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
TOOLS="$(dirname "$0")"
exec "$PYTHON" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --nproc_per_node="$NPROCS" --master_port="$PORT" \
    "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
