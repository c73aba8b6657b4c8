"""LOC layouts: A1 on toy-world tokens reproduces the generator's ground truth; text blocks; trainer batches."""

from __future__ import annotations

import numpy as np
import pytest

from reference.config import ToyWorldConfig
from reference.data.toyworld import ToyWorld, pointer_mask, preset_config
from reference.mechanisms.locality import (
    LocalityConfig,
    batch_layout,
    text_blocks,
    toy_fields_from_tokens,
    toy_layout,
    toy_layout_from_tokens,
)
from reference.train import Batch, shift_targets

WORLDS = {
    "locality_sweep": preset_config("locality_sweep"),
    "locality_tiny": preset_config("locality_tiny"),
    "two anchors, three templates, tails": ToyWorldConfig(
        context=96, rules_per_doc=3, queries_per_doc=5, anchor_copies=2, rule_templates=3, label_tail_prob=0.5
    ),
}


@pytest.mark.parametrize("name", list(WORLDS))
def test_locality_a1_on_tokens_reproduces_the_toy_world_fields(name):
    world = ToyWorld(WORLDS[name])
    docs = world.documents(64, data_seed=3, split="heldout")
    fields = toy_fields_from_tokens(docs.tokens, world)
    assert np.array_equal(fields.block_id, docs.block_id)
    assert np.array_equal(fields.target_block, docs.target_block)
    assert np.array_equal(fields.rule_row, docs.rule_row)
    assert np.array_equal(fields.value_pos, docs.value_pos)
    anchors = np.isin(docs.tokens, world.anchor_ids)
    for kind in ("value", "anchor", "block"):
        mask = pointer_mask(kind, *fields, world.config.anchor_copies)
        assert np.array_equal(mask, docs.pointer_mask(kind)), kind
    # the anchor targets are exactly the anchor tokens of each rule row's block
    in_block = docs.rule_row[:, :, None] & (fields.block_id[:, None, :] == fields.target_block[:, :, None])
    assert np.array_equal(pointer_mask("anchor", *fields, world.config.anchor_copies), in_block & anchors[:, None, :])
    assert docs.rule_row.sum() > 64 * 2  # the check is not vacuous


@pytest.mark.parametrize("pointer_target", ["value", "anchor", "block"])
def test_locality_layouts_from_tokens_and_from_ground_truth_agree(pointer_target):
    world = ToyWorld(preset_config("locality_tiny"))
    docs = world.documents(16, data_seed=0)
    cfg = LocalityConfig(pointer_target=pointer_target)
    a, b = toy_layout(docs, cfg), toy_layout_from_tokens(docs.tokens, world, cfg)
    for field in ("block_id", "target_block", "rule_row", "pointer_mask", "off", "kcount"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_locality_training_batch_layout_covers_the_inputs_positions():
    """The model reads tokens[:, :T−1]: the layout is sliced to match, rule rows keep their targets."""
    world = ToyWorld(preset_config("locality_tiny"))
    docs = world.documents(8, data_seed=1)
    batch = Batch(*shift_targets(docs.tokens, docs.valid), docs)
    layout = batch_layout(batch)
    assert layout.shape == batch.inputs.shape
    assert np.array_equal(layout.rule_row, docs.rule_row[:, :-1])
    rows = np.argwhere(layout.rule_row)
    # a rule row predicts its value: the next token is the value its pointer target holds
    for s, i in rows:
        (target,) = np.flatnonzero(layout.pointer_mask[s, i])
        assert batch.targets[s, i] == batch.inputs[s, target]
    free = ~layout.rule_row
    assert np.array_equal(layout.target_block[free], layout.block_id[free])  # own-block free rows


def test_locality_text_blocks_split_after_sentence_ends_and_at_64():
    text = b"Hi. Yes!\nab" + b"x" * 70 + b"?z"
    ids = np.frombuffer(text, dtype=np.uint8).astype(np.int64)[None]
    blocks = text_blocks(ids)[0]
    starts = np.flatnonzero(np.r_[True, np.diff(blocks) > 0])
    assert list(starts[:4]) == [0, 3, 8, 9]  # after ".", "!", "\n"
    assert np.bincount(blocks).max() <= 64
    assert blocks[-1] == blocks[-2] + 1  # a new block after "?"
