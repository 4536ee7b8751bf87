"""`retrieval-lab judge --experiment E --questions FILE`: pool what E's configurations retrieve for your questions and
judge it on a local page (data/judging/). Prints the page's URL on a line of its own; Ctrl-C stops it, and the next
start with the same inputs resumes where the judging stopped."""
from __future__ import annotations

import signal
from pathlib import Path

from retrieval_lab.data.judging.store import JUDGED_SET

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


def cmd_judge(args) -> int:
    from retrieval_lab import tracking
    from retrieval_lab.data.judging.pool import experiment_configurations, judging_questions, open_pool
    from retrieval_lab.data.judging.server import JudgingApp, make_server
    from retrieval_lab.data.judging.store import JudgementStore
    from retrieval_lab.errors import LabError

    if args.depth < 1:
        raise LabError(f"--depth must be a positive number of passages per configuration, got {args.depth}")
    questions = Path(args.questions)
    judging_questions(questions)  # a malformed questions file fails before any work, naming its line
    folder = judging_folder(questions, args.out)
    client = tracking.client({})
    configurations = experiment_configurations(client, args.experiment, args.sweep)
    pool, corpus, resumed = open_pool(folder, configurations, questions, args.depth, args.experiment, args.sweep,
                                      report=lambda line: print(line, flush=True))
    store = JudgementStore(folder)
    app = JudgingApp(folder, pool, store, corpus)
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
    print(f"judged set: {judged} (dataset.questions=...), qrels: {folder / 'qrels.tsv'}")
    print(f"re-score:   {rescore_command(pool, judged)}")
    print("judging page (127.0.0.1 only; Ctrl-C stops it):")
    print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print(f"stopped: {app.judged()} of {state['total']} judged; judged set {judged}")
    return 0
