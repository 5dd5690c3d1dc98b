"""Real networks of the audit: the seed's experiments measured on ResNet-50, DenseNet-121, EfficientNet-B0
and a small demo network.

"The seed" is the supplement of Binder et al., CVPR 2023, "Shortcomings of Top-Down Randomization-Based
Sanity Checks for Evaluations of Deep Neural Network Explanations"; sections are numbered as there.

Subpackages:

- ``empirical.models``: the networks and their preprocessing (seed section A.1).
- ``empirical.attribution``: gradient methods, LRP rules (seed eq. 1-2, 52), the random-uniform control.
- ``empirical.measures``: SSIM, Spearman and MSE after eq. 11's normalisations (Theorems 1, 3, 4), activation
  statistics (sections I, J), sMPRT and eMPRT (Hedström et al. 2023).
- ``empirical.experiments``: top-down randomisation (A.1, H), faithfulness (MoRF, LeRF), activations,
  what each test rewards on noisy maps.
- ``empirical.run``: profiles, image streams, resumable runs and their result files
  (docs/results-format.md); ``python -m empirical --help`` on the command line.
- ``empirical.multilabel``: the multi-label fine-tuning of section A.3.
"""

# python -m empirical: thread counts from the CPUs this process may use, passive OpenMP waiting (before torch)
from empirical.run.threads import configure_threads_for_command  # noqa: E402

configure_threads_for_command()

