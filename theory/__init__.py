"""Closed forms of the seed's supplement: pure, deterministic, numpy + scipy only.

Equation numbers ("seed eq. N", "seed section X") refer to the supplement of Binder et al., CVPR 2023,
"Shortcomings of Top-Down Randomization-Based Sanity Checks for Evaluations of Deep Neural Network
Explanations". Every function broadcasts over numpy arrays and raises a
ValueError naming the argument and its value on invalid input.

Topics (module: public names):

- ssim (Theorem 1, main-paper eq. 1, seed eq. 3-7): ssim_from_moments, ssim_min_nonnegative_cov,
  ssim_noise_bound, ssim_constants
- spearman (Theorem 3, eq. 8-10): spearman_expected_gaussian (population and finite n)
- mse (Theorem 4, eq. 12-19): normalized_mse (eq. 12-13), normalized_mse_from_moments (eq. 14),
  normalized_mse_max (eq. 15), mse_from_moments (eq. 16-18), mse_bound (eq. 19)
- normalization (eq. 11, section D.1): normalize_second_moment, normalize_max_abs, normalize_std,
  normalize_percentile, normalize, NORMALIZATIONS (eq. 11 prints h^2 for A^2)
- quantiles (eq. 20, section D.1): quantile_asymptotic_variance (with the square on the density the seed
  omits), expected_maximum
- overtaking (Theorem 2, eq. 21-41; section I): cauchy_ratio_density (eq. 22), cauchy_tail (eq. 23),
  overtake_gamma (eq. 28, 40), overtake_probability (eq. 27-28, 37-41), overtake_bound (eq. 33-36),
  overtake_bound_average (eq. 41), overtake_from_quantiles (section I; K undefined, NaN, for quantiles of
  opposite signs), k_defined, QUANTILE_LEVELS, HIGH_QUANTILES, LOW_QUANTILES
- lrp (section A.2 eq. 1-2, section F.3 eq. 52): adaptive_beta, lrp_beta_neuron
- monotonicity (section F, eq. 42-57): gradient_neuron, gradient_x_input_neuron, shapley_neuron,
  lrp_beta_single_neuron, is_positively_monotone, ACTIVATIONS
- dominance (section G, eq. 58-63): relu_relevance_sums, LayerRelevance
- noise_injection (Theorems 1, 3, 4 under added noise of variance s^2 E[A^2]): noise_injected_variance,
  ssim_noisy_self, ssim_noisy_pair, normalized_mse_noisy_self, normalized_mse_noisy_pair,
  spearman_noisy_self, spearman_noisy_pair, spearman_expected_stationary (Spearman of Gaussian fields
  whose pixels are correlated)
"""

from .dominance import LayerRelevance, relu_relevance_sums
from .lrp import adaptive_beta, lrp_beta_neuron
from .monotonicity import (
    ACTIVATIONS,
    gradient_neuron,
    gradient_x_input_neuron,
    is_positively_monotone,
    lrp_beta_single_neuron,
    shapley_neuron,
)
from .mse import mse_bound, mse_from_moments, normalized_mse, normalized_mse_from_moments, normalized_mse_max
from .noise_injection import (
    noise_injected_variance,
    normalized_mse_noisy_pair,
    normalized_mse_noisy_self,
    spearman_expected_stationary,
    spearman_noisy_pair,
    spearman_noisy_self,
    ssim_noisy_pair,
    ssim_noisy_self,
)
from .normalization import (
    NORMALIZATIONS,
    normalize,
    normalize_max_abs,
    normalize_percentile,
    normalize_second_moment,
    normalize_std,
)
from .overtaking import (
    HIGH_QUANTILES,
    LOW_QUANTILES,
    QUANTILE_LEVELS,
    cauchy_ratio_density,
    cauchy_tail,
    k_defined,
    overtake_bound,
    overtake_bound_average,
    overtake_from_quantiles,
    overtake_gamma,
    overtake_probability,
)
from .quantiles import expected_maximum, quantile_asymptotic_variance
from .spearman import spearman_expected_gaussian
from .ssim import ssim_constants, ssim_from_moments, ssim_min_nonnegative_cov, ssim_noise_bound

__all__ = [
    "ACTIVATIONS",
    "HIGH_QUANTILES",
    "LOW_QUANTILES",
    "NORMALIZATIONS",
    "QUANTILE_LEVELS",
    "LayerRelevance",
    "adaptive_beta",
    "cauchy_ratio_density",
    "cauchy_tail",
    "expected_maximum",
    "gradient_neuron",
    "gradient_x_input_neuron",
    "is_positively_monotone",
    "lrp_beta_neuron",
    "lrp_beta_single_neuron",
    "mse_bound",
    "mse_from_moments",
    "noise_injected_variance",
    "normalize",
    "normalize_max_abs",
    "normalize_percentile",
    "normalize_second_moment",
    "normalize_std",
    "normalized_mse",
    "normalized_mse_from_moments",
    "normalized_mse_max",
    "normalized_mse_noisy_pair",
    "normalized_mse_noisy_self",
    "k_defined",
    "overtake_bound",
    "overtake_bound_average",
    "overtake_from_quantiles",
    "overtake_gamma",
    "overtake_probability",
    "quantile_asymptotic_variance",
    "relu_relevance_sums",
    "shapley_neuron",
    "spearman_expected_gaussian",
    "spearman_expected_stationary",
    "spearman_noisy_pair",
    "spearman_noisy_self",
    "ssim_constants",
    "ssim_from_moments",
    "ssim_min_nonnegative_cov",
    "ssim_noise_bound",
    "ssim_noisy_pair",
    "ssim_noisy_self",
]
