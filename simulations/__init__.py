"""Monte Carlo checks of the seed's theorems against the closed forms of `theory`.

The theorems are those of the supplement of Binder et al., CVPR 2023, numbered as there.

One module per experiment, each with a frozen ``Config`` (``Config.quick()`` for reports), a pure
``run(config, *, rng) -> pandas.DataFrame`` in the results format of docs/results-format.md, ``plot(table,
path)`` and ``main(argv)`` behind ``python -m simulations.<name>``:

- cauchy_overtake (Theorem 2, sections E and I), similarity_processes (Theorems 1, 3, 4),
  quantile_variance (eq. 20, section D.1), adaptive_beta (eq. 1-2, 52), monotonicity (section F),
  positive_dominance (section G), noise_injection (independent noise added to a map:
  SSIM, normalised MSE and Spearman against s, Theorems 1, 3, 4).
"""

SIMULATIONS = (
    "cauchy_overtake",
    "similarity_processes",
    "quantile_variance",
    "adaptive_beta",
    "monotonicity",
    "positive_dominance",
    "noise_injection",
)
