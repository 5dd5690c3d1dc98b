"""What adding independent noise to an attribution map does to the MPRT scores (seed Theorems 1, 3, 4).

The noisy variant of a map A is A~ = A + s E[A^2]^(1/2) Z with Z i.i.d. standard normal per pixel and
independent of A (and of the model): noise of variance s^2 E[A^2] whose scale follows the map's own root
mean square, so the level s means the same for every method. Its moments follow at once:

    E[A~] = mu_A,    var(A~) = var_A + s^2 E[A^2],    E[A~^2] = (1 + s^2) E[A^2],
    cov(A~, X) = cov(A, X) for any X independent of Z.

Noise leaves every covariance untouched and raises the variance. Two comparisons matter:

(a) ``*_noisy_self``: A~ against its noise-free self A. Here cov(A, A~) = var_A, both means are mu_A.
(b) ``*_noisy_pair``: what MPRT computes when the explanation itself is noisy: the original model's noisy
    map A~ = A + s_a E[A^2]^(1/2) Z against the randomised model's noisy map B~ = B + s_b E[B^2]^(1/2) Z',
    with Z, Z' independent (a new draw for each model). Given the moments of the clean pair (A, B), only
    the two variances grow; cov(A~, B~) = cov_AB and the means are kept. (Drawing the *same* Z for both
    maps would add s_a s_b E[A^2]^(1/2) E[B^2]^(1/2) to the covariance instead: not what these assume.)

Each closed form plugs these moments into the seed's equations: SSIM into main-paper eq. 1 through
``theory.ssim_from_moments`` (Theorem 1; at cov = 0 it is the floor of eq. 5), the normalised MSE into eq.
13-14 through ``theory.normalized_mse`` (Theorem 4), and the expected Spearman coefficient of a Gaussian
copula with the implied correlation through ``theory.spearman_expected_gaussian`` (Theorem 3, eq. 8).
As s grows SSIM falls to 0 (the contrast-structure term (2 cov + C2)/(var + C2) loses its denominator's
race), the normalised MSE rises to 2 - 0 = 2 and the Spearman coefficient falls to 0: noise moves every
score towards "randomised" without any change in the model.

``second_moment*`` arguments: E[A^2], the second moment that scales the noise. It defaults to mu^2 + var,
which is right when the moments are those of a pixel of the map; pass the map's global E[A^2] when
``var`` is a windowed (local) variance, as in SSIM, where the noise is scaled by the whole map's RMS.
"""

from __future__ import annotations

import numpy as np

from . import _validation as v
from .mse import normalized_mse
from .spearman import spearman_expected_gaussian
from .ssim import ssim_from_moments

__all__ = [
    "noise_injected_variance",
    "normalized_mse_noisy_pair",
    "normalized_mse_noisy_self",
    "spearman_expected_stationary",
    "spearman_noisy_pair",
    "spearman_noisy_self",
    "ssim_noisy_pair",
    "ssim_noisy_self",
]


def _noise_level(name, value):
    return v.nonnegative(name, value)


def _noisy_variance(mu, var, s, second_moment, name):
    """var + s^2 E[A^2], E[A^2] given (non-negative, at least mu^2) or mu^2 + var."""
    if second_moment is None:
        return var + s**2 * (mu**2 + var)
    m2 = v.nonnegative(name, second_moment)
    mu, var, s, m2 = v.broadcast(mu=mu, var=var, s=s, **{name: m2})
    v.check(name, m2, m2 * (1 + 1e-9) >= mu**2, "at least mu**2 (a second moment)")
    return var + s**2 * m2


def noise_injected_variance(mu, var, s, *, second_moment=None):
    """Variance of A + s E[A^2]^(1/2) Z: var + s^2 E[A^2], the input of Theorems 1, 3, 4 (eq. 5, 8, 14)
    under noise; the mean stays mu."""
    mu, var, s = v.as_float_array("mu", mu), v.nonnegative("var", var), _noise_level("s", s)
    mu, var, s = v.broadcast(mu=mu, var=var, s=s)
    return v.scalar_or_array(_noisy_variance(mu, var, s, second_moment, "second_moment"))


def ssim_noisy_self(mu, var, s, *, c1, c2, second_moment=None):
    """Case (a): SSIM (main-paper eq. 1, Theorem 1) of A~ = A + noise(s) against A itself.

    With mu_A~ = mu_A the luminance term is 1 and cov(A, A~) = var_A, so eq. 1 reads
    (2 var + c2) / (2 var + s^2 E[A^2] + c2): 1 at s = 0, falling to 0 as s -> inf.
    """
    mu, var, s = v.as_float_array("mu", mu), v.nonnegative("var", var), _noise_level("s", s)
    mu, var, s = v.broadcast(mu=mu, var=var, s=s)
    noisy = _noisy_variance(mu, var, s, second_moment, "second_moment")
    return ssim_from_moments(mu, mu, var, noisy, var, c1=c1, c2=c2)


def ssim_noisy_pair(mu_a, mu_b, var_a, var_b, cov_ab, s, *, c1, c2, s_b=None, second_moment_a=None,
                    second_moment_b=None):
    """Case (b): SSIM (main-paper eq. 1, Theorem 1) of A~ against B~, noises of levels s (A) and s_b (B).

    ``s_b=None`` uses s for both maps. Eq. 1 at the noisy moments: the luminance term of the clean pair
    times (2 cov_ab + c2) / (var_a + s^2 E[A^2] + var_b + s_b^2 E[B^2] + c2). At s = s_b = 0 it is the
    clean pair's SSIM; at cov_ab = 0 it is the floor of eq. 5, lowered further by every unit of noise.
    """
    mu_a, mu_b = v.as_float_array("mu_a", mu_a), v.as_float_array("mu_b", mu_b)
    var_a, var_b = v.nonnegative("var_a", var_a), v.nonnegative("var_b", var_b)
    s = _noise_level("s", s)
    s_b = s if s_b is None else _noise_level("s_b", s_b)
    mu_a, mu_b, var_a, var_b, s, s_b = v.broadcast(mu_a=mu_a, mu_b=mu_b, var_a=var_a, var_b=var_b, s=s,
                                                   s_b=s_b)
    cov = v.covariance("cov_ab", cov_ab, var_a, var_b)
    noisy_a = _noisy_variance(mu_a, var_a, s, second_moment_a, "second_moment_a")
    noisy_b = _noisy_variance(mu_b, var_b, s_b, second_moment_b, "second_moment_b")
    return ssim_from_moments(mu_a, mu_b, noisy_a, noisy_b, cov, c1=c1, c2=c2)


def normalized_mse_noisy_self(s):
    """Case (a): second-moment-normalised MSE (seed eq. 12-13, Theorem 4) of A~ against A.

    E[A A~] = E[A^2] and E[A~^2] = (1 + s^2) E[A^2], so eq. 13 gives 2 - 2 / sqrt(1 + s^2) whatever the
    map: 0 at s = 0, 2 - sqrt(2) at s = 1, 2 as s -> inf.
    """
    s = _noise_level("s", s)
    return normalized_mse(1.0, 1.0 + s**2, 1.0)


def normalized_mse_noisy_pair(mu_a, mu_b, var_a, var_b, cov_ab, s, *, s_b=None):
    """Case (b): normalised MSE (seed eq. 13-14, Theorem 4) of A~ against B~ (``s_b=None``: s for both).

    E[A~ B~] = E[AB] = cov_ab + mu_a mu_b and E[A~^2] = (1 + s^2) E[A^2], so
    2 - 2 (cov_ab + mu_a mu_b) / sqrt((1 + s^2)(1 + s_b^2) E[A^2] E[B^2]); it tends to 2 as the noise
    grows, the value eq. 15 gives for zero-mean zero-covariance maps.
    """
    mu_a, mu_b = v.as_float_array("mu_a", mu_a), v.as_float_array("mu_b", mu_b)
    var_a, var_b = v.nonnegative("var_a", var_a), v.nonnegative("var_b", var_b)
    s = _noise_level("s", s)
    s_b = s if s_b is None else _noise_level("s_b", s_b)
    mu_a, mu_b, var_a, var_b, s, s_b = v.broadcast(mu_a=mu_a, mu_b=mu_b, var_a=var_a, var_b=var_b, s=s,
                                                   s_b=s_b)
    cov = v.covariance("cov_ab", cov_ab, var_a, var_b)
    m2a, m2b = var_a + mu_a**2, var_b + mu_b**2
    v.check("var_a", var_a, m2a > 0, "positive where mu_a == 0 (the second moment must be positive)")
    v.check("var_b", var_b, m2b > 0, "positive where mu_b == 0 (the second moment must be positive)")
    return normalized_mse((1 + s**2) * m2a, (1 + s_b**2) * m2b, cov + mu_a * mu_b)


def _correlation(cov, var_a, var_b, names):
    v.check(names[0], var_a, var_a > 0, "positive (a constant map has no ranks)")
    v.check(names[1], var_b, var_b > 0, "positive (a constant map has no ranks)")
    return np.clip(cov / (np.sqrt(var_a) * np.sqrt(var_b)), -1.0, 1.0)


def spearman_noisy_self(mu, var, s, n=None, *, second_moment=None):
    """Case (a): expected Spearman coefficient (Theorem 3, eq. 8) of A~ against A under a Gaussian copula.

    The correlation of (A, A~) is var / sqrt(var (var + s^2 E[A^2])) = (var / (var + s^2 E[A^2]))^(1/2);
    ``theory.spearman_expected_gaussian`` turns it into the expected coefficient (n=None: population;
    n pixels: the finite-sample expectation). Exact when A is Gaussian, since then (A, A~) is bivariate
    normal. var must be positive.
    """
    mu, var, s = v.as_float_array("mu", mu), v.nonnegative("var", var), _noise_level("s", s)
    mu, var, s = v.broadcast(mu=mu, var=var, s=s)
    noisy = _noisy_variance(mu, var, s, second_moment, "second_moment")
    rho = _correlation(var, var, noisy, ("var", "var"))
    return spearman_expected_gaussian(rho, n)


def spearman_noisy_pair(mu_a, mu_b, var_a, var_b, cov_ab, s, n=None, *, s_b=None, second_moment_a=None,
                        second_moment_b=None):
    """Case (b): expected Spearman coefficient (Theorem 3, eq. 8) of A~ against B~, Gaussian copula.

    The correlation cov_ab / sqrt((var_a + s^2 E[A^2]) (var_b + s_b^2 E[B^2])) is the clean pair's
    correlation shrunk by the noise; then ``theory.spearman_expected_gaussian(rho, n)``. var_a, var_b > 0.
    """
    mu_a, mu_b = v.as_float_array("mu_a", mu_a), v.as_float_array("mu_b", mu_b)
    var_a, var_b = v.nonnegative("var_a", var_a), v.nonnegative("var_b", var_b)
    s = _noise_level("s", s)
    s_b = s if s_b is None else _noise_level("s_b", s_b)
    mu_a, mu_b, var_a, var_b, s, s_b = v.broadcast(mu_a=mu_a, mu_b=mu_b, var_a=var_a, var_b=var_b, s=s,
                                                   s_b=s_b)
    cov = v.covariance("cov_ab", cov_ab, var_a, var_b)
    v.check("var_a", var_a, var_a > 0, "positive (a constant map has no ranks)")
    v.check("var_b", var_b, var_b > 0, "positive (a constant map has no ranks)")
    noisy_a = _noisy_variance(mu_a, var_a, s, second_moment_a, "second_moment_a")
    noisy_b = _noisy_variance(mu_b, var_b, s_b, second_moment_b, "second_moment_b")
    rho = _correlation(cov, noisy_a, noisy_b, ("var_a", "var_b"))
    return spearman_expected_gaussian(rho, n)


def spearman_expected_stationary(cov_x, cov_y, cov_xy, *, max_pixels: int = 8192):
    """Expected sample Spearman coefficient (eq. 8) over all n pixels of two jointly Gaussian stationary
    fields on a torus: Theorem 3's Gaussian-copula value without the i.i.d. pixels that
    ``theory.spearman_expected_gaussian`` assumes. ``cov_x[d]``, ``cov_y[d]``: auto-covariances at offset d
    (arrays of the map's shape, offset 0 first); ``cov_xy[d]`` = Cov(X_p, Y_{p+d}). With r_s = 3/(n^3 - n)
    sum_ijk sign(X_i - X_j) sign(Y_i - Y_k) and E sign(U) sign(V) = (2/pi) asin(corr(U, V)):
    E r_s = 6/(pi (n^2 - 1)) sum_{u, w != 0} asin(rho(u, w)),
    rho(u, w) = (c_xy(0) - c_xy(w) - c_xy(-u) + c_xy(w - u)) / sqrt(2 (c_x(0) - c_x(u)) 2 (c_y(0) - c_y(w))).
    Uncorrelated pixels give spearman_expected_gaussian(rho, n) back. Costs n^2 terms (n <= max_pixels).
    """
    cov_x, cov_y = v.as_float_array("cov_x", cov_x), v.as_float_array("cov_y", cov_y)
    cov_xy = v.as_float_array("cov_xy", cov_xy)
    if not cov_x.shape == cov_y.shape == cov_xy.shape or cov_x.size < 2:
        raise ValueError(f"cov_x, cov_y and cov_xy must have one shape of >= 2 pixels, got {cov_x.shape}, "
                         f"{cov_y.shape}, {cov_xy.shape}")
    n = cov_x.size
    if n > max_pixels:
        raise ValueError(f"cov_x must have at most max_pixels={max_pixels} pixels (n^2 terms), got {n}")
    flat = [c.ravel() for c in (cov_x, cov_y, cov_xy)]
    for name, c in zip(("cov_x", "cov_y"), flat[:2], strict=True):
        v.check(name, c[1:], c[1:] < c[0], f"below its value at offset 0 ({c[0]!r}) at every other offset "
                "(no two pixels may be copies)")
    coords = np.unravel_index(np.arange(n), cov_x.shape)
    wrap = lambda parts: np.ravel_multi_index(parts, cov_x.shape, mode="wrap")  # noqa: E731
    minus_u = wrap(tuple(-c for c in coords))
    offsets = np.arange(1, n)
    total = 0.0
    for start in range(1, n, 256):
        u = np.arange(start, min(start + 256, n))[:, None]
        w_minus_u = wrap(tuple(c[None, 1:] - c[u[:, 0], None] for c in coords))
        cross = flat[2][0] - flat[2][offsets][None, :] - flat[2][minus_u[u]] + flat[2][w_minus_u]
        scale = np.sqrt(2 * (flat[0][0] - flat[0][u]) * 2 * (flat[1][0] - flat[1][offsets][None, :]))
        total += float(np.sum(np.arcsin(np.clip(cross / scale, -1.0, 1.0))))
    return 6 / (np.pi * (n * n - 1.0)) * total
