#!/usr/bin/env bash
# The GPU checks of a lent device: the CUDA tests, annotation throughput with the model on the GPU (in-process and
# over HTTP against the MassBank database, the lab-sized 1.9M database and candidates sent as SMILES), a training
# step of each model, and the 1.9M import on the machine's cores.
#
#   bash benchmarks/gpu_checks.sh DATA_DIR OUT_DIR [STEP...]
#
# STEP: pytest, predict, train_step, import, serve (default: all, in that order). DATA_DIR holds massbank/ and mnist/
# as in ../shared/data, and molecules/ for `import`. `import` builds the 1.9M database at $MSVAE_BIG_DB (default
# /tmp/msvae-big.sqlite; never under OUT_DIR, whose files travel back) within $IMPORT_LIMIT seconds (default 420;
# resumable, so a later call with the same database file finishes it); `serve` runs the `big` set-up when that
# file exists. Each step's log and result JSON go to OUT_DIR (and benchmarks/results/*-cuda.json, *_cuda.json). A
# step that fails is logged and the next one still runs. The mzML test is left out: its writer, psims, is 24 MB of
# vocabularies that need not travel to the device.
#
# On a GPU machine without the project's packages (the lent H200 has torch, numpy, scipy, httpx and pytest): put
# the other wheels, pip-downloaded for its Python (`pip download --no-deps --only-binary=:all: --python-version
# 3.12 --platform manylinux_2_28_x86_64 ...`), in .whl/ and the X11 libraries RDKit's drawing code links against
# (libXrender and what it needs) in .whl/x11/; the script installs them once into .gpu/site. A wheel may travel
# as an xz tarball of its unpacked files (.whl/NAME.tar.xz: RDKit's 32 MB wheel is 24 MB so), for the 64 MiB that
# a device call carries.
set -u
data=${1:?DATA_DIR}
out=${2:?OUT_DIR}
shift 2
steps=${*:-pytest predict train_step import serve}
big=${MSVAE_BIG_DB:-/tmp/msvae-big.sqlite}
import_limit=${IMPORT_LIMIT:-420}
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
mkdir -p "$out"
if [ -d .whl ] && ! python3 -c "import rdkit, fastapi" 2>/dev/null; then
    if [ "$(ls .whl)" != "$(cat .gpu/site/.from 2>/dev/null)" ]; then  # installed once per set of wheels
        rm -rf .gpu/site && mkdir -p .gpu/site
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target .gpu/site .whl/*.whl
        for packed in .whl/*.tar.xz; do [ -e "$packed" ] && tar -xJf "$packed" -C .gpu/site; done
        ls .whl >.gpu/site/.from
    fi
    export PYTHONPATH=$PWD:$PWD/.gpu/site LD_LIBRARY_PATH=$PWD/.whl/x11${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUT_DIR/NAME.log
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    echo "== $name: $*"
    timeout "$limit" "$@" >"$out/$name.log" 2>&1 || { echo "!! $name failed ($?)"; status=1; }
    tail -n 12 "$out/$name.log"
    echo "== $name took $((SECONDS - start)) s"
}
wanted() { [[ " $steps " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$out/gpu.txt"
wanted pytest && step pytest 150 python3 -m pytest -q -p no:cacheprovider -k "not mzml_and_mzxml" tests/test_cuda.py tests/test_api_server.py
wanted predict && step spectra_predict 60 python3 benchmarks/spectra_predict.py --device cuda --n 4000 --data "$data"
wanted train_step && step train_step 150 python3 benchmarks/train_step.py --device cuda --steps 50 --warmup 5 --data "$data"
wanted import && step import_candidates "$((import_limit + 60))" python3 benchmarks/import_candidates.py \
    --database-url "sqlite:///$big" --data "$data" --time-limit "$import_limit" --result-suffix=-cuda
if wanted serve; then
    if [ -f "$big" ]; then
        step serve 240 python3 benchmarks/serve.py --data "$data" --big-database-url "sqlite:///$big" --requests-per-client 30 20
    else
        step serve 180 python3 benchmarks/serve.py --data "$data" --skip big --requests-per-client 30 20
    fi
fi
cp benchmarks/results/*cuda*.json "$out/" 2>/dev/null
exit $status
