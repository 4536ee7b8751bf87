"""The one place a composed config becomes a pipeline: `read_config` turns it into typed step configs (each error
names its key, before any work), `build_chain` turns those into the chain of steps over a corpus.

Every command (run, sweep, evaluate and search an export, `load_retriever`) goes through here. Two tables say what
a chain can hold: `FIRST_STAGES` (retriever name -> how to read its node and make its searcher) and `STEPS` (the
steps after the first stages, in chain order: label -> how to read its config and make the step). Adding a step is
its module, its config group, one `STEPS` entry and tests (`pipeline.step` shows how).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from omegaconf import DictConfig

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import ChunkerConfig, Passages, chunk_corpus, chunker_config
from retrieval_lab.chunking.tokens import from_hf
from retrieval_lab.chunking.units import UnitConfig, unit_spans
from retrieval_lab.config import check_choice, typed
from retrieval_lab.data.folder import ON_ERROR
from retrieval_lab.dense import DenseConfig, dense_config, dense_stage
from retrieval_lab.errors import ConfigError, LabError
from retrieval_lab.evaluate import METRICS
from retrieval_lab.fusion import FusionConfig, hybrid_nodes, hybrid_settings
from retrieval_lab.pipeline.chain import Chain
from retrieval_lab.pipeline.step import Step
from retrieval_lab.pipeline.steps import (DocumentsStep, FirstStage, FirstStageStep, FusionStep, RerankStep,
                                          UnitsStep)
from retrieval_lab.pipeline.migrate import reject_renamed_keys
from retrieval_lab.pipeline.steps.diversify import DIVERSIFY, make_diversify, read_diversify
from retrieval_lab.pipeline.trace import DOCUMENTS, FUSION, RERANK, UNITS
from retrieval_lab.rerank import RerankerConfig, make_scorer, reranker_config
from retrieval_lab.sparse import BM25, BM25Config
from retrieval_lab.types import Corpus, Facts

DENSE_GROUPS = ("embedder", "index")  # a dense stage's sub-nodes; where its node has none, the top-level group


@dataclass(frozen=True)
class FirstStageEntry:
    """A first stage in the builder's table: `read(its node, the composed config, its key)` -> its typed,
    validated config (errors name the key); `make(typed config, cache)` -> the searcher, no model loaded."""

    read: Callable[[DictConfig, DictConfig, str], Any]
    make: Callable[[Any, Cache], FirstStage]


def read_bm25(node: DictConfig, cfg: DictConfig, prefix: str) -> BM25Config:
    config = typed(BM25Config, node, prefix, ignore=("name",))
    config.validate(prefix)
    return config


def read_dense(node: DictConfig, cfg: DictConfig, prefix: str) -> DenseConfig:
    """Its own `embedder` / `index` sub-nodes (a hybrid can fuse two dense stages), else the top-level groups."""
    groups = [(node.get(group), f"{prefix}.{group}") if node.get(group) is not None else (cfg.get(group), group)
              for group in DENSE_GROUPS]
    return dense_config(node, *groups, prefix)


FIRST_STAGES: dict[str, FirstStageEntry] = {
    "bm25": FirstStageEntry(read_bm25, lambda config, cache: BM25(config)),
    "dense": FirstStageEntry(read_dense, dense_stage),
}


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
    node: Any  # its raw node (which groups it uses: `unused_config_groups`)
    config: Any = None  # its typed config (`FIRST_STAGES[name].read`), set by `read_config`

    @property
    def name(self) -> str:
        return self.node.name


@dataclass(frozen=True)
class DocumentsConfig:
    aggregate: str = "max"  # passages -> documents (`chunker.aggregate`)
    ignore_identical_ids: bool = False  # `dataset.ignore_identical_ids`


@dataclass(frozen=True)
class PipelineConfig:
    """Every step's typed config, read once from the composed config."""

    chunker_name: str
    chunker: ChunkerConfig
    first_stages: list[FirstStageSpec]
    first_stage_depth: int | None  # passages each hybrid input retrieves (None: eval.depth)
    steps: dict[str, Any]  # label -> typed config of each `STEPS` entry
    eval: EvalSettings
    cache_dir: str | None
    cache_enabled: bool

    @property
    def fusion(self) -> FusionConfig | None:
        return self.steps[FUSION]

    @property
    def reranker(self) -> RerankerConfig:
        return self.steps[RERANK]

    @property
    def unit(self) -> UnitConfig:
        return self.steps[UNITS]

    @property
    def ignore_identical_ids(self) -> bool:
        return self.steps[DOCUMENTS].ignore_identical_ids


@dataclass
class Built:
    """What the builder has made so far, handed to each later step's factory."""

    corpus: Corpus
    passages: Passages
    cache: Cache
    settings: PipelineConfig
    steps: list[Step] = field(default_factory=list)

    @property
    def last(self) -> str:
        """The label of the latest passage-level run (the documents and units steps close the chain)."""
        return next(step.label for step in reversed(self.steps) if step.label not in (DOCUMENTS, UNITS))

    @property
    def first_stages(self) -> tuple[str, ...]:
        return tuple(step.label for step in self.steps if isinstance(step, FirstStageStep))

    def facts(self) -> list[Facts]:
        return [step.facts for step in self.steps]


@dataclass(frozen=True)
class StepEntry:
    """A step in the builder's table: `read(composed config, first-stage specs)` -> its typed, validated config
    (errors name the key); `make(typed config, built)` -> the step, or None where its config switches it off."""

    read: Callable[[DictConfig, list[FirstStageSpec]], Any]
    make: Callable[[Any, Built], Step | None]


def read_documents(cfg: DictConfig, specs: list[FirstStageSpec]) -> DocumentsConfig:
    aggregate = chunker_config(cfg.get("chunker") or {"name": "none"})[1].aggregate
    return DocumentsConfig(aggregate, bool(cfg.dataset.get("ignore_identical_ids", False)))


def read_unit(cfg: DictConfig, specs: list[FirstStageSpec]) -> UnitConfig:
    unit = typed(UnitConfig, cfg.get("unit") or {}, "unit")
    unit.validate()
    return unit


def make_rerank(config: RerankerConfig, built: Built) -> RerankStep | None:
    if not config.active:
        return None
    return RerankStep(config, make_scorer(config, built.cache.root, built.cache.enabled), (built.last,))


def make_units(config: UnitConfig, built: Built) -> UnitsStep:
    return UnitsStep(config, built.passages, *unit_spans(built.passages, built.corpus, config), (built.last, DOCUMENTS))


# label -> entry, in chain order after the first stages
STEPS: dict[str, StepEntry] = {
    FUSION: StepEntry(lambda cfg, specs: hybrid_settings(cfg.retriever, len(specs))[0],
                      lambda config, built: FusionStep(config, built.first_stages) if config else None),
    RERANK: StepEntry(lambda cfg, specs: reranker_config(cfg.get("reranker") or {"name": "none"}), make_rerank),
    DIVERSIFY: StepEntry(read_diversify, make_diversify),
    DOCUMENTS: StepEntry(read_documents, lambda config, built: DocumentsStep(config.aggregate,
                                                                             config.ignore_identical_ids,
                                                                             (built.last,))),
    UNITS: StepEntry(read_unit, make_units),
}


def first_stage_specs(cfg: DictConfig) -> list[FirstStageSpec]:
    """Each first stage's key, label and node (not yet typed)."""
    name = cfg.retriever.get("name")
    if name in FIRST_STAGES:
        return [FirstStageSpec("retriever", name, cfg.retriever)]
    if name == "hybrid":
        specs = [FirstStageSpec(key, key.rsplit(".", 1)[-1], node) for key, node in hybrid_nodes(cfg.retriever,
                                                                                                  FIRST_STAGES)]
        for spec in specs:  # an input's label names its run in the trace, beside the later steps'
            if spec.label in STEPS:
                raise ConfigError(spec.key, f"'{spec.label}' names a stage of the chain",
                                  f"rename the input (reserved: {', '.join(STEPS)})")
        return specs
    check_choice("retriever.name", name, [*FIRST_STAGES, "hybrid"])
    raise AssertionError("unreachable")


def read_config(cfg: DictConfig) -> PipelineConfig:
    """Typed step configs; raises `ConfigError` naming the key for anything invalid (no data is loaded)."""
    reject_renamed_keys(cfg)  # an old stage key (fusion `method`, reranker `type`): the error names the new one
    settings = typed(EvalSettings, cfg.get("eval") or {}, "eval")
    settings.validate()
    chunker_name, chunker = chunker_config(cfg.get("chunker") or {"name": "none"})
    specs = [FirstStageSpec(spec.key, spec.label, spec.node, FIRST_STAGES[spec.name].read(spec.node, cfg, spec.key))
             for spec in first_stage_specs(cfg)]
    first_stage_depth = hybrid_settings(cfg.retriever, len(specs))[1]
    steps = {label: entry.read(cfg, specs) for label, entry in STEPS.items()}
    if not cfg.dataset.get("split"):
        raise ConfigError("dataset.split", "missing", "set dataset.split=test (or train, dev)")
    check_choice("dataset.on_error", cfg.dataset.get("on_error") or "skip", ON_ERROR)
    cache = cfg.get("cache") or {}
    return PipelineConfig(chunker_name, chunker, specs, first_stage_depth, steps, settings, cache.get("dir"),
                          bool(cache.get("enabled", True)))


def first_stages(settings: PipelineConfig, cache: Cache) -> list[FirstStage]:
    """Every first stage's searcher, built without data: model files are found, none loaded."""
    return [FIRST_STAGES[spec.name].make(spec.config, cache) for spec in settings.first_stages]


def cache_for(settings: PipelineConfig) -> Cache:
    return Cache(settings.cache_dir, enabled=settings.cache_enabled)


def validate(cfg: DictConfig) -> PipelineConfig:
    """`read_config` and `first_stages`: every error a config can hold, before any data is read."""
    settings = read_config(cfg)
    first_stages(settings, Cache(enabled=False))
    return settings


def unused_config_groups(cfg: DictConfig) -> set[str]:
    """Top-level groups (`embedder`, `index`) no first stage reads: left out of logged params, so a BM25 run does
    not show a MiniLM embedder it never used."""
    try:
        specs = first_stage_specs(cfg)
    except LabError:
        return set()
    used = {group for spec in specs if spec.node.get("name") == "dense"
            for group in DENSE_GROUPS if spec.node.get(group) is None}
    return set(DENSE_GROUPS) - used


def embedder_tokens(facts: list[Facts]):
    """The first declared tokenizer (a dense stage's embedder) as a token counter (`chunker.tokenizer: embedder`),
    else None; reading it reads the tokenizer files only, never loads the model."""
    for fact in facts:
        if fact.tokenizer is not None:
            return from_hf(fact.tokenizer)
    return None


def build_chain(cfg: DictConfig, corpus: Corpus, cache: Cache | None = None, settings: PipelineConfig | None = None,
                stages: list[FirstStage] | None = None) -> Chain:
    """The chain over `corpus`: the first stages, then each `STEPS` entry its config switches on, in table order.
    `settings` and `stages` when the caller already read and built them."""
    settings = settings or read_config(cfg)
    cache = cache or cache_for(settings)
    stages = stages or first_stages(settings, cache)
    documents = settings.steps[DOCUMENTS]
    steps = [FirstStageStep(spec.label, stage, settings.first_stage_depth, documents.aggregate,
                            documents.ignore_identical_ids) for spec, stage in zip(settings.first_stages, stages)]
    tokens = embedder_tokens([step.facts for step in steps]) if settings.chunker.tokenizer == "embedder" else None
    passages = chunk_corpus(settings.chunker_name, settings.chunker, corpus, cache, tokens)
    built = Built(corpus, passages, cache, settings, steps)
    for label, entry in STEPS.items():
        step = entry.make(settings.steps[label], built)
        if step is not None:
            built.steps.append(step)
    return Chain(corpus, passages, built.steps, cache)
