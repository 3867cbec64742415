#!/usr/bin/env bash
# The GPU checks of one lent device call: the CUDA tests, then annotation throughput with the model on the GPU
# (in-process and over HTTP against the MassBank database) and a training step of each model.
#
#   bash benchmarks/gpu_checks.sh DATA_DIR OUT_DIR
#
# DATA_DIR holds massbank/ and mnist/ as in ../shared/data; each step's log and result JSON go to OUT_DIR (and
# benchmarks/results/*-cuda.json, *_cuda.json). A step that fails is logged and the next one still runs. The mzML
# test is left out: its writer, psims, is 24 MB of vocabularies that need not travel to the device.
#
# On a GPU machine without the project's packages (the lent H200 has torch, numpy, scipy, httpx and pytest), the
# call first installs the other wheels, pip-downloaded here for its Python, into a folder on PYTHONPATH, and puts
# the X11 libraries RDKit's drawing code links against (libXrender and what it needs) on LD_LIBRARY_PATH.
set -u
data=${1:?DATA_DIR}
out=${2:?OUT_DIR}
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUT_DIR/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    timeout "$limit" "$@" >"$out/$name.log" 2>&1 || { echo "!! $name failed ($?)"; status=1; }
    tail -n 12 "$out/$name.log"
}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$out/gpu.txt"
step pytest 120 python3 -m pytest -q -p no:cacheprovider -k "not mzml_and_mzxml" tests/test_cuda.py tests/test_api_server.py
step spectra_predict 60 python3 benchmarks/spectra_predict.py --device cuda --n 4000 --data "$data"
step train_step 150 python3 benchmarks/train_step.py --device cuda --steps 50 --warmup 5 --data "$data"
step serve 180 python3 benchmarks/serve.py --shared-data "$data" --skip big smiles --requests-per-client 30 20
cp benchmarks/results/*cuda*.json "$out/" 2>/dev/null
exit $status
