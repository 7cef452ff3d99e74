#!/usr/bin/env bash
# Linear-layer kernel benchmarks (LinearWeight): decode matrix-vector products per storage type,
# the SmolLM2-135M linear layers per token, prefill panels + sgemm, accuracy, and the decode/panel
# crossover. They live in Tests/FinchCoreTests/LinearWeightTests.swift (testBenchmark) and print
# only with FINCH_BENCH=1; nothing is asserted on time. Run on an idle machine: the benchmark
# prints how much CPU other processes used meanwhile.
#
# Both BLAS configurations are measured: OpenBLAS with its own threads (its default), and OpenBLAS
# single-threaded, where LinearWeight splits BLAS work over Finch's ThreadPool itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --build-tests -Xswiftc -enable-testing >/dev/null
for threads in default 1; do
    echo "=== OpenBLAS threads: $threads"
    if [ "$threads" = default ]; then unset OPENBLAS_NUM_THREADS; else export OPENBLAS_NUM_THREADS=$threads; fi
    FINCH_BENCH=1 swift test -c release --skip-build --filter LinearWeightTests/testBenchmark 2>&1 \
        | grep -vE '^(Test Suite|Test Case|\[|◇|↳|✔)|Executed|^\s*$'
done
