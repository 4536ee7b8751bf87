"""Argument parsers of `best`, `search`, `evaluate`, `ui`, `server` and `judge` (imports nothing heavy: `--help` stays
instant)."""
from __future__ import annotations


def _best(args) -> int:
    from retrieval_lab.commands.best import cmd_best

    return cmd_best(args)


def _search(args) -> int:
    from retrieval_lab.commands.export import cmd_search

    return cmd_search(args)


def _evaluate(args) -> int:
    from retrieval_lab.commands.export import cmd_evaluate

    return cmd_evaluate(args)


def _ui(args) -> int:
    from retrieval_lab.commands.ui import cmd_ui

    return cmd_ui(args)


def _server(args) -> int:
    from retrieval_lab.commands.server import cmd_server

    return cmd_server(args)


def _judge(args) -> int:
    from retrieval_lab.commands.judge import cmd_judge

    return cmd_judge(args)


def _init(args) -> int:
    from retrieval_lab.commands.init import cmd_init

    return cmd_init(args)


def add_commands(sub) -> None:
    p = sub.add_parser("init", help="start on a folder of documents: check it, import it as dataset=NAME, write a "
                                    "study sized for it into your config folder, print the next two commands",
                       description="Check a folder of documents (formats, twins of one document in two formats, "
                                   "unreadable and skipped files, text repeated on most pages, size), import it as "
                                   "dataset=NAME (imported again when the folder changes), write the study "
                                   "experiments/NAME.yaml and the option dataset/NAME.yaml into the personal config folder ($RETRIEVAL_LAB_CONFIG or "
                                   "~/.config/retrieval-lab) with chunkings, units and retrievers sized for the "
                                   "corpus, and print the next two commands. Without --questions they generate "
                                   "questions (data synth) and point to judge for questions people ask.")
    p.add_argument("folder")
    p.add_argument("--questions", help="your questions (.jsonl or .csv with evidence quotes or docs, as for "
                                       "dataset.questions)")
    p.add_argument("--name", help="dataset and study name (default: the folder's name)")
    p.add_argument("--root", help="data root for the import (default: $RETRIEVAL_LAB_DATA or ./data)")
    p.add_argument("--force", action="store_true", help="write the study again when it exists")
    p.set_defaults(func=_init)

    p = sub.add_parser("best", help="rank an experiment's runs with intervals, non-inferiority and power; "
                                    "--export best.yaml",
                       description="Rank the FINISHED configuration runs of an experiment by a metric, compare each "
                                   "with the top run over the same questions (paired 95% interval, paired test "
                                   "Holm-corrected, non-inferiority against --margin), and recommend the cheapest "
                                   "configuration (query_p50_ms) shown to lose less than the margin, else the top "
                                   "one. Prints what the questions can detect (80% power) and, with "
                                   "--cross-validate K, a held-out estimate of the choice.")
    p.add_argument("--experiment", required=True, help="MLflow experiment (a study's name, e.g. quickstart)")
    p.add_argument("--metric", default="ndcg_at_10", help="metric to rank by (default ndcg_at_10)")
    p.add_argument("--test", choices=["randomization", "ttest"], default="randomization",
                   help="paired test over per-query values (default: randomization, 10,000 sign flips)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm correction")
    p.add_argument("--margin", default="0.01",
                   help="non-inferiority margin: the loss to the top that still counts as equal, absolute "
                        "(default 0.01) or relative to the top's score (e.g. 2%%)")
    p.add_argument("--cross-validate", type=int, metavar="K", default=0,
                   help="re-run the selection on K-1 folds of questions and score it on the fold left out, from the "
                        "logged per-query results: the held-out estimate beside the leaderboard's maximum")
    p.add_argument("--seed", type=int, default=0, help="seed of the cross-validation folds")
    p.add_argument("--dataset", metavar="NAME[@HASH]",
                   help="rank the runs on this dataset when the experiment holds runs of several (name, or "
                        "name@hash when one name has several contents)")
    p.add_argument("--trials", type=int, default=10000, help="randomization test trials")
    p.add_argument("--sweep", help="only the runs of this sweep id (tag sweep_id)")
    p.add_argument("--export", metavar="PATH", help="write the chosen configuration as a frozen YAML")
    p.add_argument("--pick", choices=["top", "cheapest"], default="top",
                   help="what --export writes: the top run, or the recommendation (the cheapest shown "
                        "non-inferior, else the top)")
    p.set_defaults(func=_best)

    p = sub.add_parser("search", help="search with a frozen config: retrieval-lab search --config best.yaml \"query\"")
    p.add_argument("--config", required=True, help="an export from `best --export` (or a run's config.yaml)")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10, help="documents to show (one line each, best first)")
    p.add_argument("--passages", type=int, default=1, metavar="N", help="passages to show per document, best first "
                   "(default 1: each document's best one); each with the headings above it and a link to its place")
    p.add_argument("--chars", type=int, default=240, help="characters of the matching passage to print")
    p.add_argument("overrides", nargs="*", help="key=value changes (dataset=..., retriever.k1=...)")
    p.set_defaults(func=_search)

    p = sub.add_parser("evaluate", help="evaluate a frozen config (or the default one) without Hydra: "
                                        "retrieval-lab evaluate --config best.yaml dataset=nfcorpus")
    p.add_argument("--config", help="an export from `best --export` (or a run's config.yaml)")
    p.add_argument("--experiment", help="also log the evaluation as an MLflow run in this experiment")
    p.add_argument("overrides", nargs="*", help="group=option (dataset=nfcorpus) or key=value changes")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("ui", help="MLflow UI on 127.0.0.1 (fast settings); prints the sorted runs-view URL")
    p.add_argument("--experiment", help="experiment whose runs view to print (default: the experiments list)")
    p.add_argument("--metric", default="ndcg_at_10", help="sort key of the printed URL")
    p.add_argument("--port", type=int, default=5000, help="port (default 5000; 0 = any free port)")
    p.add_argument("--table", action="store_true", help="link the table view instead of the charts")
    p.set_defaults(func=_ui)

    p = sub.add_parser("server", help="a team's MLflow tracking server on PostgreSQL (127.0.0.1): start, stop, "
                                      "status; runs go to it with tracking=server",
                       description="Run an MLflow tracking server with a PostgreSQL backend store (a throwaway "
                                   "cluster made with initdb, loopback only) and an artifact root, all under --dir. "
                                   "`start` and `status` print the tracking URI on a line of their own; `start` "
                                   "reports a running server instead of starting another; `stop` stops MLflow and "
                                   "PostgreSQL and keeps the data. `status` exits 1 when the server is down.")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--dir", help="folder of the database, artifacts, logs and state (default mlruns/server)")
    p.add_argument("--port", type=int, help="MLflow's port on 127.0.0.1 for `start` (default 5000; 0 = any free "
                                            "port)")
    p.set_defaults(func=_server)

    p = sub.add_parser("judge", help="pool what an experiment's configurations retrieve for your questions and judge "
                                     "it on a local page; writes a judged set for dataset.questions=",
                       description="Pool the top --depth passages of the experiment's FINISHED configurations for "
                                   "the questions (unique (question, passage) pairs, the most often retrieved "
                                   "first) and serve a judging page on 127.0.0.1: relevant / partly / not relevant "
                                   "by click or key, evidence by selecting text. Every judgement is saved as it is "
                                   "made; starting again with the same inputs resumes. The judged set "
                                   "(<folder>/judged.jsonl) re-scores the configurations with run/sweep "
                                   "dataset.questions=..., replaying their cached first stages; runs on it log "
                                   "judged_at_10 and pool_depth. The page and the console show the leading "
                                   "configuration, those that could still overtake it, and when the judgements "
                                   "decide it whatever the unjudged passages turn out to be: 'decided: X leads "
                                   "every other configuration on the judged pool'.")
    p.add_argument("--experiment", required=True, help="MLflow experiment whose FINISHED configurations are pooled")
    p.add_argument("--questions", required=True, help="your questions: .jsonl or .csv as for dataset.questions "
                                                      "(evidence and doc optional)")
    p.add_argument("--depth", type=int, default=10, help="passages pooled per configuration and question "
                                                         "(default 10)")
    p.add_argument("--port", type=int, default=5050, help="port on 127.0.0.1 (default 5050; 0 = any free port)")
    p.add_argument("--out", help="judging folder (default: beside the questions file, FILE.judged/)")
    p.add_argument("--sweep", help="only the configurations of this sweep id (tag sweep_id)")
    p.add_argument("--order", default="question",
                   help="which passage comes next: question (default: one question at a time, the most retrieved "
                        "first), global (the most retrieved first across questions), decisive (the passage whose "
                        "judgement is expected to raise most the leading configuration's worst-case lead over those "
                        "that could still overtake it)")
    p.add_argument("--assessor", help="your name, recorded with each judgement (default: the OS user); a second "
                                      "person runs a second page on the same questions with their own name")
    p.add_argument("--overlap", type=float, default=0.0,
                   help="share of the pool every assessor judges, to measure agreement (Cohen's kappa), e.g. 0.1 "
                        "(default 0: each passage is judged once)")
    p.set_defaults(func=_judge)


def expand_study(overrides: list[str]) -> list[str]:
    """`retrieval-lab sweep quickstart k=v` -> `+experiments=quickstart k=v` when experiments/quickstart.yaml exists
    (in the config home or the personal config folder)."""
    from retrieval_lab.paths import study_dirs

    if overrides and "=" not in overrides[0] and not overrides[0].startswith("-"):
        name = overrides[0].removesuffix(".yaml")
        folders = study_dirs()
        if any((folder / f"{name}.yaml").exists() for folder in folders):
            return [f"+experiments={name}", *overrides[1:]]
        studies = sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})
        from retrieval_lab.errors import LabError

        raise LabError(f"no study '{name}' in {' or '.join(map(str, folders))} "
                       f"(studies: {', '.join(studies) or 'none'})")
    return overrides
