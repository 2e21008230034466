#!/usr/bin/env bash
# Multi-process training with torchrun and MMEngine's `pytorch` launcher.
#   tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]   (CPU: gloo; GPU: nccl)
# Paths are relative to the current folder, as with tools/train.py.
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT; PYTHON picks the interpreter.
set -e
if [ $# -lt 2 ]; then
    echo "usage: tools/dist_train.sh CONFIG NUM_PROCS [tools/train.py arguments...]" >&2
    exit 2
fi
CONFIG=$1
NPROCS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
TOOLS="$(dirname "$0")"
exec "$PYTHON" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --nproc_per_node="$NPROCS" --master_port="$PORT" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "${@:3}"
