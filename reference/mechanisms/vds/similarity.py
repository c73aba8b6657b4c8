"""Similarity logits (specs/02 §2.3, A2): cosines between representations and the semantic bases.

c_k = cos(u, s_{t_k}) = n̂(u)ᵀn̂(s_k), n̂(x) = x / max(‖x‖₂, ε) (PyTorch ``F.normalize``), softmax
with no scale or bias (τ = 1) [paper-v6 §3.2, Algorithm 1]. Cosines lie in [−1, 1] and ignore
‖u‖ (VDS-P6). ``metric="head"`` [reconstructed] is the cosine in the head's metric G = WᵀW:
c_k = uᵀG s_k / (√(uᵀGu)·√(s_kᵀGs_k)) = z_k / (‖z‖√ℓ_k) (VDS-P5).

Forward functions take their array namespace from their inputs (NumPy, autograd, CuPy);
each has a hand-written backward.
"""

from __future__ import annotations

from typing import Any

from reference.backend import namespace


def normalize_forward(x: Any, eps: float) -> tuple[Any, dict]:
    """n̂(x) = x / max(‖x‖₂, ε) row-wise: x (..., d) -> (..., d)."""
    xp = namespace(x)
    norm = xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True))
    clamped = xp.maximum(norm, eps)
    y = x / clamped
    return y, {"y": y, "clamped": clamped, "active": norm > eps}


def normalize_backward(cache: dict, dy: Any) -> Any:
    """dy (..., d) -> dx: (dy − n̂ (n̂·dy)) / ‖x‖ where ‖x‖ > ε, dy / ε where the clamp holds."""
    xp = namespace(dy)
    y, clamped = cache["y"], cache["clamped"]
    radial = xp.sum(y * dy, axis=-1, keepdims=True) * y * cache["active"]
    return (dy - radial) / clamped


def cosine_forward(U: Any, S: Any, eps: float = 1e-8) -> tuple[Any, dict]:
    """A2 (euclidean): C = n̂(U) n̂(S)ᵀ, U (B, d), S (K, d) -> C (B, K) in [−1, 1]."""
    nu, cu = normalize_forward(U, eps)
    ns, cs = normalize_forward(S, eps)
    return nu @ ns.T, {"nu": nu, "ns": ns, "cu": cu, "cs": cs}


def cosine_backward(cache: dict, dC: Any) -> tuple[Any, Any]:
    """dC (B, K) -> (dU (B, d), dS (K, d)).

    ∇_u cos(u, s) = (ŝ − cos·û)/‖u‖ (VDS-P7), through n̂'s backward.
    """
    d_nu = dC @ cache["ns"]
    d_ns = dC.T @ cache["nu"]
    return normalize_backward(cache["cu"], d_nu), normalize_backward(cache["cs"], d_ns)


def head_cosine(U: Any, S: Any, G: Any, eps: float = 1e-8) -> Any:
    """A2 (head) [reconstructed]: C = U G Sᵀ / (√diag(UGUᵀ) ⊗ √diag(SGSᵀ)), norms clamped at ε. (B, K)."""
    xp = namespace(U, S, G)
    ug, sg = U @ G, S @ G
    nu = xp.maximum(xp.sqrt(xp.maximum(xp.sum(ug * U, axis=-1), 0.0)), eps)
    ns = xp.maximum(xp.sqrt(xp.maximum(xp.sum(sg * S, axis=-1), 0.0)), eps)
    return (ug @ S.T) / (nu[:, None] * ns[None, :])


def similarity_logits(U: Any, S: Any, *, metric: str = "euclidean", G: Any = None, eps: float = 1e-8) -> Any:
    """A2: the similarity logits (B, K) of representations U (B, d) against bases S (K, d)."""
    if metric == "head":
        return head_cosine(U, S, G, eps)
    return cosine_forward(U, S, eps)[0]


def softmax(logits: Any, axis: int = -1) -> Any:
    """Stable softmax along ``axis``."""
    xp = namespace(logits)
    shifted = logits - xp.max(logits, axis=axis, keepdims=True)
    e = xp.exp(shifted)
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(logits: Any, axis: int = -1) -> Any:
    """Stable log-softmax along ``axis``."""
    xp = namespace(logits)
    shifted = logits - xp.max(logits, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
