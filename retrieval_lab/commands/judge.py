"""`retrieval-lab judge --experiment E --questions FILE`: pool what E's configurations retrieve for your questions and
judge it on a local page (judging/). Prints the page's URL on a line of its own; Ctrl-C stops it, and the next
start with the same inputs resumes where the judging stopped. While it runs, the console prints the decision each
time it changes, and a configuration that finishes meanwhile is reported (the page says so too) with the way to
extend the pool.

This command composes judging with the pipeline: it finds E's configuration runs and rebuilds their chains, and
hands the pool each one as plain data with a `retrieve` callable (judging/ imports nothing above the stages)."""
from __future__ import annotations

import copy
import os
import signal
import tempfile
import threading
from pathlib import Path

from retrieval_lab.judging.pool import Configuration, Pool
from retrieval_lab.judging.store import JUDGED_SET

RESCORED_SUFFIX = "-judged"


def judging_folder(questions: Path, out: str | None) -> Path:
    """`--out`, else beside the questions file: questions.jsonl -> questions.judged/."""
    return Path(out) if out else questions.with_suffix(".judged")


def rescore_command(pool, judged: Path) -> str:
    """The command that re-scores the pooled configurations on the judged set (their first stages replay from the
    cache), into an experiment of its own so `best` never pairs runs scored on other qrels."""
    studies = {c.get("study") for c in pool.configurations}
    study = next(iter(studies)) if len(studies) == 1 else None
    sweep = f"retrieval-lab sweep {study}" if study and study != "adhoc" else \
        "retrieval-lab sweep <the experiment's overrides>"
    return f"{sweep} dataset.questions={judged} tracking.experiment={pool.experiment}{RESCORED_SUFFIX}"


def experiment_configurations(client, experiment: str, sweep: str | None = None) -> list[Configuration]:
    """The FINISHED configuration runs of `experiment` (of one sweep with `sweep`), each with its logged config
    rebuilt as this machine runs it; a configuration run again counts once (its newest run), as `best` counts them."""
    import yaml

    from retrieval_lab.commands.best import finished_runs
    from retrieval_lab.errors import LabError
    from retrieval_lab.pipeline.export import check_targets
    from retrieval_lab.pipeline.migrate import migrate_config

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if client.get_experiment_by_name(experiment) is None:  # the fix names this experiment, so it works as printed
        names = ", ".join(e.name for e in client.search_experiments()) or "none"
        raise LabError(f"no MLflow experiment '{experiment}' in {client.tracking_uri} (experiments: {names})\n"
                       f"  fix: run the configurations to judge into it first: `retrieval-lab sweep OVERRIDES "
                       f"tracking.experiment={experiment}` (or a study: `retrieval-lab sweep STUDY "
                       f"tracking.experiment={experiment}`), or pass --experiment with one of those listed")
    # runs scored on a judged set (they log pool_depth) re-score configurations: they are not new ones
    runs = [r for r in finished_runs(client, experiment, sweep) if "pool_depth" not in r.data.metrics]
    if not runs:
        raise LabError(f"experiment '{experiment}' has no FINISHED configuration run"
                       + (f" in sweep {sweep}" if sweep else "")
                       + "\n  fix: run a sweep first (retrieval-lab sweep ...), or name another --experiment")
    logged = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            try:
                local = client.download_artifacts(run.info.run_id, "config.yaml", os.path.join(tmp, run.info.run_id))
            except Exception as exc:
                raise LabError(f"run {run.info.run_id} ({run.info.run_name}) has no config.yaml artifact ({exc}): "
                               "its configuration cannot be rebuilt") from exc
            config = migrate_config(yaml.safe_load(Path(local).read_text()))  # logged before a key's rename
            check_targets(config)
            logged.append((run.info.run_id, run.info.run_name or run.info.run_id[:8], run.data.tags.get("study", ""),
                           config))
    return [configuration(*entry) for entry in sorted(logged, key=lambda c: (c[1], c[0]))]


def configuration(run_id: str, name: str, study: str, config: dict) -> Configuration:
    """A logged config as this machine runs it, for the pool: data, cache and tracking locations follow this machine
    when the recorded ones are gone (as for an export); `retrieve` runs its chain (built when first called)."""
    from omegaconf import OmegaConf

    from retrieval_lab.pipeline.export import follow_this_machine
    from retrieval_lab.pipeline import Retriever, read_config

    body = copy.deepcopy(config)
    follow_this_machine(body)
    cfg = OmegaConf.create(body)

    def retrieve(corpus, questions):
        return Retriever(cfg, corpus).retrieve(questions).units

    return Configuration(run_id, name, study, read_config(cfg).eval.depth,
                         OmegaConf.to_container(cfg.dataset, resolve=True), OmegaConf.select(cfg, "cache.dir"),
                         retrieve)


def new_configurations(client, pool: Pool) -> list[str]:
    """Names of the FINISHED configuration runs of the pool's experiment (and sweep) that are not in the pool."""
    from retrieval_lab.commands.best import finished_runs

    pooled = {c["run_id"] for c in pool.configurations}
    return [r.info.run_name or r.info.run_id[:8] for r in finished_runs(client, pool.experiment, pool.sweep)
            if r.info.run_id not in pooled and "pool_depth" not in r.data.metrics]


WATCH_SECONDS = float(os.environ.get("RETRIEVAL_LAB_JUDGE_WATCH_SECONDS", "30"))


def watch_configurations(app, client, command: str, stop: threading.Event) -> None:
    """Every WATCH_SECONDS: tell the page and the console about configurations that finished after the pool was
    made, with the command that extends the pool (the judging so far is kept)."""
    seen: set[str] = set()
    while not stop.wait(WATCH_SECONDS):
        try:
            names = [n for n in new_configurations(client, app.pool) if n not in seen]
        except Exception as exc:  # the tracking store busy or gone for a moment: try again next time
            print(f"  (could not check the experiment for new configurations: {exc})", flush=True)
            continue
        if names:
            seen.update(names)
            line = (f"{len(names)} configuration(s) finished after this pool was made and are not in it: "
                    f"{', '.join(names)}. To extend the pool (only their passages are pooled, every judgement is "
                    f"kept): stop this page (Ctrl-C) and run again: {command}")
            app.notices.append(line)
            print(line, flush=True)


def cmd_judge(args) -> int:
    import shlex

    from retrieval_lab import tracking
    from retrieval_lab.errors import LabError
    from retrieval_lab.judging.assessors import agreement_lines, check_assessor, check_overlap, default_assessor
    from retrieval_lab.judging.order import check_order
    from retrieval_lab.judging.pool import judging_questions, open_pool
    from retrieval_lab.judging.server import JudgingApp, make_server
    from retrieval_lab.judging.store import JudgementStore

    if args.depth < 1:
        raise LabError(f"--depth must be a positive number of passages per configuration, got {args.depth}")
    order = check_order(args.order)
    assessor = check_assessor(args.assessor) if args.assessor is not None else default_assessor()
    overlap = check_overlap(args.overlap)
    questions = Path(args.questions)
    judging_questions(questions)  # a malformed questions file fails before any work, naming its line
    folder = judging_folder(questions, args.out)
    client = tracking.client({})
    configurations = experiment_configurations(client, args.experiment, args.sweep)
    pool, corpus, resumed = open_pool(folder, configurations, questions, args.depth, args.experiment, args.sweep,
                                      report=lambda line: print(line, flush=True))
    store = JudgementStore(folder)
    app = JudgingApp(folder, pool, store, corpus, order=order, assessor=assessor, overlap=overlap,
                     report=lambda line: print(line, flush=True))
    server = make_server(app, args.port)
    judged = folder / JUDGED_SET
    state = app.state()
    print(f"pool: {state['total']} (question, passage) pairs, the top {pool.depth} of {len(pool.configurations)} "
          f"configurations for {len(pool.questions)} questions ({'resumed' if resumed else 'new'}: "
          f"{folder / 'pool.json'})")
    print(f"judged so far: {state['judged']} of {state['total']}; judgements are saved as they are made to "
          f"{store.path}")
    if store.dropped_partial_line:
        print("  a partial last line (a write cut short when the process was killed) was dropped")
    if app.judged_set.left_out:
        print(f"  {app.judged_set.left_out} judgements are of reworded questions or missing documents: kept in "
              f"{store.path.name}, left out of the judged set")
    print(f"judged set: {judged} (dataset.questions=...), qrels: {folder / 'qrels.tsv'} (several assessors: the "
          "median of their grades, the lower one on a tie)")
    print(f"re-score:   {rescore_command(pool, judged)}")
    print(f"order: {order}; assessor: {assessor}" + (f"; overlap {overlap:.0%} (judged by every assessor)"
                                                     if overlap else ""))
    print(f"{state['decision']['statement']}")
    app.tell(state)
    for line in agreement_lines(state["agreement"]):
        print(f"agreement: {line}")
    print("judging page (127.0.0.1 only; Ctrl-C stops it):")
    print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)

    def _stop(signum, frame):
        raise KeyboardInterrupt

    again = shlex.join(["retrieval-lab", "judge", "--experiment", args.experiment, "--questions", str(questions),
                        "--depth", str(args.depth), "--order", order, "--assessor", assessor]
                       + (["--out", args.out] if args.out else []) + (["--sweep", args.sweep] if args.sweep else [])
                       + (["--overlap", str(overlap)] if overlap else []))
    stop = threading.Event()
    threading.Thread(target=watch_configurations, args=(app, client, again, stop), daemon=True).start()
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    final = app.state(assessor)
    print(f"stopped: {final['judged']} of {final['total']} judged ({final['mine']} by {assessor}); judged set {judged}")
    print(final["decision"]["statement"])
    for line in agreement_lines(final["agreement"]):
        print(f"agreement: {line}")
    return 0
