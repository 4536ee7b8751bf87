"""The one place a composed config becomes a pipeline: `read_config` turns it into typed stage configs (each error
names its key, before any work), `build_chain` turns those into the chain over a corpus.

Every command (run, sweep, evaluate and search an export, `load_retriever`) goes through here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from omegaconf import DictConfig

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import ChunkerConfig, chunk_corpus, chunker_config
from retrieval_lab.chunking.tokens import from_hf
from retrieval_lab.chunking.units import UnitConfig, unit_spans
from retrieval_lab.config import check_choice, typed
from retrieval_lab.data.folder import ON_ERROR
from retrieval_lab.dense import dense_stage
from retrieval_lab.errors import ConfigError, LabError
from retrieval_lab.evaluate import METRICS
from retrieval_lab.fusion import FusionConfig, hybrid_nodes, hybrid_settings
from retrieval_lab.pipeline.chain import (Chain, DocumentsStep, FirstStage, FirstStageStep, FusionStep, RerankStep,
                                          UnitsStep)
from retrieval_lab.pipeline.trace import STAGE_LABELS
from retrieval_lab.pipeline.migrate import reject_renamed_keys
from retrieval_lab.rerank import RerankerConfig, make_scorer, reranker_config
from retrieval_lab.sparse import BM25, BM25Config
from retrieval_lab.types import Corpus


def bm25_stage(node: DictConfig, cfg: DictConfig, cache: Cache, prefix: str) -> FirstStage:
    config = typed(BM25Config, node, prefix, ignore=("name",))
    config.validate(prefix)
    return BM25(config)


# name -> factory(stage config node, whole config, cache, config key prefix); the dense factory reads the top-level
# `embedder` / `index` groups unless its node has its own
FIRST_STAGES: dict[str, Callable[..., FirstStage]] = {"bm25": bm25_stage, "dense": dense_stage}


@dataclass(frozen=True)
class EvalSettings:
    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    k: list[int] = field(default_factory=lambda: [1, 3, 5, 10, 100])
    depth: int = 100  # documents retrieved per query

    def validate(self) -> None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ConfigError("eval.metrics", f"unknown metric(s) {unknown}", f"use any of {', '.join(METRICS)}")
        if not self.k or any(k <= 0 for k in self.k):
            raise ConfigError("eval.k", f"every cutoff must be a positive integer, got {self.k}")
        if self.depth < max(self.k):
            raise ConfigError("eval.depth", f"{self.depth} is below the largest cutoff {max(self.k)}",
                              f"set eval.depth >= {max(self.k)}")


@dataclass(frozen=True)
class FirstStageSpec:
    key: str  # config key of its node: `retriever`, or `retriever.inputs.<label>` in a hybrid
    label: str  # its name in traces and metrics: the stage name, or the hybrid input's label
    node: Any


@dataclass(frozen=True)
class PipelineConfig:
    """Every stage's typed config, read once from the composed config."""

    chunker_name: str
    chunker: ChunkerConfig
    first_stages: list[FirstStageSpec]
    fusion: FusionConfig | None
    first_stage_depth: int | None
    reranker: RerankerConfig
    unit: UnitConfig
    eval: EvalSettings
    ignore_identical_ids: bool
    cache_dir: str | None
    cache_enabled: bool


def first_stage_specs(cfg: DictConfig) -> list[FirstStageSpec]:
    name = cfg.retriever.get("name")
    if name in FIRST_STAGES:
        return [FirstStageSpec("retriever", name, cfg.retriever)]
    if name == "hybrid":
        specs = [FirstStageSpec(key, key.rsplit(".", 1)[-1], node) for key, node in hybrid_nodes(cfg.retriever,
                                                                                                  FIRST_STAGES)]
        for spec in specs:  # an input's label names its run in the trace, beside the later stages'
            if spec.label in STAGE_LABELS:
                raise ConfigError(spec.key, f"'{spec.label}' names a stage of the chain",
                                  f"rename the input (reserved: {', '.join(STAGE_LABELS)})")
        return specs
    check_choice("retriever.name", name, [*FIRST_STAGES, "hybrid"])
    raise AssertionError("unreachable")


def read_config(cfg: DictConfig) -> PipelineConfig:
    """Typed stage configs; raises `ConfigError` naming the key for anything invalid (no data is loaded)."""
    reject_renamed_keys(cfg)  # an old stage key (fusion `method`, reranker `type`): the error names the new one
    settings = typed(EvalSettings, cfg.get("eval") or {}, "eval")
    settings.validate()
    chunker_name, chunker = chunker_config(cfg.get("chunker") or {"name": "none"})
    specs = first_stage_specs(cfg)
    fusion, first_stage_depth = hybrid_settings(cfg.retriever, len(specs))
    reranker = reranker_config(cfg.get("reranker") or {"name": "none"})
    unit = typed(UnitConfig, cfg.get("unit") or {}, "unit")
    unit.validate()
    if not cfg.dataset.get("split"):
        raise ConfigError("dataset.split", "missing", "set dataset.split=test (or train, dev)")
    check_choice("dataset.on_error", cfg.dataset.get("on_error") or "skip", ON_ERROR)
    cache = cfg.get("cache") or {}
    return PipelineConfig(chunker_name, chunker, specs, fusion, first_stage_depth, reranker, unit, settings,
                          bool(cfg.dataset.get("ignore_identical_ids", False)), cache.get("dir"),
                          bool(cache.get("enabled", True)))


def first_stages(cfg: DictConfig, settings: PipelineConfig, cache: Cache) -> list[FirstStage]:
    """Every first stage, built without data: model files are found and hashed, none loaded."""
    return [FIRST_STAGES[spec.node.name](spec.node, cfg, cache, spec.key) for spec in settings.first_stages]


def cache_for(settings: PipelineConfig) -> Cache:
    return Cache(settings.cache_dir, enabled=settings.cache_enabled)


def validate(cfg: DictConfig) -> PipelineConfig:
    """`read_config` and `first_stages`: every error a config can hold, before any data is read."""
    settings = read_config(cfg)
    first_stages(cfg, settings, Cache(enabled=False))
    return settings


def unused_config_groups(cfg: DictConfig) -> set[str]:
    """Top-level groups (`embedder`, `index`) no first stage reads: left out of logged params, so a BM25 run does
    not show a MiniLM embedder it never used."""
    try:
        specs = first_stage_specs(cfg)
    except LabError:
        return set()
    used = {group for spec in specs if spec.node.get("name") == "dense"
            for group in ("embedder", "index") if spec.node.get(group) is None}
    return {"embedder", "index"} - used


def embedder_tokens(stages: list[FirstStage]):
    """The first dense stage's tokenizer as a token counter (`chunker.tokenizer: embedder`), else None; it reads
    the tokenizer files only, never loads the model."""
    for stage in stages:
        tokenizer = getattr(stage, "tokenizer", None)
        if tokenizer is not None:
            return from_hf(tokenizer)
    return None


def build_chain(cfg: DictConfig, corpus: Corpus, cache: Cache | None = None, settings: PipelineConfig | None = None,
                stages: list[FirstStage] | None = None) -> Chain:
    """The chain over `corpus`; `settings` and `stages` when the caller already read and built them."""
    settings = settings or read_config(cfg)
    cache = cache or cache_for(settings)
    stages = stages or first_stages(cfg, settings, cache)
    tokens = embedder_tokens(stages) if settings.chunker.tokenizer == "embedder" else None
    passages = chunk_corpus(settings.chunker_name, settings.chunker, corpus, cache, tokens)
    steps = [FirstStageStep(spec.label, stage, cache) for spec, stage in zip(settings.first_stages, stages)]
    fusion = FusionStep(settings.fusion) if settings.fusion else None
    rerank = RerankStep(settings.reranker, make_scorer(settings.reranker, cache.root, cache.enabled)) \
        if settings.reranker.active else None
    documents = DocumentsStep(settings.chunker.aggregate, settings.ignore_identical_ids)
    units = UnitsStep(passages, *unit_spans(passages, corpus, settings.unit))
    return Chain(corpus, passages, steps, fusion, rerank, documents, units, settings.first_stage_depth)
