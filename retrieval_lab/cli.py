"""`retrieval-lab` command line. Heavy libraries are imported inside each command, so `--help` stays instant."""
from __future__ import annotations

import argparse
import os
import sys

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


def cmd_data_list(args) -> int:
    from retrieval_lab.data import data_root
    from retrieval_lab.data.listing import dataset_rows

    root = data_root(args.root)
    if not root.is_dir():
        print(f"no data folder at {root} (set RETRIEVAL_LAB_DATA or --root, or `retrieval-lab data pull scifact`)")
        return 1
    rows = dataset_rows(root)
    if not rows:
        print(f"no datasets under {root} (`retrieval-lab data pull scifact`, or your own documents: "
              "`retrieval-lab data import FOLDER --name NAME`)")
        return 1
    header = ("dataset", "docs", "questions", "what")
    table = [header, *((r.name, r.docs, r.questions, r.what) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    print(f"datasets under {root} (run one with dataset=NAME)")
    for row in table:
        print("  " + "  ".join(f"{c:<{w}}" for c, w in zip(row[:3], widths)) + "  " + row[3])
    return 0


def cmd_data_pull(args) -> int:
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import data_root, pull
    from retrieval_lab.errors import ConfigError

    url, md5 = args.url, args.md5
    if url is None:  # the dataset option as `run` finds it (shipped, personal config folder or cache conf/)
        try:
            node = compose_config([f"dataset={args.name}"]).dataset
        except ConfigError:
            raise LabError(f"unknown dataset '{args.name}': no dataset option of that name; pass --url (and "
                           "--md5), or see `retrieval-lab info` for the config folders searched") from None
        url, md5 = node.get("url"), md5 or node.get("md5")
        if not url:
            raise LabError(f"dataset '{args.name}' has no download URL in its config; pass --url")
    root = data_root(args.root)
    dest = pull(args.name, url, root, md5)
    print(f"{args.name}: unpacked into {dest}")
    return 0


def cmd_data_import(args) -> int:
    from retrieval_lab.data import data_root
    from retrieval_lab.data.named import import_named
    from retrieval_lab.paths import user_conf_dir

    result = import_named(args.folder, args.name, data_root(args.root), user_conf_dir(args.cache_dir),
                          on_error=args.on_error, include=args.include, questions=args.questions)
    print("\n".join(result.lines()))
    return 0


def cmd_data_synth(args) -> int:
    from retrieval_lab.data import data_root
    from retrieval_lab.data.synth.build import synthesize

    options = {k: getattr(args, k) for k in ("window", "terms", "dropout", "inflect", "model", "base_url",
                                              "api_key_env", "concurrency", "timeout", "retries", "temperature",
                                              "price_per_1k_tokens")}
    result = synthesize(args.dataset, args.out, args.generator, args.queries, seed=args.seed,
                        root=data_root(args.root), cache_dir=args.cache_dir, lexical_check=args.lexical_check,
                        **options)
    print("\n".join(result.lines()))
    return 0


def cmd_data_synth_corpus(args) -> int:
    from pathlib import Path

    from retrieval_lab.data import data_root
    from retrieval_lab.data import load_dataset
    from retrieval_lab.data.beir import load_queries
    from retrieval_lab.data.synthetic_corpus import fit, write_corpus

    root = data_root(args.root)
    source = Path(args.like).expanduser() if Path(args.like).expanduser().is_dir() else root / args.like
    dataset = load_dataset(source)
    model = fit(dataset.corpus, load_queries(dataset.path / "queries.jsonl"))
    report = write_corpus(model, root / args.out, args.docs, args.queries, args.seed, args.topic_weight)
    print("\n".join(report.lines()))
    return 0


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _cache(args):
    from retrieval_lab.cache import STAGE_VERSIONS, Cache

    cache = Cache(args.dir)
    stage = getattr(args, "stage", None)
    if stage is not None and stage not in STAGE_VERSIONS and not (cache.root / stage).is_dir():
        raise LabError(f"--stage {stage}: no such cache stage (known: {', '.join(sorted(STAGE_VERSIONS))})")
    return cache


def cmd_cache_ls(args) -> int:
    import time as _time

    cache = _cache(args)
    entries = cache.entries(args.stage)
    print(f"cache at {cache.root}: {len(entries)} entries, {_human(sum(e.bytes for e in entries))}")
    for e in sorted(entries, key=lambda e: (e.stage, -e.last_used)):
        created = _time.strftime("%Y-%m-%d %H:%M", _time.localtime(e.created))
        used = _time.strftime("%Y-%m-%d %H:%M", _time.localtime(e.last_used))
        print(f"  {e.stage:<18} {e.key[:16]}  {_human(e.bytes):>9}  created {created}  used {used}")
    return 0


def cmd_cache_du(args) -> int:
    cache = _cache(args)
    totals: dict[str, list] = {}
    for e in cache.entries(args.stage):
        totals.setdefault(e.stage, [0, 0])
        totals[e.stage][0] += 1
        totals[e.stage][1] += e.bytes
    print(f"cache at {cache.root}")
    for stage, (count, size) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"  {stage:<18} {count:>6} entries  {_human(size):>9}")
    print(f"  {'total':<18} {sum(c for c, _ in totals.values()):>6} entries  "
          f"{_human(sum(s for _, s in totals.values())):>9}")
    return 0


def cmd_cache_prune(args) -> int:
    if args.stage is None and args.unused_days is None and not args.all:
        raise LabError("cache prune needs --stage STAGE, --unused-days N or --all (nothing was deleted)")
    cache = _cache(args)
    if args.dry_run:
        import time as _time

        cutoff = _time.time() - args.unused_days * 86400 if args.unused_days is not None else None
        doomed = [e for e in cache.entries(args.stage) if cutoff is None or e.last_used < cutoff]
        print(f"would delete {len(doomed)} entries, {_human(sum(e.bytes for e in doomed))} from {cache.root}")
        return 0
    removed = cache.prune(args.stage, args.unused_days)
    print(f"deleted {len(removed)} entries, {_human(sum(e.bytes for e in removed))} from {cache.root}")
    return 0


def cmd_cache_verify(args) -> int:
    cache = _cache(args)
    counts = {"entries": 0, "bytes": 0}

    def report(info, problem):
        counts["entries"] += 1
        counts["bytes"] += info.bytes
        if problem is not None:
            print(f"  corrupt  {info.stage:<18} {info.key[:16]}  {problem}", flush=True)

    damaged = cache.verify(args.stage, delete=args.delete, on_entry=report)
    print(f"verified {counts['entries']} entries ({_human(counts['bytes'])}) in {cache.root}: "
          f"{len(damaged)} corrupt")
    if damaged and args.delete:
        print(f"deleted {len(damaged)} corrupt entries (they are rebuilt when next needed)")
    elif damaged:
        print("run again with --delete to remove them (they are rebuilt when next needed)")
    return 1 if damaged else 0


def cmd_info(args) -> int:
    from retrieval_lab.about import report

    print("\n".join(report(args.overrides)))
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
    data = sub.add_parser("data", help="list, download or import datasets").add_subparsers(dest="data_command",
                                                                                     required=True)
    p = data.add_parser("list", help="datasets under the data root (BEIR sets, imports of your documents, "
                        "synthetic sets) with their document and question counts")
    p.add_argument("--root", help="data root (default: $RETRIEVAL_LAB_DATA or ./data)")
    p.set_defaults(func=cmd_data_list)
    p = data.add_parser("pull", help="download a BEIR dataset zip, check its md5, unpack under the data root")
    p.add_argument("name")
    p.add_argument("--root", help="data root (default: $RETRIEVAL_LAB_DATA or ./data)")
    p.add_argument("--url", help="zip URL (default: the dataset config's url)")
    p.add_argument("--md5", help="expected md5 (default: the dataset config's md5)")
    p.set_defaults(func=cmd_data_pull)
    p = data.add_parser("import", help="import a folder of .md, .txt, .html/.htm and .pdf files as a corpus under "
                        "the data root (again: only changed files are read); ends with a report of what was skipped")
    p.add_argument("folder")
    p.add_argument("--name", required=True, help="dataset name: written to <data root>/NAME, run it with "
                   "dataset=NAME (imported again when the folder changes)")
    p.add_argument("--questions", help="your questions (.jsonl or .csv, as for dataset.questions): dataset=NAME "
                   "evaluates on them")
    p.add_argument("--cache-dir", help="cache root whose conf/ holds the dataset option (default: "
                   "$RETRIEVAL_LAB_CACHE or ~/.cache/retrieval-lab)")
    p.add_argument("--root", help="data root (default: $RETRIEVAL_LAB_DATA or ./data)")
    p.add_argument("--on-error", choices=("skip", "fail"), default="skip",
                   help="an unreadable document (corrupt or encrypted PDF, undecodable text, empty file) is "
                        "skipped and reported (default), or fails the import")
    p.add_argument("--include", action="append", metavar="GLOB",
                   help="import only files whose relative path matches this glob (matched from the right: '*.html' "
                        "at any depth); repeat for several patterns (default: every supported file)")
    p.set_defaults(func=cmd_data_import)
    _add_synth_parser(data)
    p = data.add_parser("synth-corpus", help="a synthetic corpus of any size for scale tests: words and document "
                        "shapes fitted on a real corpus, N documents sampled from them, known-item queries "
                        "(deterministic by seed; streamed, never held in memory)")
    p.add_argument("--like", required=True, help="real dataset to fit on: a name under the data root or a BEIR folder")
    p.add_argument("--docs", type=int, required=True, help="documents to write (e.g. 1000000)")
    p.add_argument("--out", required=True, help="new dataset name: written to <data root>/NAME "
                   "(run it with dataset.path=<data root>/NAME)")
    p.add_argument("--queries", type=int, default=200, help="known-item queries (default 200)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--topic-weight", type=float, default=0.9, help="share of each document's words drawn from its "
                   "seed documents rather than the whole corpus (default 0.9)")
    p.add_argument("--root", help="data root (default: $RETRIEVAL_LAB_DATA or ./data)")
    p.set_defaults(func=cmd_data_synth_corpus)

    cache = sub.add_parser("cache", help="list, size, verify or prune the content-addressed cache").add_subparsers(
        dest="cache_command", required=True)
    for name, func, text in (("ls", cmd_cache_ls, "entries with stage, key, size, creation and last use"),
                             ("du", cmd_cache_du, "disk use per stage"),
                             ("verify", cmd_cache_verify, "full sha256 check of every entry; exit code 1 when any "
                              "is corrupt (a cache hit checks only sizes, file edges and .npy headers)"),
                             ("prune", cmd_cache_prune, "delete entries (of a stage, unused for N days, or all)")):
        p = cache.add_parser(name, help=text)
        p.add_argument("--dir", help="cache folder (default: $RETRIEVAL_LAB_CACHE or ~/.cache/retrieval-lab)")
        p.add_argument("--stage", help="only this stage (embeddings, indexes, onnx_models, first_stage_runs, ...)")
        if name == "prune":
            p.add_argument("--unused-days", type=float, help="only entries not used for this many days")
            p.add_argument("--all", action="store_true", help="every entry (of --stage when given)")
            p.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
        if name == "verify":
            p.add_argument("--delete", action="store_true", help="delete the corrupt entries")
        p.set_defaults(func=func)
    return parser


def _add_synth_parser(data) -> None:
    from retrieval_lab.data.synth import GENERATORS

    p = data.add_parser("synth", help="generate questions from a dataset's corpus into a new dataset (the same "
                        "corpus, the passages as evidence; dataset=NEW runs on it, tagged eval_set=synthetic)")
    p.add_argument("--dataset", required=True, help="source dataset under the data root (or a BEIR folder)")
    p.add_argument("--generator", required=True, help=f"one of {', '.join(GENERATORS)}")
    p.add_argument("--queries", type=int, required=True, help="number of questions")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0): the same seed, the same set")
    p.add_argument("--out", required=True, help="new dataset name: written to <data root>/NEW, option dataset=NEW")
    p.add_argument("--root", help="data root (default: $RETRIEVAL_LAB_DATA or ./data)")
    p.add_argument("--cache-dir", help="cache root for llm answers and the dataset option (default: "
                   "$RETRIEVAL_LAB_CACHE or ~/.cache/retrieval-lab)")
    p.add_argument("--window", type=int, help="sentences per passage (default 2)")
    p.add_argument("--lexical-check", action="store_true", help="also score BM25 MRR@10 / nDCG@10 of the questions "
                   "against their source sentences copied verbatim (recorded in synth.json)")
    p.add_argument("--terms", type=int, help="extract: key terms per question (default 5)")
    p.add_argument("--dropout", type=float, help="extract: chance of dropping each rarest term (default 0.3); "
                   "title: each content word of the heading (default 0)")
    p.add_argument("--inflect", type=float, help="extract, title: share of words written in another form of their "
                   "stem found in the corpus (extract default 1, title default 0)")
    p.add_argument("--model", help="llm: the model the endpoint serves; doc2query: Hugging Face name or folder")
    p.add_argument("--base-url", help="llm: OpenAI-compatible API root (default http://127.0.0.1:8000/v1)")
    p.add_argument("--api-key-env", help="llm: environment variable holding the API key (default OPENAI_API_KEY; "
                   "unset: no key is sent, as local servers need none)")
    p.add_argument("--concurrency", type=int, help="llm: requests in flight (default 4)")
    p.add_argument("--timeout", type=float, help="llm: seconds per request (default 60)")
    p.add_argument("--retries", type=int, help="llm: retries after a 429, 5xx or timeout, with exponential "
                   "backoff (default 5)")
    p.add_argument("--temperature", type=float, help="llm: sampling temperature (default 0.7)")
    p.add_argument("--price-per-1k-tokens", type=float, help="llm: price of 1,000 tokens, for the cost printed "
                   "(default 0)")
    p.set_defaults(func=cmd_data_synth)


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
        from retrieval_lab.training.cli import main_train

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
