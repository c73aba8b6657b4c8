"""VDS bases (A1) and their relation to LM-head logits through G = WᵀW (specs/02 §2.2, §2.4).

Pinv and the Gram formula agree to 1e-10·max(1, max|S|) in float64 on Hypothesis-drawn heads of
every rank (rank-deficient included), never forming a V×V object; z = S G h, Sh = W G⁺h and the
head-metric cosine z_i/(√ℓ_i‖z‖) hold exactly as the spec states them.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proofs.vds.strategies import heads, make_head
from reference.config import ConfigError
from reference.mechanisms.vds import (
    check_head,
    check_label_ids,
    cosine_forward,
    dots_as_head_logits,
    flops_per_logits,
    gram,
    gram_sqrt,
    head_cosine,
    leverage,
    logits_from_bases,
    numeric_rank,
    projector,
    semantic_bases,
    similarity_logits,
)


def _scale(S):
    return 1e-10 * max(1.0, float(np.max(np.abs(S))))


@given(heads("well"), st.data())
def test_vds_pinv_and_gram_bases_agree_on_any_rank(head, data):
    W = head.W
    ids = data.draw(st.lists(st.integers(0, W.shape[0] - 1), min_size=1, max_size=W.shape[0], unique=True))
    s_pinv = semantic_bases(W, ids, method="pinv")
    s_gram = semantic_bases(W, ids, method="gram")
    assert s_gram.shape == (len(ids), W.shape[1]) and s_gram.dtype == np.float64
    assert np.max(np.abs(s_pinv - s_gram)) <= _scale(s_pinv)
    assert numeric_rank(W) == head.rank


@given(heads("well", full_rank=False))
def test_vds_rank_deficient_heads_give_min_norm_preimages(head):
    """r < min(V, d): s_i is the minimum-norm least-squares solution of W s = e_i (VDS-P1 b)."""
    W = head.W
    S = semantic_bases(W)
    for i in range(W.shape[0]):
        e = np.zeros(W.shape[0])
        e[i] = 1.0
        ref = np.linalg.lstsq(W, e, rcond=None)[0]
        assert np.max(np.abs(S[i] - ref)) <= _scale(S)


@given(heads("well", full_rank=True))
def test_vds_full_column_rank_bases_are_g_inverse_rows(head):
    W = head.W
    if head.rank != W.shape[1]:
        return
    S = semantic_bases(W)
    assert np.max(np.abs(S - np.linalg.solve(gram(W), W.T).T)) <= _scale(S)


@given(heads("ill"))
def test_vds_ill_conditioned_bases_agree_within_kappa_squared(head):
    s_pinv, s_gram = semantic_bases(head.W, method="pinv"), semantic_bases(head.W, method="gram")
    assert np.max(np.abs(s_pinv - s_gram)) <= 1e-13 * head.kappa**2 * max(1.0, float(np.max(np.abs(s_pinv))))


@given(heads("well"))
def test_vds_lm_head_logits_are_g_inner_products_with_the_bases(head):
    """§2.4 (1) z = S G h, z_i = (G^½ s_i)ᵀ(G^½ h); (2) S h = W G⁺ h."""
    W, h = head.W, head.h[None, :]
    S, G = semantic_bases(W), gram(W)
    z = h @ W.T
    tol = 1e-9 * np.linalg.norm(W, 2) * np.linalg.norm(h)
    assert np.max(np.abs(logits_from_bases(S, G, h) - z)) <= tol
    T = gram_sqrt(G)
    assert np.max(np.abs((h @ T) @ (S @ T).T - z)) <= tol
    assert np.max(np.abs(h @ S.T - dots_as_head_logits(W, G, h))) <= 1e-9 * max(1.0, np.max(np.abs(S))) * np.linalg.norm(h)


@given(heads("well"))
def test_vds_head_metric_cosine_is_leverage_normalised_lm_logits(head):
    """§2.4 (3): s_iᵀGs_i = ℓ_i, hᵀGh = ‖z‖², cos_G(h, s_i) = z_i/(√ℓ_i‖z‖) where ℓ_i > 0 and Wh ≠ 0."""
    W, h = head.W, head.h[None, :]
    S, G, ell = semantic_bases(W), gram(W), leverage(W)
    assert np.allclose(np.einsum("vd,de,ve->v", S, G, S), ell, rtol=1e-9, atol=1e-12)
    z = (h @ W.T)[0]
    if np.linalg.norm(z) < 1e-6 * np.linalg.norm(W, 2) * np.linalg.norm(h):
        return
    assert np.isclose(float((h @ G @ h.T)[0, 0]), float(z @ z), rtol=1e-9)
    keep = ell > 1e-6
    c = head_cosine(h, S[keep], G)[0]
    assert np.allclose(c, z[keep] / (np.sqrt(ell[keep]) * np.linalg.norm(z)), rtol=1e-9, atol=1e-12)


@given(st.integers(1, 8), st.integers(0, 2**32 - 1), st.floats(0.1, 10.0))
def test_vds_isotropic_head_bases_are_scaled_rows(d, seed, alpha):
    """§2.4 (4): G = αI ⇒ s_i = w_i/α and cos(h, s_i) = z_i/(‖w_i‖‖h‖)."""
    rs = np.random.default_rng(seed)
    V = d + 1 + int(rs.integers(0, 10))
    q, _ = np.linalg.qr(rs.standard_normal((V, d)))
    W = np.sqrt(alpha) * q
    S = semantic_bases(W)
    assert np.max(np.abs(S - W / alpha)) <= 1e-10
    h = rs.standard_normal((1, d))
    z = h @ W.T
    assert np.allclose(similarity_logits(h, S), z / (np.linalg.norm(W, axis=1) * np.linalg.norm(h)), rtol=1e-9)


def test_vds_gram_method_forms_no_v_by_v_object(monkeypatch):
    """A head of V = 20,000 rows: the Gram bases of 3 labels never allocate a V×V or d×V array."""
    rs = np.random.default_rng(0)
    W, _ = make_head(rs, 20_000, 16, 16, (0.5, 2.0))
    seen = []
    original = np.linalg.svd

    def no_svd(*args, **kwargs):  # the pinv path's SVD of W would be the d×V object
        seen.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(np.linalg, "svd", no_svd)
    S = semantic_bases(W, [1, 5, 7], method="gram")
    assert S.shape == (3, 16) and not seen
    ref = np.linalg.solve(W.T @ W, W[[1, 5, 7]].T).T
    assert np.max(np.abs(S - ref)) <= 1e-10 * max(1, np.max(np.abs(ref)))


def test_vds_bases_are_float64_for_float32_heads():
    rs = np.random.default_rng(1)
    W32 = rs.standard_normal((30, 6)).astype(np.float32)
    S = semantic_bases(W32, [0, 1])
    assert S.dtype == np.float64
    assert np.max(np.abs(S - semantic_bases(W32.astype(np.float64), [0, 1], method="pinv"))) <= 1e-10


def test_vds_p3_counterexample_basis_logits_peak_elsewhere():
    """W = (1, 2, 0)ᵀ: P = [[1,2,0],[2,4,0],[0,0,0]]/5, W s_0 = (1/5, 2/5, 0) peaks at token 1."""
    W = np.array([[1.0], [2.0], [0.0]])
    assert np.allclose(projector(W), np.array([[1, 2, 0], [2, 4, 0], [0, 0, 0]]) / 5, atol=1e-15)
    logits = W @ semantic_bases(W)[0]
    assert np.allclose(logits, [0.2, 0.4, 0.0], atol=1e-15) and int(np.argmax(logits)) == 1


def test_vds_bias_shifts_every_basis_by_the_same_vector():
    rs = np.random.default_rng(2)
    W, b = rs.standard_normal((12, 4)), rs.standard_normal(12)
    for method in ("gram", "pinv"):
        shifted = semantic_bases(W, [0, 3], method=method, b=b, bias_in_bases=True)
        e = np.eye(12)[[0, 3]]
        expected = (np.linalg.pinv(W) @ (e - b).T).T
        assert np.max(np.abs(shifted - expected)) <= 1e-10


def test_vds_cosine_logits_match_the_definition_and_clamp():
    rs = np.random.default_rng(3)
    U, S = rs.standard_normal((5, 4)), rs.standard_normal((3, 4))
    C, _ = cosine_forward(U, S)
    ref = (U / np.linalg.norm(U, axis=1, keepdims=True)) @ (S / np.linalg.norm(S, axis=1, keepdims=True)).T
    assert np.allclose(C, ref, atol=1e-15) and np.all(np.abs(C) <= 1)
    C0, _ = cosine_forward(np.zeros((1, 4)), S)
    assert np.all(C0 == 0)  # ‖u‖ clamped at ε: the zero vector has zero cosines, not NaN


def test_vds_flops_match_the_paper():
    assert flops_per_logits("sm", 128_256, 4_096) == 3_152_019_456
    assert flops_per_logits("mm", 128_256, 4_096) == 1_050_673_152
    assert flops_per_logits("sm_gt", 128_256, 4_096) == 24_576


def test_vds_bad_heads_and_label_ids_are_one_line_errors():
    W = np.random.default_rng(4).standard_normal((10, 4))
    for bad, match in (([], "non-empty"), ([1, 1], "share the label token"), ([10], "outside"), ([-1], "outside"),
                       ([0.5], "integers")):
        with pytest.raises(ConfigError, match=match):
            check_label_ids(bad, 10)
    with pytest.raises(ConfigError, match="does not match"):
        check_head(W, 5)
    with pytest.raises(ConfigError, match="≤ d"):
        check_head(W[:4])
    assert "4d" in check_head(W) and check_head(np.ones((17, 4))) == ""
    with pytest.raises(ConfigError, match="NaN"):
        check_head(np.full((10, 2), np.nan))
