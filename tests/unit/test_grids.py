"""The cross-validation grid (retrieval_lab/sweep/grids.py): its size per dataset as the docs quote it, names in the
order ties need, override lists that compose, and a clear error for a dataset without a grid."""
from __future__ import annotations

import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.errors import ConfigError
from retrieval_lab.sweep.grids import GRIDS, grid, three_way_weights


def test_grid_sizes_are_the_ones_the_benchmark_docs_quote():
    # benchmarks/cross_validate.py and experiments/README.md: 1,340 / 2,318 candidates, 3,474 with --rm3
    assert len(grid("arguana")) == 1340
    assert len(grid("cranfield")) == 2318
    assert len(grid("cranfield", rm3=True)) == 3474
    assert grid("arguana", rm3=True) == grid("arguana")  # no RM3 passages for ArguAna


def test_cheaper_families_come_first_and_rm3_variants_last():
    names = list(grid("cranfield", rm3=True))
    first_dense = names.index("dense wordllama")
    first_hybrid = next(i for i, n in enumerate(names) if "+" in n)
    assert all(n.startswith("bm25 k1=") for n in names[:first_dense]) and first_dense < first_hybrid
    rm3 = [i for i, n in enumerate(names) if n.startswith("rm3 ")]
    assert rm3 == list(range(len(names) - len(rm3), len(names)))
    assert not any(n.startswith("rm3 dense ") for n in names)  # a dense model alone has no BM25 to expand


def test_three_way_weights_are_a_simplex_with_a_minor_second_dense_input():
    weights = three_way_weights()
    assert len(weights) == len({tuple(w) for w in weights}) == 12
    for w in weights:
        assert abs(sum(w) - 1) < 1e-9 and w[2] in (0.1, 0.2) and min(w) >= 0.1


@pytest.mark.parametrize("name", ["bm25 k1=6.0 b=1.0", "dense minilm_l6@512",
                                  "bm25(3.0,1.0)+minilm_l6+minilm_l3 convex zscore [0.7, 0.2, 0.1]"])
def test_candidates_compose_to_what_their_names_say(name):
    cfg = compose_config(["dataset=arguana", *grid("arguana")[name]])
    if name.startswith("bm25 k1"):
        assert (cfg.retriever.name, cfg.retriever.k1, cfg.retriever.b) == ("bm25", 6.0, 1.0)
    elif name.startswith("dense"):
        assert (cfg.retriever.name, cfg.embedder.name, cfg.embedder.max_tokens) == ("dense", "minilm_l6", 512)
    else:
        inputs, fusion = cfg.retriever.inputs, cfg.retriever.fusion
        assert (inputs.bm25.k1, inputs.bm25.b, inputs.dense2.embedder.name) == (3.0, 1.0, "minilm_l3")
        assert (fusion.name, fusion.normalization, fusion.alpha, list(fusion.weights)) == \
            ("convex", "zscore", None, [0.7, 0.2, 0.1])


def test_a_dataset_without_a_grid_is_a_config_error_naming_those_that_have_one():
    with pytest.raises(ConfigError, match="no candidate grid for 'scifact'") as error:
        grid("scifact")
    assert all(name in str(error.value) for name in GRIDS)
    assert grid(sorted(GRIDS)[0])  # following the fix: a dataset it names
