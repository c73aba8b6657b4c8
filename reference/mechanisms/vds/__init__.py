"""VDS — vocabulary-defined semantics (specs/02-vocab-semantics.md; arXiv 2401.16184, Gu et al.).

The LM head W (V, d) fixes a reference frame in the latent space: the *semantic basis* of
token i is s_i = W⁺e_i, the least-squares pre-image of the one-hot logits e_i
[paper-v6 §3.1]. Logits computed as cosines between a representation and the bases of the
label tokens (*similarity logits*, [paper-v6 §3.2]) stand in for LM-head logits; a small
*neural clustering module* λ (channel attention → MLP → LayerNorm, [paper-v6 §3.3]),
trained on frozen last-token representations, pulls each class towards its label's basis.
The paper states no theorem: every identity here (the Gram formula S = W G⁺, z = S G h,
the head-metric cosine, …) and every exact choice is [reconstructed], labelled where made.

One file per part of the spec:

* ``config.py`` — the ``vds`` config section (§2.6): :class:`VDSConfig`.
* ``bases.py`` — A1 semantic bases (pinv and the Gram formula), leverage, the G relation (§2.4).
* ``similarity.py`` — A2 similarity logits (cosine and head-metric cosine), with backward.
* ``clustering.py`` — A4 the module λ: init, forward, hand-written backward, size (§2.5).
* ``losses.py`` — the clustering losses ``sm``, ``mm``, ``sm_gt``, x-exp, code-faithful, with backward.
* ``measures.py`` — accuracy, macro-F1, ARI, Spearman, cosine / KL kNN (§5.2).
* ``adapt.py`` — A3 representations, A5 training of λ, A6 the four methods' predictions, label tokens.
* ``evaluate.py`` — one (task, seed) job of the evaluation, the checks H1–H3, H5, S1–S6 (§5.3).
* ``imported.py`` — A8 on a Hugging Face GPT-2 / BERT directory; the seeded English topic set.
* ``experiment.py`` — A7 ``clearform vds eval`` on the toy world: jobs, checks H1–H5, S1–S6,
  table, files, demo section. The only file that imports the trainer and the report helpers.
* ``cli.py`` — ``clearform vds eval``.
* ``golden.py`` — golden cases of the bases, logits, λ and losses.

Its theorems are in ``proofs/vds/`` (VDS-1 … VDS-9 = the spec's VDS-P1 … P9), its tests in
``tests/test_vds_*.py``, its documentation in ``docs/vds.md``.
"""

from reference.mechanisms.vds.adapt import (
    METHODS,
    ClusteringDiverged,
    Representations,
    anchors_for,
    apply_lambda,
    head_of,
    label_token_ids,
    lm_head_predict,
    pool_states,
    predict_all,
    representations,
    similarity_predict,
    train_lambda,
)
from reference.mechanisms.vds.bases import (
    check_head,
    check_label_ids,
    condition_on_range,
    dots_as_head_logits,
    flops_per_logits,
    gram,
    gram_sqrt,
    head_diagnostics,
    leverage,
    logits_from_bases,
    numeric_rank,
    pinv_svd,
    pinv_sym,
    projector,
    semantic_bases,
)
from reference.mechanisms.vds.clustering import (
    PARAM_NAMES,
    init_lambda,
    lambda_backward,
    lambda_forward,
    lambda_shapes,
    lambda_size,
)
from reference.mechanisms.vds.config import VDSConfig
from reference.mechanisms.vds.losses import cluster_loss, cluster_loss_backward
from reference.mechanisms.vds.measures import (
    accuracy,
    adjusted_rand_index,
    knn_kl_predict,
    knn_predict,
    macro_f1,
    spearman_rows,
    vote,
)
from reference.mechanisms.vds.similarity import (
    cosine_backward,
    cosine_forward,
    head_cosine,
    log_softmax,
    normalize_backward,
    normalize_forward,
    similarity_logits,
    softmax,
)

__all__ = [
    "METHODS", "PARAM_NAMES", "ClusteringDiverged", "Representations", "VDSConfig", "accuracy", "adjusted_rand_index",
    "anchors_for", "apply_lambda", "check_head", "check_label_ids", "cluster_loss", "cluster_loss_backward",
    "condition_on_range", "cosine_backward", "cosine_forward", "dots_as_head_logits", "flops_per_logits", "gram",
    "gram_sqrt", "head_cosine", "head_diagnostics", "head_of", "init_lambda", "knn_kl_predict", "label_token_ids", "knn_predict",
    "lambda_backward", "lambda_forward", "lambda_shapes", "lambda_size", "leverage", "lm_head_predict", "log_softmax",
    "logits_from_bases", "macro_f1", "normalize_backward", "normalize_forward", "numeric_rank", "pinv_svd", "pinv_sym",
    "pool_states", "predict_all", "projector", "representations", "semantic_bases", "similarity_logits",
    "similarity_predict", "softmax", "spearman_rows", "train_lambda", "vote",
]
