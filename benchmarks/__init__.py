"""Throughput of the suite against its floors and its peers.

``python -m benchmarks`` runs the harness (:func:`benchmarks.harness.run_benchmarks`): every stage's
images per second set against the network passes it cannot avoid, measured in the same process, and with
``--with-peers`` the same work done by Quantus, Captum and Zennit. ``pytest benchmarks`` runs the
pytest-benchmark files ``test_bench_*.py`` (hot functions against scikit-image, scipy and numpy).
``benchmarks/gpu_check.sh`` checks CUDA against the CPU, then times the full size on a GPU.
"""

# python -m benchmarks: thread counts from the CPUs this process may use, passive OpenMP waiting
from empirical.storage.threads import configure_threads_for_command  # noqa: E402

configure_threads_for_command()

