"""``clearform neurons analyze`` on a fresh toy-world model: schema (H6), determinism, workers, the hook-planted
neuron (H5), the figures, and one-line errors (exit 2) for every bad input of spec §2.4 and §2.10."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_harness import run_cli

from reference.checkpoint import save_weights
from reference.config import ConfigError
from reference.data.toyworld import ToyWorld
from reference.mechanisms.neurons import NeuronsConfig
from reference.mechanisms.neurons.experiment import run_analysis, train_run_config
from reference.mechanisms.neurons.layer import NEURON_KEYS, ROW_KEYS, TOP_KEYS
from reference.model import init_params

FAST = ["--corpus-tokens", "3000", "--permutations", "19", "--max-neurons", "12", "--bootstrap", "100",
        "--sign-flips", "99", "--quiet"]
PAIR_KEYS = ("layer_from", "layer_to", "target", "neuron", "role", "rank", "weight", "zone_counts", "enrichment", "p_enrich",
             "enrich_top", "p_top", "q_top", "pref")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("neu_model")
    run = train_run_config(0, 10)
    save_weights(folder, init_params(run.model, 0), run)
    return folder


@pytest.fixture(scope="module")
def analysed(ckpt, tmp_path_factory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("neu_out")
    code, stdout, stderr, _ = run_cli(["neurons", "analyze", "--ckpt", str(ckpt), "--out", str(out), *FAST], limit=120)
    assert code == 0, stderr
    return out, json.loads((out / "neurons.json").read_text()), stdout


def test_neurons_json_schema_is_the_spec(analysed):
    out, data, _ = analysed
    b = 19
    assert list(data) == ["meta", "rows", "neurons", "skipped", "layers", "next_layer"]
    assert all(list(r) == list(ROW_KEYS) for r in data["rows"])
    assert all(list(n) == list(NEURON_KEYS) for n in data["neurons"])
    assert all(set(s) == {"layer", "neuron", "reason"} for s in data["skipped"])
    k = data["meta"]["K"]
    for n in data["neurons"]:
        zones = [r for r in data["rows"] if (r["layer"], r["neuron"]) == (n["layer"], n["neuron"])]
        assert [r["zone"] for r in zones] == [0, 1, 2, 3] and sum(r["n_tokens"] for r in zones) == k == n["K"]
    for r in data["rows"]:
        assert r["association"] is None or r["association"] <= 1 + 1e-12
        for key in ("p_value", "p_cramers_v", "p_nmi", "p_ari", "p_cos"):
            assert r[key] is None or 1 / (b + 1) <= r[key] <= 1
    for n in data["neurons"]:
        for key in ("p_value", "p_nmi", "p_cramers_v", "p_ari", "p_delta_top_bottom", "p_delta_top_rest", "p_eta2"):
            assert n[key] is None or 1 / (b + 1) <= n[key] <= 1
    assert [s["layer"] for s in data["layers"]] == [0, 1, "all"]
    for s in data["layers"]:
        assert list(s["top_vs_bottom"]) == list(TOP_KEYS)
        assert {f["id"] for f in s["flags"]} >= {"S1", "S2", "S3", "S4", "S8"}
    assert {f["id"] for f in data["layers"][-1]["flags"]} >= {"S5", "S6"}
    nl = data["next_layer"]
    assert set(nl) == {"pairs", "targets", "summary"} and nl["pairs"]
    assert all(list(p) == list(PAIR_KEYS) for p in nl["pairs"])
    for key in ("version", "source", "model", "config", "category_source", "category_names", "N", "K", "corpus_positions"):
        assert key in data["meta"]
    assert data["meta"]["category_source"] == "truth" and data["meta"]["model"]["norm"] == "pre"
    for name in ("neurons_hist_L0.png", "neurons_hist_L1.png", "neurons_zones.png", "neurons_next.png"):
        assert (out / name).stat().st_size > 1000


def test_neurons_printed_table_has_verdicts_and_flags(analysed):
    _, data, stdout = analysed
    for s in data["layers"]:
        verdict = s["top_vs_bottom"]["verdict"]
        line = next(ln for ln in stdout.splitlines() if ln.startswith(f"layer {s['layer']}: zone 0"))
        assert line.endswith({"holds": "holds", "does not hold": "does not hold", "undetermined": "(n < 5)"}[verdict])
        assert f"n = {s['top_vs_bottom']['n']}" in line
    assert "S1" in stdout and "S5" in stdout


def test_neurons_json_is_byte_identical_for_equal_seeds_and_workers(ckpt, analysed, tmp_path):
    out, data, _ = analysed
    code, _, stderr, _ = run_cli(["neurons", "analyze", "--ckpt", str(ckpt), "--out", str(tmp_path / "b"), *FAST,
                                  "--workers", "2", "--no-plots"], limit=180)
    assert code == 0, stderr
    assert (tmp_path / "b" / "neurons.json").read_bytes() == (out / "neurons.json").read_bytes().replace(
        b'"plots":true', b'"plots":false')


def test_neurons_another_seed_changes_only_pvalues():
    """H6 on fixed activations (a toy-world run's seed also draws its corpus, data seed = seed + 10,000)."""
    from reference.mechanisms.neurons import analyze_arrays

    rs = np.random.default_rng(5)
    cats = rs.integers(0, 5, 300)
    abar = rs.standard_normal((300, 6)) + 0.4 * (cats[:, None] == np.arange(6) % 5)
    emb = rs.standard_normal((300, 8))
    runs = [analyze_arrays(abar, cats, emb, cfg=NeuronsConfig(seed=s, permutations=99)) for s in (0, 1)]
    keep = ("association", "homog_cat", "homog_ent", "purity", "cramers_v", "nmi", "ari", "homog_cos", "n_tokens",
            "majority_category", "neuron_nmi")
    for r, s in zip(runs[0]["rows"], runs[1]["rows"]):
        assert all(r[k] == s[k] or (r[k] != r[k] and s[k] != s[k]) for k in keep)
    for a, b in zip(runs[0]["neurons"], runs[1]["neurons"]):
        assert all(a[k] == b[k] for k in ("chi2", "mi", "nmi", "hom", "ari", "delta_top_bottom", "eta2", "interleave"))
    assert any(r["p_value"] != s["p_value"] for r, s in zip(runs[0]["rows"], runs[1]["rows"]))
    assert runs[0]["layers"][0]["zones"][0]["mean_association"] == runs[1]["layers"][0]["zones"][0]["mean_association"]
    assert runs[0]["layers"][0]["top_vs_bottom"]["ci_low"] != runs[1]["layers"][0]["top_vs_bottom"]["ci_low"]


def test_neurons_hook_planted_neuron_meets_h1(ckpt, tmp_path):
    world = ToyWorld(train_run_config(0, 10).toyworld)
    cat = np.asarray(world.token_category)
    k_t = int(cat.max()) + 1

    def replace_for(tokens):
        c = cat[tokens]
        planted = np.where(c >= 0, k_t - c, -1).astype(np.float64)

        def hook(value):
            value = np.array(value, copy=True)
            value[..., 0] = planted
            return value

        return {"blocks.0.mlp.post": hook}

    cfg = NeuronsConfig(layers=(0,), neurons=(0,), zone_mode="value", zones=k_t, core_fraction=1.0, core_size=10**5,
                        corpus_tokens=3000, permutations=19, next_layer=False, plots=False, bootstrap=100, sign_flips=99)
    data = run_analysis(cfg, tmp_path, ckpt=str(ckpt), progress=False, log=None, replace_for=replace_for)
    assert data["meta"]["K"] == data["meta"]["N"] and len(data["meta"]["categories_present"]) == k_t
    rows = data["rows"]
    assert len(rows) == k_t
    for r in rows:
        for key in ("association", "homog_cat", "purity", "cramers_v", "nmi", "ari"):
            assert abs(r[key] - 1) <= 1e-12, (r["zone"], key)
    n = data["neurons"][0]
    assert all(abs(n[key] - 1) <= 1e-12 for key in ("cramers_v", "nmi", "ari", "hom", "com"))


@pytest.mark.parametrize("extra, field", [
    (["--zone-mode", "quantile"], "neurons.zone_mode"),
    (["--zones", "1"], "neurons.zones"),
    (["--permutations", "5"], "neurons.permutations"),
    (["--alpha", "1.5"], "neurons.alpha"),
    (["--layers", "7"], "neurons.layers"),
    (["--neurons", "999999"], "neurons.neurons"),
    (["--core-size", "4"], "neurons.core_size"),
    (["--layers", "a,b"], "--layers"),
    (["--categories", "file"], "neurons.categories"),
    (["--pretrained", "gpt9"], "--pretrained"),
    (["--pretrained", "minilm"], "--ckpt and --pretrained"),
    (["--workers", "0"], "--workers"),
])
def test_neurons_bad_input_is_one_line_exit_2(ckpt, tmp_path, extra, field):
    code, stdout, stderr, _ = run_cli(["neurons", "analyze", "--ckpt", str(ckpt), "--out", str(tmp_path / "x"), *FAST,
                                       *extra], limit=60)
    assert code == 2, (stdout, stderr)
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in stderr, stderr


def test_neurons_category_file_errors(ckpt, tmp_path):
    words = ToyWorld(train_run_config(0, 10).toyworld).vocab
    content = [w for w in words if w[:1].isalpha() and w[-1:].isdigit() or w.startswith("animal")][:4]
    bad = tmp_path / "dup.tsv"
    bad.write_text(f"# comment\n{content[0]}\tA\n\n{content[0]}\tB\n")
    code, _, stderr, _ = run_cli(["neurons", "analyze", "--ckpt", str(ckpt), "--out", str(tmp_path / "o"), *FAST,
                                  "--category-file", str(bad)], limit=60)
    assert code == 2 and "neurons.category_file" in stderr and "line 4" in stderr
    one = tmp_path / "one.tsv"
    one.write_text(f"{content[0]}\tA\n{content[1]}\tA\n")
    code, _, stderr, _ = run_cli(["neurons", "analyze", "--ckpt", str(ckpt), "--out", str(tmp_path / "o2"), *FAST,
                                  "--category-file", str(one)], limit=60)
    assert code == 2 and "fewer than 2 categories" in stderr
    code, _, stderr, _ = run_cli(["neurons", "analyze", "--ckpt", str(ckpt), "--out", str(tmp_path / "o3"), *FAST,
                                  "--category-file", str(tmp_path / "missing.tsv")], limit=60)
    assert code == 2 and "category_file" in stderr


def test_neurons_config_section_validates():
    with pytest.raises(ConfigError, match=r"neurons.zone_mode: 'quantile' is not one of 'rank' \| 'value'"):
        NeuronsConfig(zone_mode="quantile")
    with pytest.raises(ConfigError, match="neurons.tie_rtol"):
        NeuronsConfig(tie_rtol=1e-3)
    assert NeuronsConfig.from_dict(NeuronsConfig().to_dict()) == NeuronsConfig()


def test_neurons_text_file_replaces_the_toy_corpus(ckpt, tmp_path):
    world = ToyWorld(train_run_config(0, 10).toyworld)
    docs = world.documents(40, data_seed=3)
    words = " ".join(world.vocab[t] for row, ok in zip(docs.tokens, docs.valid) for t in row[ok])
    text = tmp_path / "toy.txt"
    text.write_text(words + "\n")
    cfg = NeuronsConfig(corpus_tokens=1000, min_count=1, permutations=19, max_neurons=4, plots=False, next_layer=False,
                        bootstrap=100, sign_flips=99)
    data = run_analysis(cfg, tmp_path / "o", ckpt=str(ckpt), text=str(text), progress=False, log=None)
    assert data["meta"]["corpus_positions"] == 1000 and "text_sha256" in data["meta"]["corpus"]
    bad = tmp_path / "bad.txt"
    bad.write_text("zebra quux\n")
    with pytest.raises(ConfigError, match="unknown word"):
        run_analysis(cfg, tmp_path / "o2", ckpt=str(ckpt), text=str(bad), progress=False, log=None)


def test_neurons_cluster_categories_and_own_category(ckpt, tmp_path):
    base = dict(corpus_tokens=3000, permutations=19, max_neurons=4, plots=False, next_layer=False, bootstrap=100,
                sign_flips=99)
    data = run_analysis(NeuronsConfig(categories="cluster", n_clusters=5, **base), tmp_path / "c", ckpt=str(ckpt),
                        progress=False, log=None)
    assert data["meta"]["category_source"] == "cluster" and data["meta"]["caveat"]
    assert data["meta"]["categories_present"] == [0, 1, 2, 3, 4]
    own = run_analysis(NeuronsConfig(uncategorised="own", **base), tmp_path / "o", ckpt=str(ckpt), progress=False,
                       log=None)
    truth = run_analysis(NeuronsConfig(**base), tmp_path / "t", ckpt=str(ckpt), progress=False, log=None)
    assert own["meta"]["category_names"][-1] == "(none)" and own["meta"]["N"] > truth["meta"]["N"]
    with pytest.raises(ConfigError, match="cluster_scope"):
        run_analysis(NeuronsConfig(categories="cluster", cluster_scope="core", **base), tmp_path / "x", ckpt=str(ckpt),
                     progress=False, log=None)
