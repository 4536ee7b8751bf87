"""`retrieval-lab data list|pull|import|synth|synth-corpus`: datasets under the data root. Libraries are imported inside
each command, so `--help` stays instant."""
from __future__ import annotations

from retrieval_lab.errors import LabError


def add_data_parser(sub) -> None:
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
