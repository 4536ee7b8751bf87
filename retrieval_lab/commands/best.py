"""`retrieval-lab best`: rank an experiment's runs, say what the questions can decide, recommend one.

Each run's `per_query.csv` artifact holds the metric per question. Every run is compared with the top run over the
same questions (evaluate/significance.py): a paired 95% interval of its difference, a two-sided test (randomization
or t, Holm-corrected), and a non-inferiority test against a margin (`--margin`, Holm-corrected). The recommendation
is the cheapest configuration (by `query_p50_ms`) shown to lose less than the margin, else the top one. Beside it:
the smallest difference the questions can detect, the questions needed to separate the top two, each leader's
probability of being best, and with `--cross-validate K` a held-out estimate of the choice.

Runs are only compared on one dataset (name, content hash and split); runs of others are left out with a note
saying how many and how to choose them (`--dataset`).
"""
from __future__ import annotations

import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from retrieval_lab import tracking
from retrieval_lab.pipeline.export import evaluate_hints, export_run, read_export
from retrieval_lab.errors import LabError
from retrieval_lab.evaluate import leaderboard
from retrieval_lab.evaluate.crossval import cross_validate, highest_mean, query_folds
from retrieval_lab.evaluate.recommendation import Recommendation, power_lines, select_noninferior
from retrieval_lab.evaluate.significance import TESTS, Margin, mean_interval
from retrieval_lab.tracking import per_query_values

__all__ = ["COST", "Candidate", "Ranking", "finished_runs", "per_query_values", "rank", "ranking_from",
           "format_ranking", "cmd_best"]

COST = "query_p50_ms"


@dataclass
class Candidate:
    run_id: str
    name: str
    mean: float
    cost: float | None
    per_query: dict[str, float] = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


@dataclass
class CrossValidated:
    rule: str
    folds: int
    seed: int
    held_out_mean: float
    held_out_low: float  # t interval over the questions' held-out values
    held_out_high: float
    sd_over_folds: float
    picks: dict[str, int]  # configuration name -> folds whose choice it was


@dataclass
class Ranking:
    recommendation: Recommendation
    candidates: list[Candidate]  # best first, as recommendation.rows
    dataset: str = ""
    left_out: list[str] = field(default_factory=list)  # why runs of the experiment are not in the ranking
    cross_validation: list[CrossValidated] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return self.recommendation.metric

    @property
    def top(self) -> Candidate:
        return self.candidates[0]

    @property
    def pick(self) -> Candidate:
        return self.candidates[self.recommendation.rows.index(self.recommendation.pick)]

    @property
    def queries(self) -> int:
        return self.recommendation.queries


def finished_runs(client, experiment: str, sweep: str | None = None) -> list:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = ", ".join(e.name for e in client.search_experiments()) or "none"
        raise LabError(f"no MLflow experiment '{experiment}' in {client.tracking_uri} (experiments: {names})\n"
                       "  fix: run a sweep first (`retrieval-lab sweep quickstart`) or pass --experiment NAME")
    query = "attributes.status = 'FINISHED' and tags.role = 'config'"
    if sweep:
        query += f" and tags.sweep_id = '{sweep}'"
    runs = client.search_runs([exp.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"],
                              max_results=5000)
    seen, out = set(), []
    for run in runs:  # a configuration re-run (e.g. after a code change) counts once: its newest run
        key = run.data.tags.get("params_hash") or run.data.tags.get("config_hash") or run.info.run_id
        if key not in seen:
            seen.add(key)
            out.append(run)
    return out


def dataset_key(run) -> tuple[str, str, str]:
    tags = run.data.tags
    return tags.get("dataset", "?"), tags.get("dataset_hash", ""), tags.get("split", "")


def dataset_label(key: tuple[str, str, str]) -> str:
    name, digest, split = key
    return f"{name}@{digest[:8]} ({split or '?'} split)" if digest else f"{name} ({split or '?'} split)"


def _matches(key: tuple[str, str, str], wanted: str) -> bool:
    name, digest, _ = key
    if "@" in wanted:
        want_name, want_hash = wanted.split("@", 1)
        return name == want_name and digest.startswith(want_hash)
    return name == wanted or (len(wanted) >= 4 and digest.startswith(wanted))


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def choose_dataset(runs: list, wanted: str | None) -> tuple[list, tuple[str, str, str], list[str]]:
    """The runs of one dataset (name, content hash, split: only runs over the same questions can be paired), and a
    note for each group left out. Without `wanted`, the dataset with the most runs (a tie: the newest run's)."""
    groups: dict[tuple[str, str, str], list] = defaultdict(list)
    for run in runs:  # newest first: dict order puts the newest run's dataset first
        groups[dataset_key(run)].append(run)
    if wanted:
        chosen = [k for k in groups if _matches(k, wanted)]
        if not chosen:
            raise LabError(f"--dataset {wanted}: no run of this experiment is on that dataset (they are on: "
                           f"{', '.join(f'{dataset_label(k)}: {_runs(len(v))}' for k, v in groups.items())})\n"
                           "  fix: --dataset NAME, or NAME@HASH where runs of one name differ in content")
        if len(chosen) > 1:
            raise LabError(f"--dataset {wanted} matches {len(chosen)} datasets that differ in content or split: "
                           f"{', '.join(f'{dataset_label(k)}: {_runs(len(groups[k]))}' for k in chosen)}\n"
                           f"  fix: --dataset {chosen[0][0]}@{chosen[0][1][:8]} (name@hash, as listed)")
        key = chosen[0]
    else:
        key = max(groups, key=lambda k: len(groups[k]))  # first of the largest: the newest run's on a tie
    names = [k[0] for k in groups]
    notes = []
    for other, members in groups.items():
        if other == key:
            continue
        name, digest, split = other
        why = ("another dataset" if name != key[0] else "the same name with other content (documents, questions "
               "or judgements changed)" if digest != key[1] else "another split")
        notes.append(f"left out {_runs(len(members))} on {dataset_label(other)}: "
                     f"{why}; choose it with --dataset {name}" + (f"@{digest[:8]}" if names.count(name) > 1 else ""))
    return groups[key], key, notes


def ranking_from(candidates: list[Candidate], metric: str, margin: Margin | None = None, alpha: float = 0.05,
                 test: str = "randomization", trials: int = 10000, resamples: int = 2000) -> Ranking:
    """Rank candidates on the questions they were all evaluated on. A candidate missing questions that others have
    is an error naming it: compared on fewer questions its mean would not be comparable."""
    if not candidates:
        raise LabError("no configuration to rank")
    try:
        board = leaderboard.rank(candidates, metric, lambda c: c.per_query, lambda c: c.name, lambda c: c.cost,
                                 margin, alpha, test, trials, resamples)
    except leaderboard.DifferentQuestions as exc:
        if not exc.missing:
            raise LabError(f"no run has a value of '{metric}' for any question: nothing to compare") from None
        c, missing = exc.missing[0]
        raise LabError(
            f"run '{c.name}' ({c.run_id}) has no '{metric}' for {len(missing)} of the {exc.questions} questions the "
            f"other runs were evaluated on (e.g. {', '.join(missing[:3])}): its mean is not comparable\n"
            f"  fix: re-run that configuration on the whole question set, or delete the run "
            f"(mlflow runs delete --run-id {c.run_id}) so that best leaves it out") from None
    return Ranking(board.recommendation, board.entries)


def cross_validated(ranking: Ranking, folds: int, seed: int = 0) -> list[CrossValidated]:
    """Both selection rules re-run on K-1 folds of questions and scored on the fold left out, from the per-query
    values already loaded (nothing is recomputed)."""
    rec = ranking.recommendation
    # cheaper first: a tie on the training folds goes to the cheaper configuration
    ordered = sorted(ranking.candidates, key=lambda c: (math.inf if c.cost is None else c.cost))
    per_query = {c.run_id: c.per_query for c in ordered}
    names = {c.run_id: c.name for c in ordered}
    if not 2 <= folds <= ranking.queries:
        raise LabError(f"--cross-validate {folds}: cross-validation needs 2 <= folds <= queries, got {folds} folds "
                       f"for {ranking.queries} queries\n  fix: --cross-validate {min(5, max(2, ranking.queries))} "
                       "(5 folds is usual; at most one fold per question)")
    split = query_folds(ranking.top.per_query, folds, seed)
    rules = {"highest mean": highest_mean,
             f"cheapest non-inferior (margin {rec.margin})": select_noninferior(rec.margin, rec.alpha,
                                                                             [c.cost for c in ordered])}
    out = []
    for rule, select in rules.items():
        cv = cross_validate(per_query, split, select)
        low, high = mean_interval(list(cv.held_out.values()))
        sd = cv.held_out_sd if folds > 1 else math.nan
        out.append(CrossValidated(rule, folds, seed, cv.held_out_mean, low, high, sd,
                                  {names[k]: v for k, v in cv.picks.most_common()}))
    return out


def load_candidates(client, runs: list, metric: str) -> list[Candidate]:
    candidates = []
    for r in runs:
        try:
            values = per_query_values(client, r.info.run_id, metric)
        except LabError as exc:  # e.g. artifacts deleted: the run cannot be tested, say so and go on
            print(f"warning: left out {r.info.run_name}: {exc}", file=sys.stderr)
            continue
        candidates.append(Candidate(r.info.run_id, r.info.run_name or r.info.run_id[:8], r.data.metrics[metric],
                                    r.data.metrics.get(COST), values, dict(r.data.tags), dict(r.data.metrics)))
    return candidates


def rank(client, experiment: str, metric: str = "ndcg_at_10", test: str = "randomization", alpha: float = 0.05,
         sweep: str | None = None, trials: int = 10000, margin: Margin | None = None, dataset: str | None = None,
         resamples: int = 2000) -> Ranking:
    if test not in TESTS:
        raise LabError(f"unknown test '{test}': use one of {', '.join(TESTS)}")
    finished = finished_runs(client, experiment, sweep)
    runs = [r for r in finished if metric in r.data.metrics]
    if not runs:
        raise LabError(f"experiment '{experiment}' has no FINISHED configuration run with metric '{metric}'")
    runs, key, notes = choose_dataset(runs, dataset)
    without = len(finished) - sum(metric in r.data.metrics for r in finished)
    if without:
        notes.append(f"left out {_runs(without)} without the metric '{metric}'")
    candidates = load_candidates(client, runs, metric)
    if not candidates:
        raise LabError(f"no run of experiment '{experiment}' has a readable per_query.csv")
    ranking = ranking_from(candidates, metric, margin, alpha, test, trials, resamples)
    ranking.dataset, ranking.left_out = dataset_label(key), notes
    return ranking


def _interval(low: float, high: float, digits: int = 4) -> str:
    if math.isnan(low) or math.isnan(high):
        return "-"
    sign = "+" if low < 0 or high < 0 else ""  # deltas carry their sign, scores do not
    return f"[{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def format_ranking(r: Ranking, limit: int = 30) -> str:
    rec = r.recommendation
    alpha = rec.alpha
    where = f"{r.dataset}: " if r.dataset else ""
    count = f"{len(r.candidates)} configuration{'s' if len(r.candidates) != 1 else ''}"
    lines = [f"{where}{count}, {r.queries} paired queries; against the top run: paired "
             f"95% interval of the difference (t over questions), {rec.test} test Holm-corrected (alpha {alpha}), "
             f"P(best) over 2,000 bootstrap resamples of the questions"]
    lines += [f"  {note}" for note in r.left_out]
    lines.append("")
    width = max(3, *(len(c.name) for c in r.candidates[:limit]))
    header = (f"{'#':>3}  {'run':<{width}}  {r.metric:>12}  {'95% interval':<18}  {'delta':>8}  "
              f"{'95% interval':<20}  {'p_holm':>7}  {'':2}  {'P(best)':>7}  {COST:>12}  run id")
    lines.append(header)
    for i, (row, c) in enumerate(zip(rec.rows[:limit], r.candidates[:limit]), 1):
        is_top = i == 1
        delta = "" if is_top else f"{row.delta:+.4f}"
        delta_ci = "" if is_top else _interval(row.delta_low, row.delta_high)
        ph = "" if row.p_holm is None else f"{row.p_holm:.4f}"
        mark = ("*" if row.significantly_worse(alpha) else "") + ("=" if row.noninferior else "")  # can be both
        cost = "" if c.cost is None else f"{c.cost:.2f}"
        lines.append(f"{i:>3}  {c.name:<{width}}  {row.mean:>12.4f}  {_interval(row.mean_low, row.mean_high):<18}  "
                     f"{delta:>8}  {delta_ci:<20}  {ph:>7}  {mark:2}  {row.p_best:>7.3f}  {cost:>12}  {c.run_id}")
    if len(r.candidates) > limit:
        lines.append(f"  ... {len(r.candidates) - limit} more")
    m = rec.margin_absolute
    lines += ["", f"  * significantly worse than the top run   = shown non-inferior: loses less than {m:.4f} to the "
                  f"top ({rec.margin}; one-sided, Holm-corrected)", ""]
    top = r.top
    lines.append(f"top:         {top.name}  {r.metric} {top.mean:.4f} "
                 f"{_interval(rec.top.mean_low, rec.top.mean_high)}  ({COST} {_fmt(top.cost)})  run {top.run_id}")
    if rec.reason == "single":
        lines.append("recommended: the only configuration (nothing to compare it with)")
    elif rec.reason == "non-inferior":
        pick, row = r.pick, rec.pick
        lines.append(f"recommended: {pick.name}  {r.metric} {pick.mean:.4f}, delta {row.delta:+.4f} "
                     f"{_interval(row.delta_low, row.delta_high)}  ({COST} {_fmt(pick.cost)})  run {pick.run_id}")
        lines.append(f"  the cheapest configuration shown non-inferior: its loss to the top is below {m:.4f} "
                     f"(one-sided upper bound {row.loss_bound:.4f} at Holm's level; non-inferiority p_holm "
                     f"{row.ni_p_holm:.4g})")
    else:
        shown = [row for row in rec.rows[1:] if row.noninferior]
        why = ("no cheaper configuration is shown to lose less than "
               f"{m:.4f} ({rec.margin})" if not shown else "the top is the cheapest of those shown non-inferior")
        lines.append(f"recommended: the top configuration, {top.name}: {why}")
        if not shown and len(rec.rows) > 1:
            lines.append("  (a difference that is not significant is not shown equality: with few questions, "
                         "intervals are wide; see the power line)")
    lines += power_lines(rec)
    leaders = [(row, c) for row, c in zip(rec.rows, r.candidates) if row.p_best >= 0.01]
    leaders.sort(key=lambda rc: -rc[0].p_best)
    if leaders:
        lines.append("probability of being best: " + ", ".join(f"{c.name} {row.p_best:.2f}"
                                                                 for row, c in leaders[:5]))
    previous = None
    for cv in r.cross_validation:
        optimism = top.mean - cv.held_out_mean
        if previous is not None and (cv.picks, cv.held_out_mean) == (previous.picks, previous.held_out_mean):
            lines.append(f"  rule '{cv.rule}': the same choices in every fold")
            continue
        previous = cv
        lines += ["", f"cross-validated ({cv.folds} folds of questions, seed {cv.seed}), rule '{cv.rule}': "
                      f"held-out {r.metric} {cv.held_out_mean:.4f} {_interval(cv.held_out_low, cv.held_out_high)} "
                      f"(sd over folds {cv.sd_over_folds:.4f}) against the leaderboard's maximum {top.mean:.4f}: "
                      f"optimism {optimism:+.4f}",
                  "  chosen: " + ", ".join(f"{name} {count}/{cv.folds}" for name, count in cv.picks.items())]
    generators = sorted({c.tags.get("synth_generator", "?") for c in r.candidates
                         if c.tags.get("eval_set") == "synthetic"})
    if generators:
        lines += ["", f"caution: these runs are scored on synthetic questions ({', '.join(generators)} generator): "
                      "they favour configurations that match the generator's wording (a copied or keyword "
                      "question favours BM25), so this order may differ from real questions'; confirm the "
                      "choice on questions people asked (a questions file, or judged pools)"]
    return "\n".join(lines)


def selection_record(r: Ranking, chosen: Candidate, pick: str) -> dict:
    """What the export records about the choice: the rule, the intervals, the tests, the power and held-out
    estimates."""
    rec = r.recommendation
    row = rec.rows[r.candidates.index(chosen)]
    record = {"metric": r.metric, "rule": pick, "dataset": r.dataset, "queries": r.queries, "test": rec.test,
              "alpha": rec.alpha, "margin": str(rec.margin), "margin_absolute": rec.margin_absolute,
              "top_run_id": r.top.run_id, "top_mean": rec.top.mean,
              "mean": row.mean, "mean_95": [row.mean_low, row.mean_high]}
    if row is not rec.top:
        record.update({"delta_vs_top": row.delta, "delta_vs_top_95": [row.delta_low, row.delta_high],
                       "p_holm_vs_top": row.p_holm, "noninferior": row.noninferior,
                       "noninferiority_p_holm": row.ni_p_holm})
    record.update({"p_best": row.p_best, "recommended_run_id": r.pick.run_id, "recommendation": rec.reason})
    if rec.power is not None:
        record["power"] = {"detectable_difference": rec.power.detectable, "top_two_gap": rec.power.gap,
                           "questions_to_detect_gap": rec.power.needed, "top_group": rec.power.top_group,
                           "separable": rec.power.separable}
    if r.cross_validation:
        record["cross_validation"] = [{"rule": cv.rule, "folds": cv.folds, "seed": cv.seed,
                                       "held_out_mean": cv.held_out_mean,
                                       "held_out_95": [cv.held_out_low, cv.held_out_high],
                                       "sd_over_folds": cv.sd_over_folds, "picks": cv.picks}
                                      for cv in r.cross_validation]
    return record


def cmd_best(args) -> int:
    client = tracking.client({})
    margin = Margin.parse(args.margin)
    ranking = rank(client, args.experiment, args.metric, args.test, args.alpha, args.sweep, args.trials, margin,
                   args.dataset)
    if args.cross_validate:
        ranking.cross_validation = cross_validated(ranking, args.cross_validate, args.seed)
    print(format_ranking(ranking))
    if args.export:
        chosen = ranking.top if args.pick == "top" else ranking.pick
        path = export_run(client, chosen.run_id, Path(args.export), selection=selection_record(ranking, chosen,
                                                                                                args.pick))
        print(f"\nexported {args.pick} configuration (run {chosen.run_id}) to {path}")
        print(f"  search:   retrieval-lab search --config {path} \"your query\"")
        for hint in evaluate_hints(path, read_export(path)["config"]):
            print(f"  evaluate: {hint}")
    return 0

