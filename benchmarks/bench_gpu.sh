#!/usr/bin/env bash
# hessrank on a machine with an NVIDIA GPU (JAX with CUDA installed), against the same
# machine's CPUs: the numerical tests on the GPU, then whole `hessian-rank run`s (dense
# and matrix-free at p = 4560, matrix-free at p = 110,100) on the GPU and on the CPU.
#
#     bash benchmarks/bench_gpu.sh [OUTDIR]      # from the repository root; no install needed
#
# Writes one JSON per run to OUTDIR (default results/bench_gpu) and prints a table.
set -u
out=${1:-results/bench_gpu}
gpu=${HESSRANK_GPU_PLATFORM:-cuda}   # (cpu: a dry run of this script on a machine without a GPU)
mkdir -p "$out"
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"

echo "== tests on the GPU"
JAX_PLATFORMS=$gpu timeout 300 python3 -m pytest -q -x -p no:cacheprovider \
    tests/curvature tests/measure/test_matrix_free.py tests/linalg tests/models 2>&1 | tail -4

run() {  # platform method units K name
    local t0 t1
    t0=$(date +%s.%N)
    JAX_PLATFORMS=$1 timeout 400 python3 -m hessrank.cli run --dataset gaussian --n 100 --dim 64 \
        --units "$3" --K "$4" --method "$2" --json > "$out/$5.json" || echo "$5: failed (exit $?)"
    t1=$(date +%s.%N)
    echo "$5 $(awk "BEGIN {print $t1 - $t0}")" >> "$out/wall.txt"
}
rm -f "$out/wall.txt"
echo "== eigenvalues: SciPy (CPU) against jax.numpy.linalg.eigvalsh (GPU)"
JAX_PLATFORMS=$gpu timeout 200 python3 benchmarks/bench_eig.py 4560 10000
echo "== runs"
run $gpu dense 40,40 10 gpu_small_dense
run $gpu matrix-free 40,40 10 gpu_small_mf
run cpu dense 40,40 10 cpu_small_dense
run cpu matrix-free 40,40 10 cpu_small_mf
if [ -z "${HESSRANK_SMALL_ONLY:-}" ]; then
    run $gpu matrix-free 300,300 3 gpu_large_mf
    run cpu matrix-free 300,300 3 cpu_large_mf
fi

python3 - "$out" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
wall = dict(line.split() for line in (out / "wall.txt").read_text().splitlines())
print(f"{'run':<18}{'p':>8}{'wall s':>9}{'peak GiB':>10}  ranks H_L/H_o/H_F   predicted")
for name, w in wall.items():
    try:
        r = json.loads((out / f"{name}.json").read_text())
    except (OSError, ValueError):
        print(f"{name:<18} no result"); continue
    ranks = "/".join(str(r["ranks"][k]) for k in ("H_L", "H_o", "H_F"))
    pred = "/".join(str(r["predictions"][k]) for k in ("H_L", "H_o", "H_F"))
    print(f"{name:<18}{r['p']:>8}{float(w):>9.1f}{r['peak_rss_bytes'] / 2**30:>10.2f}  {ranks:<19}{pred}"
          f"   {r['timings']}")
EOF
