"""`retrieval-lab judge --experiment E --questions FILE`: pool what E's configurations retrieve for your questions and
judge it on a local page (data/judging/). Prints the page's URL on a line of its own; Ctrl-C stops it, and the next
start with the same inputs resumes where the judging stopped. While it runs, the console prints the decision each
time it changes, and a configuration that finishes meanwhile is reported (the page says so too) with the way to
extend the pool."""
from __future__ import annotations

import os
import signal
import threading
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


WATCH_SECONDS = float(os.environ.get("RETRIEVAL_LAB_JUDGE_WATCH_SECONDS", "30"))


def watch_configurations(app, client, command: str, stop: threading.Event) -> None:
    """Every WATCH_SECONDS: tell the page and the console about configurations that finished after the pool was
    made, with the command that extends the pool (the judging so far is kept)."""
    from retrieval_lab.data.judging.pool import new_configurations

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
    from retrieval_lab.data.judging.assessors import (agreement_lines, check_assessor, check_overlap,
                                                      default_assessor)
    from retrieval_lab.data.judging.order import check_order
    from retrieval_lab.data.judging.pool import experiment_configurations, judging_questions, open_pool
    from retrieval_lab.data.judging.server import JudgingApp, make_server
    from retrieval_lab.data.judging.store import JudgementStore
    from retrieval_lab.errors import LabError

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
