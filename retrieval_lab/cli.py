"""`retrieval-lab` command line: builds the parser and dispatches to `commands/` (`run` and `sweep` to the Hydra app in
`app.py`). Heavy libraries are imported inside each command, so `--help` stays instant."""
from __future__ import annotations

import argparse
import os
import sys

from retrieval_lab.commands.cache import add_cache_parser
from retrieval_lab.commands.data import add_data_parser
from retrieval_lab.commands.info import cmd_info
from retrieval_lab.errors import LabError

HYDRA_COMMANDS = {
    "run": "evaluate one configuration (Hydra overrides: dataset=scifact retriever=bm25 retriever.k1=1.2)",
    "sweep": "Hydra multirun over config keys (retriever.k1=0.6,0.9,1.2), or a study: sweep quickstart [k=v ...]; "
             "one line per configuration, then the leaderboard (`retrieval-lab -v sweep ...`: every metric)",
}
VERBOSE_FLAGS = ("-v", "--verbose")
VERBOSE_HELP = ("before the command: full metrics table of each sweep configuration, library INFO logs, Hydra's "
                "job lines (e.g. retrieval-lab -v sweep quickstart)")


TRAIN_COMMANDS = {
    "train-embedder": "fine-tune a bi-encoder on a split's queries (dataset=scifact split=train base=minilm_l6 "
                      "epochs=1 hard_negatives=1 name=...); registered for embedder=<name>",
    "train-reranker": "train a cross-encoder from an encoder body (dataset=scifact split=train base=minilm_l6 ...); "
                      "registered for reranker=<name>",
}


def _hydra(command: str, overrides: list[str]) -> int:
    from retrieval_lab import app
    from retrieval_lab.config import cache_dirs_in, check_renamed_keys
    from retrieval_lab.paths import hydra_search_path

    misplaced = [o for o in overrides if o in VERBOSE_FLAGS]
    if misplaced:  # Hydra would reject it as an unknown argument, with its usage text
        rest = " ".join(o for o in overrides if o not in VERBOSE_FLAGS)
        print(f"error: {misplaced[0]} goes before the command: retrieval-lab {misplaced[0]} {command} {rest}".rstrip(),
              file=sys.stderr)
        return 2

    if command == "sweep":  # `sweep quickstart ...` = `sweep +experiments=quickstart ...` (experiments/*.yaml)
        from retrieval_lab.commands import expand_study

        try:
            overrides = expand_study(overrides)
        except LabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    check_renamed_keys([o for o in overrides if not o.startswith("hydra.")])
    argv = [f"retrieval-lab {command}", *overrides]
    if not any(o.startswith("hydra.searchpath") for o in overrides):
        # registered models' options (embedder=<name>) live in <cache>/conf of the cache the run uses
        try:
            cache_dirs = cache_dirs_in([o for o in overrides if "=" in o and not o.startswith("-")])
        except LabError:  # Hydra reports a malformed override itself, with its grammar
            cache_dirs = [None]
        argv.append(f"hydra.searchpath={hydra_search_path(cache_dirs)}")
    if command == "sweep" and "-m" not in overrides and "--multirun" not in overrides:
        argv.append("--multirun")
    sys.argv = argv
    app.main()
    return 0


class VersionAction(argparse.Action):
    """`--version`: the version and `info`'s report (argparse's own version action prints a fixed string)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            parser.exit(cmd_info(argparse.Namespace(overrides=[])))
        except LabError as exc:
            parser.exit(2, f"error: {exc}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retrieval-lab", description="Retrieval quality lab: reproducible chunking, BM25, dense, fusion and reranking experiments.")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--version", action=VersionAction, help="the version, the config folders in use "
                        "(checkout, $RETRIEVAL_LAB_HOME or the installed package), cache and data roots, tracking URI")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in HYDRA_COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)

    for name, help_text in TRAIN_COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text + ". Values are Hydra overrides, as for `run` "
                       f"(every setting, with its default, is in conf/{name.replace('-', '_')}.yaml); eval_splits "
                       "(default [test]) are never trained on; cache.dir is where the model is saved and registered; "
                       "seed=S is the seed (the same seed and threads=N give the same weights on one machine), "
                       "seeds=[0,1,2] trains one model per seed, registered as <name>-seed<s>.")
    from retrieval_lab.commands import add_commands

    add_commands(sub)  # best, search, evaluate, ui
    _add_calibrate_parser(sub)
    p = sub.add_parser("info", help="version, config folders in use, and the cache root, data root and tracking URI "
                       "a run gets (with these overrides: info cache.dir=/x)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for `run`")
    p.set_defaults(func=cmd_info)
    add_data_parser(sub)
    add_cache_parser(sub)
    return parser


def _add_calibrate_parser(sub) -> None:
    def run(args) -> int:
        from retrieval_lab.commands.calibrate import cmd_calibrate

        return cmd_calibrate(args)

    p = sub.add_parser("calibrate", help="how far to trust synthetic questions: rank a study's configurations on a "
                       "dataset's real qrels and on each generator's questions from its corpus (Kendall tau, top "
                       "groups, BM25 rank shift)")
    p.add_argument("--study", default="calibration", help="study whose configurations are ranked (experiments/"
                   "STUDY.yaml; default calibration: 12 BM25, dense and hybrid configurations)")
    p.add_argument("--dataset", required=True, help="a dataset with real queries and qrels (dataset option name)")
    p.add_argument("--generators", default="title,extract", help="comma-separated generators (default title,"
                   "extract); LABEL=GENERATOR names a variant, set with --option LABEL.KEY=VALUE")
    p.add_argument("--option", action="append", metavar="GEN.KEY=VALUE", help="a generator setting, e.g. "
                   "extract.dropout=0.5 or llm.model=NAME (repeatable)")
    p.add_argument("--queries", type=int, default=300, help="synthetic questions per generator (default 300)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--reference", default="bm25", help="the BM25 configuration whose rank shift is reported "
                   "(default bm25)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the top groups (default 0.05)")
    p.add_argument("--trials", type=int, default=10000, help="randomization test trials (default 10000)")
    p.add_argument("--out", help="folder for the questions files and calibration.json (default "
                   "outputs/calibrate/STUDY-DATASET)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every configuration (dataset.split=dev; "
                   "key=a,b sweeps a key as one more dimension)")
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    from retrieval_lab import console

    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    verbose = False
    while argv and argv[0] in VERBOSE_FLAGS:  # global flag, before the command: `retrieval-lab -v sweep ...`
        verbose = True
        argv.pop(0)
    console.set_verbosity(verbose)
    if argv and argv[0] in HYDRA_COMMANDS:
        try:
            return _hydra(argv[0], argv[1:])
        except LabError as exc:  # before Hydra starts: config folders missing ($RETRIEVAL_LAB_HOME, ..._CONFIG)
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if argv and argv[0] in TRAIN_COMMANDS and not {"-h", "--help"} & set(argv[1:]):
        from retrieval_lab.commands.train import main_train

        try:
            return main_train(argv[0].removeprefix("train-"), argv[1:])
        except LabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
