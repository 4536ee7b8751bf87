"""`retrieval-lab calibrate`: how far to trust a synthetic question set, measured where real questions exist.

A study's configurations (its `hydra.sweeper.params` grid, as `retrieval-lab sweep STUDY` runs it) are evaluated on
a dataset's real queries and qrels, then on questions that each generator writes from the same corpus (the same
retrieval pipeline: `run_experiment`, the lab's cache). The two rankings are compared (evaluate/calibration.py):
Kendall's tau, whether each winner is in the other set's not-significantly-worse group, and the rank shift of the
BM25 configuration. Each synthetic set's lexical check (BM25 MRR@10 of the questions against their source sentences
copied) is reported beside it. The questions files and `calibration.json` are written to `--out`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from retrieval_lab.errors import LabError

REAL = "real"


@dataclass
class Configuration:
    name: str
    overrides: list[str]


@dataclass
class Calibration:
    study: str
    dataset: str
    configurations: list[Configuration]
    leaderboards: dict  # label -> evaluate.calibration.Leaderboard, "real" first
    agreements: list  # evaluate.calibration.Agreement per generator
    sets: dict = field(default_factory=dict)  # label -> {"generator", "settings", "questions", "file", "lexical_check"}
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"study": self.study, "dataset": self.dataset, "seconds": round(self.seconds, 1),
                "configurations": {c.name: c.overrides for c in self.configurations},
                "means": {label: board.means for label, board in self.leaderboards.items()},
                "queries": {label: int(board.per_query.shape[1]) for label, board in self.leaderboards.items()},
                "sets": self.sets, "agreements": [a.as_dict() for a in self.agreements]}

    def lines(self) -> list[str]:
        boards = self.leaderboards
        width = max(len(c.name) for c in self.configurations)
        sizes = ", ".join(f"{label} {board.per_query.shape[1]}" for label, board in boards.items())
        out = [f"study {self.study}: {len(self.configurations)} configurations on {self.dataset}, nDCG@10 (rank) by "
               f"question set ({sizes} questions)", "",
               f"  {'configuration':<{width}}" + "".join(f"  {label:>13}" for label in boards)]
        for c in sorted(self.configurations, key=lambda c: boards[REAL].rank(c.name)):
            out.append(f"  {c.name:<{width}}" + "".join(
                f"  {board.means[c.name]:.4f} ({board.rank(c.name):>2})" for board in boards.values()))
        out += ["", "  top group: the top configuration and those not significantly worse (paired randomization "
                    "test, Holm-corrected)", ""]
        for a in self.agreements:
            lexical = self.sets[a.label].get("lexical_check")
            out += [f"  {a.label}: Kendall tau {a.tau:+.3f} (p {a.tau_p:.3g})",
                    f"    real winner {a.real_winner} in its top group ({len(a.synthetic_group)} configurations): "
                    f"{_yes(a.real_winner_in_synthetic_group)}",
                    f"    its winner {a.synthetic_winner} in the real top group ({len(a.real_group)}): "
                    f"{_yes(a.synthetic_winner_in_real_group)}",
                    f"    {a.reference} rank: real {a.reference_rank_real}, synthetic {a.reference_rank_synthetic} "
                    f"({a.reference_shift:+d} places)"]
            if lexical:
                out.append(f"    lexical check, BM25 MRR@10 of the passage: generated "
                           f"{lexical['generated']['mrr_at_10']:.3f}, source sentence copied "
                           f"{lexical['copied']['mrr_at_10']:.3f}")
        return out


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def study_configurations(study: str, overrides: list[str] | tuple[str, ...] = ()) -> list[Configuration]:
    """The configurations `retrieval-lab sweep STUDY OVERRIDES` runs, in its order: Hydra's basic sweeper expands
    the study's `hydra.sweeper.params` followed by the command line (a key given there replaces the study's sweep of
    it). Each is named by its swept values: the study's parameters and the command line's sweeps (`key=a,b`)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.errors import HydraException

    from retrieval_lab.commands import expand_study
    from retrieval_lab.config import compose, parse_overrides

    arguments = [*expand_study([study]), *overrides]
    fixed = [o.input_line for o in parse_overrides(arguments) if not o.is_sweep_override()]
    node = compose("config", fixed, hydra_node=True)
    params = [f"{k}={v}" for k, v in (node.hydra.sweeper.params or {}).items()]
    grid = parse_overrides([*params, *arguments])  # what BasicSweeper.sweep parses
    last = {o.get_key_element(): (i < len(params), o) for i, o in enumerate(grid)}
    named = [key for key, (from_study, o) in last.items() if from_study or o.is_sweep_override()]
    if not named:
        raise LabError(f"study '{study}' sweeps nothing (no hydra.sweeper.params and no key=a,b override): there "
                       "is no ranking to calibrate\n  fix: name a study with several configurations (e.g. "
                       "calibration), or sweep a key: retriever.k1=0.6,0.9,1.2")
    try:
        [batch] = BasicSweeper.split_arguments(grid, None)
    except HydraException as exc:  # a range or interval sweep: the basic sweeper runs discrete values only
        raise LabError(f"calibrate: {exc}\n  fix: list the values (key=a,b,c)") from None
    configurations = []
    for combination in batch:
        values = [item.split("=", 1) for item in combination]
        shown = [(key, value) for key, value in values if key in named]
        # one swept option of a config group (+experiments/calibration=bm25): its name; else k1=0.9 b=0.4
        name = (shown[0][1] if len(shown) == 1 and "." not in shown[0][0]
                else " ".join(f"{k.lstrip('+~').split('.')[-1].split('/')[-1]}={v}" for k, v in shown))
        configurations.append(Configuration(name, list(combination)))
    return configurations


def calibrate(study: str, dataset: str, generators: dict[str, tuple[str, dict]], queries: int = 300, seed: int = 0,
              overrides: list[str] | tuple[str, ...] = (), out: str | Path | None = None, reference: str = "bm25",
              alpha: float = 0.05, trials: int = 10000, lexical_check: bool = True,
              progress: Callable[[str], None] = print):
    """Rank the study's configurations on `dataset`'s real queries and on each generator's questions.
    `generators`: label -> (generator name, its options)."""
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset
    from retrieval_lab.data.synth import make_generator
    from retrieval_lab.data.synth.build import lexical_figures, write_questions_file
    from retrieval_lab.evaluate.calibration import Leaderboard, agreement
    from retrieval_lab.pipeline import run_experiment

    started = time.perf_counter()
    if not generators:
        raise LabError("--generators: name at least one generator (e.g. title,extract)")
    if REAL in generators:
        raise LabError(f"--generators: '{REAL}' names the real queries; give the generator another label")
    if queries < 1:
        raise LabError(f"--queries {queries}: must be at least 1")
    common = [f"dataset={dataset}", "tracking.enabled=false", *overrides]
    configurations = study_configurations(study, common)
    names = [c.name for c in configurations]
    if len(names) < 3:
        raise LabError(f"study '{study}' gives {len(names)} configuration(s) here: a ranking to compare needs at "
                       "least 3\n  fix: sweep more values (key=a,b,c) or name a larger study")
    if reference not in names:
        raise LabError(f"--reference {reference}: no configuration of study '{study}' has that name (they are: "
                       f"{', '.join(names)})\n  fix: pass --reference with the BM25 configuration's name")
    cfg = compose_config(configurations[0].overrides)
    real = load_dataset(cfg.dataset, cache_root=cfg.cache.dir)
    folder = Path(out or Path("outputs") / "calibrate" / f"{study}-{real.name}")
    folder.mkdir(parents=True, exist_ok=True)

    sets, info = {REAL: real}, {REAL: {"questions": len(real.queries), "split": real.split}}
    for label, (name, options) in generators.items():
        generator = make_generator(name, cache_dir=cfg.cache.dir, **options)
        questions = generator.generate(real.corpus, queries, np.random.default_rng(seed))
        path = folder / f"{real.name}-{label}-{queries}q-seed{seed}.jsonl"
        write_questions_file(path, questions, generator.name)
        sets[label] = load_dataset(real.path, split=real.split, name=real.name, questions=path)
        info[label] = {"generator": generator.name, "settings": generator.settings(), "seed": seed,
                       "questions": len(questions), "file": str(path)}
        if lexical_check:
            info[label]["lexical_check"] = lexical_figures(real.corpus, questions,
                                                           generator.settings().get("window") or 2)
        progress(f"{label}: {len(questions)} questions from {real.name}, e.g. {questions[0].question!r}")

    scores: dict[str, list[np.ndarray]] = {label: [] for label in sets}
    for number, configuration in enumerate(configurations, 1):
        cfg = compose_config(configuration.overrides)
        shown = []
        for label, questions in sets.items():
            evaluation = run_experiment(cfg, dataset=questions).evaluation
            values = dict(zip(evaluation.query_ids, evaluation.per_query["ndcg_at_10"]))
            scores[label].append(np.array([values[q] for q in questions.queries.ids]))
            shown.append(f"{label} {scores[label][-1].mean():.4f}")
        progress(f"[{number}/{len(configurations)}] {configuration.name}: {', '.join(shown)}")

    boards = {label: Leaderboard(label, names, np.vstack(rows)) for label, rows in scores.items()}
    agreements = [agreement(boards[REAL], boards[label], reference, alpha, trials) for label in generators]
    result = Calibration(study, real.name, configurations, boards, agreements, info, time.perf_counter() - started)
    (folder / "calibration.json").write_text(json.dumps(result.as_dict(), indent=1) + "\n", encoding="utf-8")
    return result, folder


def parse_generators(text: str, options: list[str]) -> dict[str, tuple[str, dict]]:
    """`title,extract` plus `--option extract.dropout=0.5` items -> label -> (generator, options). A label may name
    a variant: `extract-keep=extract` with `--option extract-keep.keep_source_words=true`."""
    import yaml

    from retrieval_lab.data.synth import generator_options

    generators: dict[str, tuple[str, dict]] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        label, _, name = item.partition("=")
        if label in generators:
            raise LabError(f"--generators {text}: '{label}' is named twice")
        generator_options(name or label)  # an unknown generator is a SynthError naming the known ones
        generators[label] = (name or label, {})
    for option in options:
        key, sep, value = option.partition("=")
        label, dot, setting = key.rpartition(".")
        if not sep or not dot or label not in generators:
            raise LabError(f"--option {option}: expected GENERATOR.KEY=VALUE with GENERATOR one of "
                           f"{', '.join(generators) or '(none given)'}\n  fix: e.g. --option extract.dropout=0.5")
        known = [k for k in generator_options(generators[label][0]) if k != "cache_dir"]
        if setting not in known:
            raise LabError(f"--option {option}: generator {generators[label][0]} has no setting '{setting}'\n"
                           f"  fix: use one of {', '.join(known)}")
        generators[label][1][setting] = yaml.safe_load(value)
    return generators


def cmd_calibrate(args) -> int:
    result, folder = calibrate(args.study, args.dataset, parse_generators(args.generators, args.option or []),
                               args.queries, args.seed, args.overrides, args.out, args.reference, args.alpha,
                               args.trials)
    print("\n".join(["", *result.lines(), "", f"wrote {folder / 'calibration.json'} and the questions files"]))
    return 0
