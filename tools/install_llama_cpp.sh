#!/usr/bin/env bash
# Install llama-cpp-python into a virtual environment from a cached wheel,
# compiling it once (about 9 minutes on 2 cores) with flags that run on this CPU.
#
# Why: PyPI has no binary wheel for Linux x86_64, and the default -march=native
# build enables ggml's AMX path, which dies with SIGILL on some virtualised CPUs.
# We build with GGML_NATIVE=OFF and turn on exactly the instruction sets that
# /proc/cpuinfo reports, with AMX always off. Override with CMAKE_ARGS, e.g.
#   CMAKE_ARGS="-DGGML_CUDA=on" make setup      (NVIDIA GPU)
#   CMAKE_ARGS="-DGGML_METAL=on" make setup     (Apple silicon)
#   CMAKE_ARGS="-DGGML_NATIVE=ON" make setup    (native, if your CPU has no AMX issue)
# The wheel is cached under $SAFESCALE_CACHE/wheels/<tag>/, keyed by version,
# flags, Python and machine, so later setups and CI reinstall it in seconds.
set -euo pipefail
PY=${1:-.venv/bin/python}
VERSION=${LLAMA_CPP_VERSION:-0.3.36}
CACHE=${SAFESCALE_CACHE:-$HOME/.cache/safescale}

portable_flags() {
  local flags="-DGGML_NATIVE=OFF"
  if [ "$(uname -m)" = "x86_64" ] && [ -r /proc/cpuinfo ]; then
    local cpu
    cpu=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    local pair
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI \
                avx512f:AVX512 avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI \
                avx512_bf16:AVX512_BF16; do
      if [[ "$cpu" == *" ${pair%%:*} "* ]]; then flags+=" -DGGML_${pair##*:}=ON"; fi
    done
    flags+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  fi
  echo "$flags"
}

ARGS=${CMAKE_ARGS:-$(portable_flags)}
PYVER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
TAG=$(printf '%s|%s|%s|%s' "$VERSION" "$ARGS" "$PYVER" "$(uname -m)" | sha256sum | cut -c1-12)
WHEELDIR="$CACHE/wheels/llama-cpp-python-$VERSION-$TAG"
MARKER="$(dirname "$(dirname "$PY")")/.llama_cpp_tag"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$TAG" ] && "$PY" -c "import llama_cpp" 2>/dev/null; then
  echo "llama-cpp-python $VERSION ($TAG) already installed"
  exit 0
fi
if ! ls "$WHEELDIR"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "Building llama-cpp-python $VERSION with CMAKE_ARGS=\"$ARGS\" (one-time, ~9-16 min on 2 cores)"
  mkdir -p "$WHEELDIR.tmp"
  CMAKE_ARGS="$ARGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$PY" -m pip wheel --no-deps --no-cache-dir -w "$WHEELDIR.tmp" "llama-cpp-python==$VERSION"
  printf '%s\n' "$ARGS" > "$WHEELDIR.tmp/CMAKE_ARGS"
  rm -rf "$WHEELDIR" && mv "$WHEELDIR.tmp" "$WHEELDIR"
fi
"$PY" -m pip install --no-deps --force-reinstall -q "$WHEELDIR"/llama_cpp_python-*.whl
echo "$TAG" > "$MARKER"
echo "llama-cpp-python $VERSION installed from $WHEELDIR"
