"""LOC — the locality dial (specs/00-localist.md). [reconstructed]

One number λ ∈ [0, 1] moves attention from *distributed* (λ = 0, the standard
transformer bit for bit) to *localist* (λ = 1: each row's attention gathers on its
semantically relevant block of keys) [paper-abstract 2510.09338; λ's orientation from
2511.03559]. Every formula in this package is the project's own reconstruction, consistent
with the papers' abstracts (the bodies were not available; no code of the author's was
used). It is built from standard ingredients only: additive attention biases, a group
lasso, softmax, entropic mirror descent.

One file per part of the spec, in the order of its algorithms (§3):

* ``config.py`` — the ``locality`` config section (§2.7): :class:`LocalityConfig`.
* ``layout.py`` — A1 layouts: :class:`Layout`, :func:`make_layout`, :func:`toy_layout`,
  :func:`toy_layout_from_tokens`, :func:`text_layout`.
* ``dial.py`` — A2 bias and per-layer schedules: :func:`locality_bias`, :func:`dial_kwargs`
  (λ as forward arguments: it never touches the parameters); A3 :func:`attention_rows`.
* ``penalty.py`` — A4 group penalty and A5 pointer loss, each with its backward;
  :func:`locality_loss` (a step's extra loss); :func:`group_prox` (LOC-T9).
* ``variational.py`` — A6 theory mode: :func:`variational_attention` (forward only).
* ``plugin.py`` — A7 training: :class:`LocalityPlugin` (dial dropout), :func:`plugin_for`.
* ``rules.py`` — A8: :func:`verify_rule`, :func:`inject`, :func:`hot_reload`, :func:`enforce`,
  :func:`generate_dialled`.
* ``bounds.py`` — closed forms and per-row bound checks (T4–T6) of evaluated attention.
* ``evaluate.py`` — :func:`evaluate_dial` (every §5 metric at one λ), the hot-reload probe.
* ``experiment.py`` — the λ sweep (§6): :func:`run_sweep`, its checks, table, plot, and the
  demo's section. The only file that imports the trainer and the report helpers.
* ``cli.py`` — ``clearform locality sweep``, built from :class:`SweepSettings`.

The math files (config … evaluate) import only the core. Its theorems are in
``proofs/locality/`` (LOC-1 … LOC-9), its tests in ``tests/test_locality_*.py``.

Shapes: B sequences, H heads, T positions (query rows and keys), NB blocks, L layers.
Patterns are (B, H, T, T); layouts are per sequence, shared by every head and layer.
Functions that may run under autograd or CuPy take their array namespace from their
inputs; layouts are host NumPy arrays.
"""

from reference.mechanisms.locality.bounds import (
    BOUND_RTOL,
    bias_dial_closed_form,
    block_max,
    entropy_rising_rows,
    row_bound_violations,
    rule_row_margins,
)
from reference.mechanisms.locality.config import (
    DIAL_HOOKS,
    LOC_GRID,
    LocalityConfig,
    check_lambda,
)
from reference.mechanisms.locality.dial import (
    attention_rows,
    dial_kwargs,
    layer_lambdas,
    layer_temperatures,
    locality_bias,
)
from reference.mechanisms.locality.evaluate import (
    E3_RTOL,
    ProbeBatch,
    evaluate_dial,
    layer0_closed_form_mismatches,
    reload_probe,
)
from reference.mechanisms.locality.experiment import (
    AILA,
    AILA_SOURCE,
    DEFAULT_SWEEP_STEPS,
    ROW_KEYS,
    ROW_MODES,
    SWEEP_KEYS,
    SWEEP_MODES,
    SWEEP_PRESETS,
    TABLE_METRICS,
    SweepResult,
    SweepSettings,
    aila_context,
    demo_section,
    plot_sweep,
    run_sweep,
    summarise_rows,
    summary_table,
    sweep_checks,
    sweep_eval_batches,
    sweep_run_config,
    write_sweep,
)
from reference.mechanisms.locality.layout import (
    TEXT_BLOCK_ENDS,
    TEXT_BLOCK_MAX,
    Layout,
    TokenFields,
    batch_layout,
    check_layout_matches,
    make_layout,
    text_blocks,
    text_layout,
    toy_fields_from_tokens,
    toy_layout,
    toy_layout_from_tokens,
)
from reference.mechanisms.locality.penalty import (
    PF_FLOOR,
    block_norms,
    block_weights,
    group_penalty,
    group_penalty_backward,
    group_prox,
    locality_loss,
    pointer_loss,
    pointer_loss_backward,
)
from reference.mechanisms.locality.plugin import (
    LocalityPlugin,
    plugin_for,
)
from reference.mechanisms.locality.rules import (
    RULE_FIELDS,
    Enforcement,
    Injection,
    anchor_surprisal_bits,
    enforce,
    generate_dialled,
    hot_reload,
    inject,
    rule_region_end,
    serialise_rules,
    template_entropy_bits,
    verify_rule,
)
from reference.mechanisms.locality.variational import (
    SolverError,
    VariationalResult,
    variational_attention,
    variational_forward,
)

__all__ = [
    "AILA",
    "AILA_SOURCE",
    "BOUND_RTOL",
    "DEFAULT_SWEEP_STEPS",
    "DIAL_HOOKS",
    "E3_RTOL",
    "Enforcement",
    "Injection",
    "LOC_GRID",
    "Layout",
    "LocalityConfig",
    "LocalityPlugin",
    "PF_FLOOR",
    "ProbeBatch",
    "ROW_KEYS",
    "ROW_MODES",
    "RULE_FIELDS",
    "SWEEP_KEYS",
    "SWEEP_MODES",
    "SWEEP_PRESETS",
    "SolverError",
    "SweepResult",
    "SweepSettings",
    "TABLE_METRICS",
    "TEXT_BLOCK_ENDS",
    "TEXT_BLOCK_MAX",
    "TokenFields",
    "VariationalResult",
    "aila_context",
    "anchor_surprisal_bits",
    "attention_rows",
    "batch_layout",
    "bias_dial_closed_form",
    "block_max",
    "block_norms",
    "block_weights",
    "check_lambda",
    "check_layout_matches",
    "demo_section",
    "dial_kwargs",
    "enforce",
    "entropy_rising_rows",
    "evaluate_dial",
    "generate_dialled",
    "group_penalty",
    "group_penalty_backward",
    "group_prox",
    "hot_reload",
    "inject",
    "layer0_closed_form_mismatches",
    "layer_lambdas",
    "layer_temperatures",
    "locality_bias",
    "locality_loss",
    "make_layout",
    "plot_sweep",
    "plugin_for",
    "pointer_loss",
    "pointer_loss_backward",
    "reload_probe",
    "row_bound_violations",
    "rule_region_end",
    "rule_row_margins",
    "run_sweep",
    "serialise_rules",
    "summarise_rows",
    "summary_table",
    "sweep_checks",
    "sweep_eval_batches",
    "sweep_run_config",
    "template_entropy_bits",
    "text_blocks",
    "text_layout",
    "toy_fields_from_tokens",
    "toy_layout",
    "toy_layout_from_tokens",
    "variational_attention",
    "variational_forward",
    "verify_rule",
    "write_sweep",
]
