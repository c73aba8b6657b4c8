"""VDS-1 … VDS-5 (the spec's VDS-P1 … P5): bases, Penrose conditions, leverage, the G relation. [reconstructed]

Each numeric check runs the project's :mod:`reference.mechanisms.vds.bases` /
:mod:`~reference.mechanisms.vds.similarity` on heads of the ``heads`` strategy
(:mod:`proofs.vds.strategies`) with the spec's tolerances.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from proofs.registry import NumericCheck, Theorem, register
from proofs.toolkit import assert_close
from proofs.vds.strategies import Head, heads
from reference.mechanisms.vds.bases import (
    dots_as_head_logits,
    gram,
    gram_sqrt,
    leverage,
    logits_from_bases,
    projector,
    semantic_bases,
)
from reference.mechanisms.vds.similarity import head_cosine, similarity_logits

W_FULL = sp.Matrix([[1, 2], [0, 1], [3, -1], [2, 2]])
W_RANK2 = sp.Matrix([[1, 2, 3], [2, 4, 6], [0, 1, 1], [1, 0, 1]])


def _zero(M: sp.Matrix) -> bool:
    return sp.simplify(M) == sp.zeros(*M.shape)


def either(*strategies: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(*strategies)


# =========================================================================== VDS-1 (P1)


def _p1_symbolic() -> bool:
    # instance: the two matrices of the spec; the general identity W⁺ = G⁺Wᵀ is checked numerically.
    full = _zero(W_FULL.pinv() - (W_FULL.T * W_FULL).inv() * W_FULL.T)
    rank2 = _zero(W_RANK2.pinv() - (W_RANK2.T * W_RANK2).pinv() * W_RANK2.T)
    return full and rank2


def _p1_numeric(head: Head) -> None:
    W = head.W
    s_pinv, s_gram = semantic_bases(W, method="pinv"), semantic_bases(W, method="gram")
    scale = max(1.0, float(np.max(np.abs(s_pinv))))
    tol = (1e-10 if head.conditioning == "well" else 1e-13 * head.kappa**2) * scale
    assert_close(s_gram, s_pinv, tol, "P1(a) S_gram vs S_pinv")
    if head.conditioning != "well":
        return
    eye = np.eye(W.shape[0])
    for i in range(W.shape[0]):
        assert_close(s_gram[i], np.linalg.lstsq(W, eye[i], rcond=None)[0], 1e-10 * scale, f"P1(b) min-norm pre-image of e_{i}")
    if head.rank == W.shape[1]:
        assert_close(s_gram, np.linalg.solve(gram(W), W.T).T, 1e-10 * scale, "P1(c) s_i = G⁻¹w_i")


register(Theorem(
    id="VDS-1", mechanism="VDS", provenance="[reconstructed]",
    statement="bases are least-squares pre-images: W⁺ = G⁺Wᵀ, S = WG⁺; s_i = min-norm argmin ‖Wh − e_i‖; rank d ⇒ s_i = G⁻¹w_i",
    scope="instance: the spec's 4×2 full-rank and 4×3 rank-2 matrices",
    symbolic=_p1_symbolic,
    numeric=NumericCheck(_p1_numeric, either(heads("well"), heads("well", full_rank=False), heads("ill"))),
))


# =========================================================================== VDS-2 (P2)


def _p2_symbolic() -> bool:
    ok = True
    for M in (W_FULL, W_RANK2):
        Mp = M.pinv()
        ok = ok and _zero(M * Mp * M - M) and _zero(Mp * M * Mp - Mp)
        ok = ok and _zero((M * Mp).T - M * Mp) and _zero((Mp * M).T - Mp * M)
    return ok and _zero(W_FULL.pinv() * W_FULL - sp.eye(2))


def _p2_numeric(head: Head) -> None:
    W = head.W
    Wp = semantic_bases(W).T  # W⁺ by the Gram formula, (d, V)
    assert_close(W @ Wp @ W, W, 1e-10, "P2 WW⁺W = W")
    assert_close(Wp @ W @ Wp, Wp, 1e-10, "P2 W⁺WW⁺ = W⁺")
    assert_close((W @ Wp).T, W @ Wp, 1e-10, "P2 (WW⁺)ᵀ = WW⁺")
    assert_close((Wp @ W).T, Wp @ W, 1e-10, "P2 (W⁺W)ᵀ = W⁺W")
    if head.rank == W.shape[1]:
        assert_close(Wp @ W, np.eye(W.shape[1]), 1e-10, "P2 rank d ⇒ W⁺W = I")


register(Theorem(
    id="VDS-2", mechanism="VDS", provenance="[reconstructed]",
    statement="Penrose conditions of the Gram-formula W⁺: WW⁺W = W, W⁺WW⁺ = W⁺, WW⁺ and W⁺W symmetric; rank d ⇒ W⁺W = I",
    scope="instance: the spec's 4×2 and 4×3 rank-2 matrices",
    symbolic=_p2_symbolic,
    numeric=NumericCheck(_p2_numeric, either(heads("well"), heads("well", full_rank=False))),
))


# =========================================================================== VDS-3 (P3)


def _p3_symbolic() -> bool:
    P = W_FULL * W_FULL.pinv()
    ok = _zero(P * P - P) and _zero(P.T - P) and sp.simplify(P.trace() - 2) == 0
    S = W_FULL.pinv().T
    for i in range(W_FULL.rows):
        e = sp.zeros(W_FULL.rows, 1)
        e[i] = 1
        r = W_FULL * S[i, :].T - e
        ok = ok and sp.simplify((r.T * r)[0] - (1 - P[i, i])) == 0
    # The counterexample: W = (1, 2, 0)ᵀ, W s_0 = (1/5, 2/5, 0) peaks at token 1, not 0.
    c = sp.Matrix([[1], [2], [0]])
    Pc = c * c.pinv()
    ok = ok and _zero(Pc - sp.Matrix([[1, 2, 0], [2, 4, 0], [0, 0, 0]]) / 5)
    ws0 = c * c.pinv()[:, 0]
    return ok and list(ws0) == [sp.Rational(1, 5), sp.Rational(2, 5), 0]


def _p3_numeric(head: Head) -> None:
    W = head.W
    V = W.shape[0]
    S = semantic_bases(W)
    ell = leverage(W)
    assert_close(ell.sum(), head.rank, 1e-10, "P3 Σℓ = rank W")
    if np.any(ell < -1e-12) or np.any(ell > 1 + 1e-12):
        raise AssertionError(f"P3 leverage outside [0, 1]: [{ell.min():.3g}, {ell.max():.3g}]")
    P = projector(W)
    WS = W @ S.T  # column i = W s_i
    assert_close(WS, P, 1e-10, "P3 Ws_i = Pe_i")
    resid = np.sum((WS - np.eye(V)) ** 2, axis=0)
    assert_close(resid, 1.0 - ell, 1e-10, "P3 ‖Ws_i − e_i‖² = 1 − ℓ_i")
    bound = np.sqrt(np.clip(np.outer(ell, ell), 0, None))
    if np.any(np.abs(P) > bound + 1e-10):
        raise AssertionError("P3 |P_ji| > √(ℓ_iℓ_j)")
    if head.rank == V:
        assert_close(WS, np.eye(V), 1e-10, "P3 rank V ⇒ W Sᵀ = I_V")


register(Theorem(
    id="VDS-3", mechanism="VDS", provenance="[reconstructed]",
    statement="logits of a basis: Ws_i = Pe_i, P = Pᵀ = P², ℓ_i ∈ [0, 1], Σℓ = rank W, ‖Ws_i − e_i‖² = 1 − ℓ_i; "
    "rank V ⇒ Ws_i = e_i (argmax_j (Ws_i)_j = i is not a conclusion: W = (1, 2, 0)ᵀ)",
    scope="instance: the spec's 4×2 matrix and the counterexample W = (1, 2, 0)ᵀ",
    symbolic=_p3_symbolic,
    numeric=NumericCheck(_p3_numeric, either(heads("well"), heads("well", full_rank=False),
                                             heads("well", v_le_d=True, full_rank=True))),
))


def own_peak_rate(W: np.ndarray) -> float:
    """Share of tokens i whose basis' logits Ws_i peak at i (reported, not asserted: VDS-P3)."""
    WS = W @ semantic_bases(W).T
    return float(np.mean(np.argmax(WS, axis=0) == np.arange(W.shape[0])))


# =========================================================================== VDS-4 (P4)


def _p4_symbolic() -> bool:
    # general for 3×2 heads of full column rank: a0..a5 symbolic, G invertible generically.
    Ws = sp.Matrix(3, 2, sp.symbols("a0:6", real=True))
    h = sp.Matrix(sp.symbols("h0:2", real=True))
    G = Ws.T * Ws
    S = (G.inv() * Ws.T).T
    generic = _zero(Ws * h - S * G * h)
    hr = sp.Matrix([1, -2, 5])
    Gr = W_RANK2.T * W_RANK2
    Sr = W_RANK2.pinv().T
    return generic and _zero(W_RANK2 * hr - Sr * Gr * hr) and _zero(Sr * hr - W_RANK2 * Gr.pinv() * hr)


def _p4_numeric(head: Head) -> None:
    W, h = head.W, head.h[None, :]
    S, G = semantic_bases(W), gram(W)
    z = h @ W.T
    scale = np.linalg.norm(W, 2) * np.linalg.norm(h)
    tol = (1e-9 if head.conditioning == "well" else 1e-14 * head.kappa**2) * scale
    assert_close(logits_from_bases(S, G, h), z, tol, "P4 z = SGh")
    T = gram_sqrt(G)
    assert_close((h @ T) @ (S @ T).T, z, tol, "P4 z_i = (G^½s_i)ᵀ(G^½h)")
    if head.conditioning == "well":
        tol2 = 1e-9 * max(1.0, float(np.max(np.abs(S)))) * np.linalg.norm(h)
        assert_close(h @ S.T, dots_as_head_logits(W, G, h), tol2, "P4 Sh = WG⁺h")


register(Theorem(
    id="VDS-4", mechanism="VDS", provenance="[reconstructed]",
    statement="LM-head logits are G-inner products with the bases: z = SGh, z_i = (G^½s_i)ᵀ(G^½h), Sh = WG⁺h",
    scope="instance: every full-column-rank 3×2 head (symbolic entries) and the rank-2 4×3 head with h = (1, −2, 5)",
    symbolic=_p4_symbolic,
    numeric=NumericCheck(_p4_numeric, either(heads("well", sigma=(0.1, 10.0)), heads("well", full_rank=False), heads("ill"))),
))


# =========================================================================== VDS-5 (P5)


def _p5_symbolic() -> bool:
    Ws = sp.Matrix(3, 2, sp.symbols("a0:6", real=True))
    G = Ws.T * Ws
    S = (G.inv() * Ws.T).T
    P = Ws * G.inv() * Ws.T
    ok = all(sp.simplify((S[i, :] * G * S[i, :].T)[0] - P[i, i]) == 0 for i in range(3))
    return ok and sp.simplify(P.trace() - 2) == 0


def _p5_numeric(head: Head) -> None:
    W, h = head.W, head.h[None, :]
    S, G, ell = semantic_bases(W), gram(W), leverage(W)
    assert_close(np.einsum("vd,de,ve->v", S, G, S), ell, 1e-12, "P5 s_iᵀGs_i = ℓ_i", rtol=1e-9)
    z = (h @ W.T)[0]
    nz = float(np.linalg.norm(z))
    if nz <= 1e-8 * np.linalg.norm(W, 2) * np.linalg.norm(h):
        return  # Wh = 0 is outside the hypothesis
    assert_close((h @ G @ h.T)[0, 0], nz * nz, 0.0, "P5 hᵀGh = ‖z‖²", rtol=1e-9)
    keep = ell > 1e-8
    c = head_cosine(h, S[keep], G)[0]
    ratio = z[keep] / np.sqrt(ell[keep])
    assert_close(c, ratio / nz, 1e-12, "P5 cos_G = z/(√ℓ‖z‖)", rtol=1e-9)
    top = np.sort(ratio)[::-1]
    if top.size > 1 and (top[0] - top[1]) > 1e-8 * max(abs(top[0]), 1e-300) and np.argmax(c) != np.argmax(ratio):
        raise AssertionError("P5 argmax cos_G ≠ argmax z/√ℓ")


def _p5_isotropic(case: tuple[int, int, float]) -> None:
    seed, d, alpha = case
    rs = np.random.default_rng(seed)
    V = d + 1 + int(rs.integers(0, 12))
    W = np.sqrt(alpha) * np.linalg.qr(rs.standard_normal((V, d)))[0]
    S = semantic_bases(W)
    assert_close(S, W / alpha, 1e-10, "P5 isotropic s_i = w_i/α")
    h = rs.standard_normal((1, d))
    score = (h @ W.T)[0] / np.linalg.norm(W, axis=1)
    top = np.sort(score)[::-1]
    if top[0] - top[1] > 1e-8 * abs(top[0]) and np.argmax(similarity_logits(h, S)[0]) != np.argmax(score):
        raise AssertionError("P5 isotropic argmax cos ≠ argmax z/‖w‖")


def _p5_cases() -> st.SearchStrategy:
    isotropic = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 10), st.floats(0.1, 10.0)).map(lambda t: ("iso", t))
    return st.one_of(heads("well").map(lambda h: ("head", h)), heads("well", full_rank=False).map(lambda h: ("head", h)),
                     isotropic)


def _p5_dispatch(case: tuple) -> None:
    kind, value = case
    (_p5_numeric if kind == "head" else _p5_isotropic)(value)


register(Theorem(
    id="VDS-5", mechanism="VDS", provenance="[reconstructed]",
    statement="head-metric cosine = leverage-normalised LM logits: s_iᵀGs_i = ℓ_i, hᵀGh = ‖z‖², cos_G(h, s_i) = "
    "z_i/(√ℓ_i‖z‖); G = αI ⇒ s_i = w_i/α and argmax cos = argmax z/‖w‖",
    scope="instance: s_iᵀGs_i = P_ii and tr P = 2 for every full-column-rank 3×2 head (symbolic entries)",
    symbolic=_p5_symbolic,
    numeric=NumericCheck(_p5_dispatch, _p5_cases()),
))
