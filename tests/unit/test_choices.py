"""Every option that takes one of a fixed set of values is checked, by one mechanism (`config.check_choice`), before
any work: the test walks every option of every config group of a run, tries an invalid value for each such key,
and expects an error naming the key and every allowed value. A string key of a config group that is neither
checked nor listed here as free text fails the test: a new key must be classified."""
from __future__ import annotations

import fnmatch

import pytest
from omegaconf import OmegaConf

from retrieval_lab.config import check_choice, compose_config, run_config_groups
from retrieval_lab.errors import ConfigError
from retrieval_lab.paths import conf_dir
from retrieval_lab.pipeline import validate

# key pattern -> the allowed values its error must name
FIXED = {
    "dataset.on_error": ["skip", "fail"],
    "chunker.name": ["none", "fixed_tokens", "sentences", "recursive", "semantic"],
    "chunker.aggregate": ["max", "sum", "first"],
    "chunker.encoder": ["wordllama"],
    "retriever.name": ["bm25", "dense", "hybrid"],
    "retriever.backend": ["bm25s", "rank_bm25"],
    "retriever.variant": ["lucene", "robertson", "atire", "bm25l", "bm25+"],
    "retriever.tokenizer.stopwords": ["en", "en_plus", "null"],
    "retriever.tokenizer.stemmer": ["english", "porter", "null"],
    "retriever.fusion.name": ["convex", "rrf"],
    "retriever.fusion.normalization": ["minmax", "zscore", "max", "sum", "rank"],
    "retriever.inputs.*.name": ["bm25", "dense"],
    "retriever.inputs.*.backend": ["bm25s", "rank_bm25"],
    "retriever.inputs.*.variant": ["lucene", "robertson"],
    "retriever.inputs.*.tokenizer.stopwords": ["en", "en_plus"],
    "retriever.inputs.*.tokenizer.stemmer": ["english", "porter"],
    "embedder.backend": ["torch", "onnx", "static"],
    "index.name": ["flat", "hnsw", "ivf", "ivfpq"],
    "reranker.name": ["none", "cross_encoder"],
    "reranker.backend": ["torch", "onnx", "onnx_int8"],
    "reranker.api": ["cohere", "tei"],
    "unit.name": ["chunk", "window", "section", "document"],
    "diversify.name": ["none", "mmr"],
    "diversify.relevance": ["score", "cosine"],
}
# Free text: names, paths, models, prefixes, patterns (their own checks say what is wrong with them)
FREE = ["dataset.name", "dataset.root", "dataset.path", "dataset.split", "dataset.questions", "dataset.url",
        "dataset.md5", "dataset.include", "dataset.own_path", "chunker.tokenizer", "retriever.tokenizer.pattern",
        "retriever.inputs.*.tokenizer.pattern", "embedder.name", "embedder.model", "embedder.query_prefix",
        "embedder.passage_prefix", "reranker.model", "tracking.*", "index.*"]
WRONG = "Not-A-Value"


def options() -> list[tuple[str, str]]:
    """(group, option) of every option of every config group of a run."""
    return [(group, path.stem) for group in run_config_groups()
            for path in sorted((conf_dir() / group).glob("*.yaml"))]


def string_leaves(node, prefix: str):
    for key, value in node.items():
        path = f"{prefix}.{key}"
        if isinstance(value, dict):
            yield from string_leaves(value, path)
        elif isinstance(value, str) or (value is None and _matches(path, FIXED)):
            yield path


def _matches(key: str, patterns) -> str | None:
    return next((p for p in patterns if fnmatch.fnmatchcase(key, p)), None)


def test_check_choice_names_every_allowed_value_and_the_closest():
    with pytest.raises(ConfigError) as err:
        check_choice("dataset.on_error", "Fail", ["skip", "fail"])
    assert str(err.value) == ("config key 'dataset.on_error': 'Fail' is not one of the allowed values: skip, fail\n"
                              "  fix: set dataset.on_error=fail")
    with pytest.raises(ConfigError, match="or null\n  fix: set x to one of: a, b or null"):
        check_choice("x", "zzz", ["a", "b"], nullable=True)
    assert check_choice("x", None, ["a"], nullable=True) is None


@pytest.mark.parametrize("group, option", options())
def test_every_fixed_set_key_of_every_option_rejects_an_invalid_value(group, option):
    base = [f"{group}={option}"]
    if group in ("embedder", "index"):  # read by a dense retriever only
        base.append("retriever=dense")
    cfg = compose_config(base)
    node = OmegaConf.to_container(cfg[group], resolve=True)
    checked = []
    for key in string_leaves(node, group):
        if _matches(key, FIXED) is None:
            assert _matches(key, FREE), f"{key} ({group}={option}) is neither checked as a fixed set nor free text"
            continue
        wrong = cfg.copy()
        OmegaConf.update(wrong, key, WRONG)
        with pytest.raises(ConfigError) as err:
            validate(wrong)
        message = str(err.value)
        assert err.value.key == key, message
        assert f"'{WRONG}' is not one of the allowed values" in message, message
        for value in FIXED[_matches(key, FIXED)]:
            assert value in message.split("fix:")[0], (value, message)
        checked.append(key)
    if group == "dataset":
        assert "dataset.on_error" in checked
