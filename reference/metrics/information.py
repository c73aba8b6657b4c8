"""Information-theoretic measures shared by the mechanisms and the proofs. [standard]

Shannon entropy, and the closed-form KL and mutual-information estimators that MSA
(specs/04-msma.md §5) and NEU share: PCA scores with a fixed sign rule, the diagonal- and
full-Gaussian KL of two samples, the histogram MI of the authors' code, the Gaussian/CCA MI
(with its bias correction), KSG, distance correlation and CCA similarity. The trained
estimators (InfoNCE, MINE with shuffled marginals) are in :mod:`reference.metrics.estimators`.

Units: nats, float64. ``entropy`` takes its array namespace from its input (NumPy, CuPy,
autograd); the sample estimators work on host NumPy arrays (rows = samples, columns =
coordinates) — they sort, count and take SVDs, none of which autograd needs to see.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reference.backend import namespace


def entropy(p: Any, axis: int = -1, base: float | None = None) -> Any:
    """Shannon entropy H(p) = −Σ_i p_i log p_i along ``axis``. [standard]

    p (..., T, ...) nonnegative, summing to 1 along ``axis`` (not checked, not
    renormalised) -> H with ``axis`` removed, e.g. (B, H, T, T) -> (B, H, T)
    for attention patterns.

    Units: nats by default, bits with ``base=2`` (any base > 0, ≠ 1).
    Zero probabilities contribute 0, the limit of p log p as p -> 0⁺
    (0 · log 0 = 0), so masked attention entries need no special case.
    0 ≤ H(p) ≤ log T, with H = log T exactly for the uniform distribution
    (theorem CORE-3 in ``proofs/core.py``).
    """
    if base is not None and (base <= 0 or base == 1):
        raise ValueError(f"entropy base: {base!r} is not a number > 0 and != 1 (use 2 for bits, None for nats)")
    if not hasattr(p, "shape"):  # a list or a scalar; arrays (and autograd boxes) pass through
        p = namespace(p).asarray(p, dtype=float)
    xp = namespace(p)
    positive = p > 0
    # log is taken of 1 where p = 0, so no -inf (and no warning) is ever formed.
    plogp = xp.where(positive, p * xp.log(xp.where(positive, p, 1.0)), 0.0)
    h = -xp.sum(plogp, axis=axis)
    return h if base is None else h / math.log(base)


# --------------------------------------------------------------------------- helpers


def _rows(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 (N, d) array: a 1-D input is one column; non-finite values are refused."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name}: expected a non-empty (rows, dims) array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: holds non-finite values")
    return a


def digamma(x: float) -> float:
    """ψ(x) for x > 0: recurrence ψ(x) = ψ(x+1) − 1/x up to x ≥ 10, then the asymptotic series. [classical]

    ψ(x) ≈ ln x − 1/(2x) − 1/(12x²) + 1/(120x⁴) − 1/(252x⁶) + 1/(240x⁸) − 1/(132x¹⁰). [reconstructed]
    The spec's series stops at x⁻⁶, whose error at x = 10 is 1/(240x⁸) ≈ 4·10⁻¹¹; the two further
    Bernoulli terms bring it under 10⁻¹³, so the spec's 10⁻¹² agreement with ``mpmath.digamma`` holds.
    """
    if not x > 0:
        raise ValueError(f"digamma: {x!r} is not > 0")
    acc = 0.0
    while x < 10.0:
        acc -= 1.0 / x
        x += 1.0
    x2 = x * x
    inv = 1.0 / x2
    series = inv * (-1 / 12 + inv * (1 / 120 + inv * (-1 / 252 + inv * (1 / 240 + inv * (-1 / 132)))))
    return acc + math.log(x) - 0.5 / x + series


def digamma_array(values: np.ndarray) -> np.ndarray:
    """:func:`digamma` elementwise on positive integers or halves (memoised per distinct value)."""
    values = np.asarray(values, dtype=np.float64)
    uniq, inverse = np.unique(values, return_inverse=True)
    return np.array([digamma(float(v)) for v in uniq])[inverse].reshape(values.shape)


def gaussian_mi(rho: Any) -> float:
    """Closed-form MI of jointly Gaussian vectors from their canonical correlations: −½Σ ln(1 − ρ_i²). [classical]"""
    r = np.asarray(rho, dtype=np.float64).reshape(-1)
    return float(-0.5 * np.sum(np.log1p(-r * r)))


# --------------------------------------------------------------------------- PCA


def pca_fit(fit: Any, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of the fit rows (N, d) -> (mean (d,), loadings (d, k'), score sd (k',)), k' = min(k, d). [reconstructed §5]

    Centre by the fit mean; top eigenvectors of the 1/N covariance; each component's sign
    makes the fit scores' third moment positive, or, when |Σs³| ≤ 10⁻¹²Σ|s|³ (symmetric
    scores), the largest-magnitude loading positive; scores are divided by their fit sd
    (a zero sd is left at 1). A fitted triple passes through unchanged, so a caller can fit once.
    """
    if isinstance(fit, tuple):
        return fit
    a = _rows(fit, "pca fit")
    k = min(int(k), a.shape[1])
    mean = a.mean(0)
    c = a - mean
    cov = c.T @ c / a.shape[0]
    vals, vecs = np.linalg.eigh(cov)
    vecs = vecs[:, np.argsort(vals)[::-1][:k]]
    s = c @ vecs
    s3 = s * s * s
    m3 = s3.sum(0)
    a3 = np.abs(s3).sum(0)
    sign = np.where(m3 > 0, 1.0, -1.0)
    flat = np.abs(m3) <= 1e-12 * a3
    if np.any(flat):
        lead = vecs[np.argmax(np.abs(vecs), axis=0), np.arange(k)]
        sign = np.where(flat, np.where(lead >= 0, 1.0, -1.0), sign)
    vecs = vecs * sign
    sd = s.std(0)  # the sign flip does not change the sd
    sd = np.where(sd > 0, sd, 1.0)
    return mean, vecs, sd


def pca_scores(fit: Any, rows: Any | None, k: int) -> np.ndarray:
    """Standardised PCA-k scores of ``rows`` (M, d) under the PCA of ``fit`` (N, d) -> (M, min(k, d)). [reconstructed §5]

    ``rows`` None scores the fit rows themselves; ``fit`` may be a triple from :func:`pca_fit`.
    """
    mean, vecs, sd = pca_fit(fit, k)
    r = _rows(fit if rows is None else rows, "pca rows")
    return (r - mean) @ vecs / sd


# --------------------------------------------------------------------------- KL (§5.1)


def kl_diag_moments(mu1: Any, s1: Any, mu2: Any, s2: Any) -> float:
    """KL(N(μ₁, diag s₁) ‖ N(μ₂, diag s₂)) = ½Σ_j[s₁/s₂ + (μ₁ − μ₂)²/s₂ − 1 + ln(s₂/s₁)]. [classical, MSA-T2]"""
    mu1, s1, mu2, s2 = (np.asarray(v, dtype=np.float64) for v in (mu1, s1, mu2, s2))
    return float(0.5 * np.sum(s1 / s2 + (mu1 - mu2) ** 2 / s2 - 1.0 + np.log(s2) - np.log(s1)))


def kl_diag(a: Any, b: Any, eps: float = 1e-6) -> float:
    """Diagonal-Gaussian KL(a ‖ b) of two samples a (N, d), b (M, d). [author-code §5.1]

    Per dimension mean and 1/N variance, s ← max(s + ε, ε); then :func:`kl_diag_moments`.
    It ignores the pairing of rows, depends on the coordinates (MSA-T2f) and is dominated by
    small target variances.
    """
    a, b = _rows(a, "kl_diag a"), _rows(b, "kl_diag b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"kl_diag: dimensions differ ({a.shape[1]} vs {b.shape[1]})")
    sa = np.maximum(a.var(0) + eps, eps)
    sb = np.maximum(b.var(0) + eps, eps)
    return kl_diag_moments(a.mean(0), sa, b.mean(0), sb)


def kl_gauss_moments(mu1: Any, c1: Any, mu2: Any, c2: Any) -> float:
    """KL(N(μ₁, Σ₁) ‖ N(μ₂, Σ₂)) = ½[tr(Σ₂⁻¹Σ₁) + Δμᵀ Σ₂⁻¹ Δμ − k + ln det Σ₂ − ln det Σ₁]. [classical]"""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    c1, c2 = np.asarray(c1, np.float64), np.asarray(c2, np.float64)
    k = mu1.size
    l2 = np.linalg.cholesky(c2)
    solve = np.linalg.solve(c2, np.column_stack([c1, mu1 - mu2]))
    tr = np.trace(solve[:, :k])
    quad = float((mu1 - mu2) @ solve[:, k])
    _, ld1 = np.linalg.slogdet(c1)
    ld2 = 2.0 * np.sum(np.log(np.diag(l2)))
    return float(0.5 * (tr + quad - k + ld2 - ld1))


def kl_gauss(a: Any, b: Any, dim: int = 16, ridge: float = 1e-6) -> float:
    """Full-covariance Gaussian KL(a ‖ b) on the PCA-``dim`` of both samples' union (unscaled). [reconstructed §5.1]

    1/N covariances + ridge·tr/k·I; invariant under a common rotation of both samples (MSA-T2e).
    """
    a, b = _rows(a, "kl_gauss a"), _rows(b, "kl_gauss b")
    mean, vecs, _ = pca_fit(np.vstack([a, b]), dim)
    pa, pb = (a - mean) @ vecs, (b - mean) @ vecs
    k = vecs.shape[1]
    ca = np.cov(pa.T, bias=True).reshape(k, k)
    cb = np.cov(pb.T, bias=True).reshape(k, k)
    ca = ca + ridge * np.trace(ca) / k * np.eye(k)
    cb = cb + ridge * np.trace(cb) / k * np.eye(k)
    return kl_gauss_moments(pa.mean(0), ca, pb.mean(0), cb)


def relative_reduction(before: float, after: float) -> float | None:
    """(K_none − K_a)/K_none (negative if worse); None when K_none ≤ 0. [reconstructed §5.1]"""
    return None if before <= 0 else (before - after) / before


# --------------------------------------------------------------------------- histogram MI (§5.2)


def _bins(v: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.linspace(v.min(), v.max(), n_bins + 1)
    edges[-1] += 1e-6
    return np.clip(np.searchsorted(edges, v, side="left"), 0, n_bins - 1)


def mi_hist(x: Any, y: Any, n_bins: int = 64) -> float:
    """Histogram MI of the authors' code: two scalars pooled over rows and coordinates. [author-code §5.2]

    x, y (N, d): edges = linspace(min, max, n_bins + 1) over all entries, last edge + 10⁻⁶;
    bin = clip(searchsorted(edges, v, "left"), 0, n_bins − 1) (bin 0 holds only the minimum);
    x[b, j] is paired with y[b, j]; MI = ΣJ(ln(J + 10⁻⁹) − ln(p_x p_yᵀ + 10⁻⁹)). ≤ ln n_bins.
    It measures coordinate-wise agreement, not the MI of the vectors (MSA-T8d).
    """
    x, y = _rows(x, "mi_hist x"), _rows(y, "mi_hist y")
    if x.shape != y.shape:
        raise ValueError(f"mi_hist: shapes differ ({x.shape} vs {y.shape})")
    if n_bins < 2:
        raise ValueError(f"mi_hist: n_bins {n_bins} < 2")
    bx, by = _bins(x.reshape(-1), n_bins), _bins(y.reshape(-1), n_bins)
    counts = np.bincount(bx * n_bins + by, minlength=n_bins * n_bins).reshape(n_bins, n_bins).astype(np.float64)
    joint = counts / counts.sum()
    px, py = joint.sum(1), joint.sum(0)
    return float(np.sum(joint * (np.log(joint + 1e-9) - np.log(np.outer(px, py) + 1e-9))))


# --------------------------------------------------------------------------- Gaussian / CCA MI (§5.4)


def _logdet_corrected(z: np.ndarray) -> float:
    """ℓ(Z) = ln det W_Z − k ln 2 − Σ_{i=1}^{k} ψ((N − i)/2), W_Z the scatter of the centred rows (MSA-T3d)."""
    n, k = z.shape
    c = z - z.mean(0)
    _, ld = np.linalg.slogdet(c.T @ c)
    return float(ld - k * math.log(2.0) - sum(digamma((n - i) / 2.0) for i in range(1, k + 1)))


def canonical_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The canonical correlations of two samples (descending): singular values of Σx^{-1/2} Σxy Σy^{-1/2}. [classical]"""
    xc, yc = x - x.mean(0), y - y.mean(0)
    qx, _ = np.linalg.qr(xc)
    qy, _ = np.linalg.qr(yc)
    return np.clip(np.linalg.svd(qx.T @ qy, compute_uv=False), 0.0, 1.0)


def mi_gauss(x: Any, y: Any, dim: int = 32, bias_correct: bool = True, fit_x: Any = None, fit_y: Any = None) -> dict:
    """Gaussian (CCA) MI of two samples on PCA-``dim`` scores per side. [classical §5.4]

    Corrected (default): Î = ½[ℓ(X) + ℓ(Y) − ℓ([X, Y])], unbiased for ln det (MSA-T3d);
    uncorrected: ½ ln(det Σ̂x det Σ̂y / det Σ̂) = −½Σ ln(1 − ρ̂_i²). PCA is fitted on ``fit_x``/
    ``fit_y`` (default the rows themselves). Returns {"mi", "cca" (top 5 ρ), "cca1"}.
    Needs rows > k_x + k_y + 1.
    """
    x, y = _rows(x, "mi_gauss x"), _rows(y, "mi_gauss y")
    sx = pca_scores(x if fit_x is None else fit_x, x, dim)
    sy = pca_scores(y if fit_y is None else fit_y, y, dim)
    n = x.shape[0]
    if n <= sx.shape[1] + sy.shape[1] + 1:
        raise ValueError(f"mi_gauss: {n} rows <= k_x + k_y + 1 = {sx.shape[1] + sy.shape[1] + 1}")
    rho = canonical_correlations(sx, sy)
    if bias_correct:
        mi = 0.5 * (_logdet_corrected(sx) + _logdet_corrected(sy) - _logdet_corrected(np.hstack([sx, sy])))
    else:
        mi = gaussian_mi(np.minimum(rho, 1 - 1e-16))
    return {"mi": float(mi), "cca": [float(r) for r in rho[:5]], "cca1": float(rho[0])}


def mi_gauss_plugin(x: Any, y: Any) -> float:
    """Uncorrected plug-in ½ ln(det Σ̂x det Σ̂y / det Σ̂) on the raw coordinates (1/N covariances). [classical, MSA-T3c]"""
    x, y = _rows(x, "x"), _rows(y, "y")
    z = np.hstack([x, y])
    c = np.cov(z.T, bias=True).reshape(z.shape[1], z.shape[1])
    kx = x.shape[1]
    ld = [np.linalg.slogdet(m)[1] for m in (c[:kx, :kx], c[kx:, kx:], c)]
    return float(0.5 * (ld[0] + ld[1] - ld[2]))


# --------------------------------------------------------------------------- KSG (§5.3)


def mi_ksg(x: Any, y: Any, k: int = 3, dim: int = 4, max_rows: int = 2048, jitter: float = 1e-10,
           seed: int | list[int] = 0, chunk: int = 256) -> float:
    """Kraskov–Stögbauer–Grassberger MI, algorithm 1, max-norm. [classical: Kraskov et al. 2004, §5.3]

    PCA-``dim`` scores per side (standardised), at most ``max_rows`` rows (seeded subsample),
    jitter·N(0, 1) added (seeded); ε_i = joint max-norm distance to the k-th neighbour;
    n_x(i), n_y(i) = points at marginal distance < ε_i (i excluded);
    Î = ψ(k) + ψ(N) − mean_i[ψ(n_x + 1) + ψ(n_y + 1)]. Negative values are kept.
    It estimates I(PCA(X); PCA(Y)) ≤ I(X; Y).
    """
    x, y = _rows(x, "mi_ksg x"), _rows(y, "mi_ksg y")
    if x.shape[0] != y.shape[0]:
        raise ValueError("mi_ksg: x and y need the same rows")
    gen = np.random.default_rng(seed)
    n = x.shape[0]
    if n > max_rows:
        keep = np.sort(gen.choice(n, size=max_rows, replace=False))
        x, y = x[keep], y[keep]
        n = max_rows
    if not 1 <= k < n:
        raise ValueError(f"mi_ksg: k = {k} is not in [1, rows = {n})")
    sx, sy = pca_scores(x, None, dim), pca_scores(y, None, dim)
    sx = sx + jitter * gen.standard_normal(sx.shape)
    sy = sy + jitter * gen.standard_normal(sy.shape)
    nx = np.empty(n, np.int64)
    ny = np.empty(n, np.int64)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        dx = np.max(np.abs(sx[start:stop, None, :] - sx[None, :, :]), axis=-1)
        dy = np.max(np.abs(sy[start:stop, None, :] - sy[None, :, :]), axis=-1)
        dz = np.maximum(dx, dy)
        rows = np.arange(stop - start)
        dz[rows, rows + start] = np.inf
        eps = np.partition(dz, k - 1, axis=1)[:, k - 1]
        dx[rows, rows + start] = np.inf
        dy[rows, rows + start] = np.inf
        nx[start:stop] = np.sum(dx < eps[:, None], axis=1)
        ny[start:stop] = np.sum(dy < eps[:, None], axis=1)
    psi = digamma_array(np.concatenate([nx + 1, ny + 1]))
    return float(digamma(k) + digamma(n) - psi.mean() * 2.0)


# --------------------------------------------------------------------------- similarity diagnostics (§5.6)


def distance_correlation(x: Any, y: Any, rows: int = 1024, seed: int | list[int] = 0) -> float:
    """Distance correlation dCor = √(dCov²(x, y)/√(dVar²(x) dVar²(y))) on a seeded subsample. [author-code §5.6]"""
    x, y = _rows(x, "dcor x"), _rows(y, "dcor y")
    n = x.shape[0]
    if n > rows:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=rows, replace=False))
        x, y = x[keep], y[keep]

    def centred(z: np.ndarray) -> np.ndarray:
        sq = np.sum(z * z, 1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0))
        return d - d.mean(0) - d.mean(1)[:, None] + d.mean()

    a, b = centred(x), centred(y)
    dcov, vx, vy = np.mean(a * b), np.mean(a * a), np.mean(b * b)
    if vx <= 0 or vy <= 0:
        return 0.0
    return float(math.sqrt(max(dcov, 0.0) / math.sqrt(vx * vy)))


def cca_similarity(x: Any, y: Any, pca_dim: int = 32) -> float:
    """First canonical correlation of PCA-``pca_dim`` scores of each side (fitted on the rows themselves). [author-code §5.6]"""
    x, y = _rows(x, "cca x"), _rows(y, "cca y")
    return float(canonical_correlations(pca_scores(x, None, pca_dim), pca_scores(y, None, pca_dim))[0])
