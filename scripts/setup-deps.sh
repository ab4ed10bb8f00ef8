#!/usr/bin/env bash
# Installs every Debian package that spikefm's build, tests and demo need.
# Idempotent: when everything is present it returns at once without touching apt.
# Runs as root, or through sudo otherwise. Debian packages only; nothing is downloaded at run time.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-pthread
  libeigen3-dev libhdf5-dev libcli11-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libtomlplusplus-dev libspdlog-dev libfmt-dev
  dataset-fashion-mnist invesalius-examples
  gnuplot-nox python3 python3-h5py python3-numpy python3-pydicom python3-nibabel
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "setup-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup-deps: error: not root and sudo is not available (run as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day, or when a package is unknown.
lists_fresh() {
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]
}
all_known() {
  for p in "${missing[@]}"; do
    apt-cache show "$p" >/dev/null 2>&1 || return 1
  done
}
if ! lists_fresh || ! all_known; then
  $SUDO apt-get update -q
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup-deps: done"
