#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and benchmarking dzfs needs.
# Idempotent: installs only what is missing. Run as root.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config git
  libfuse3-dev fuse3            # the FUSE low-level API and fusermount3
  libsqlite3-dev                # the index
  libxxhash-dev                 # XXH3-128 chunk fingerprints
  libzstd-dev zstd              # the fast tier
  libgtest-dev                  # unit and integration tests
  clang libclang-rt-14-dev      # libFuzzer targets
  libtorch-dev libopenblas0-pthread  # dzfs train (OpenBLAS: ~10x faster matrix products than reference BLAS)
  rsync attr acl xz-utils python3 fio stress-ng strace  # integration tests (strace: fault injection) and the quick start
  dpkg-dev man-db groff-base    # cpack -G DEB (dpkg-shlibdeps), man -w / man -l of the man page
  default-jdk-headless          # the Java (JNI) binding of libdzcodec and its test
  cargo rustc                   # the Rust binding of libdzcodec (Debian's toolchain, offline, no crates)
)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
