#!/bin/sh
# Builds the x86-64 binaries the GPU check runs (the device image has no Rust toolchain) into
# target/gpu-bin (ignored by git, carried with `carry: ["target/gpu-bin"]`), stripped.
set -eu
# Run from the repository root.
cargo build --release -p tessera
cargo test --release -p tessera-engine --test cuda_ops --test cuda_forward --test cuda_nvrtc --no-run
cargo test --release -p tessera --test cuda_cli --no-run
rm -rf target/gpu-bin && mkdir -p target/gpu-bin/deps
cp target/release/tessera target/gpu-bin/tessera
for t in cuda_ops cuda_forward cuda_nvrtc cuda_cli; do
  f=$(ls -t target/release/deps/$t-* | grep -v '\.d$' | head -1)
  cp "$f" target/gpu-bin/deps/$t
done
strip target/gpu-bin/tessera target/gpu-bin/deps/*
du -sh target/gpu-bin
