"""Pooled judging (`retrieval-lab judge`): pool what an experiment's configurations retrieve for your questions
(pool.py), judge each (question, passage) pair once on a local page (server.py, page.html), and keep every
judgement as it is made, with the judged set derived from them (store.py): `dataset.questions=<folder>/judged.jsonl`
re-scores the configurations from their cached first-stage runs. Which pair comes next (order.py: question by
question, global, decisive), when the judgements so far decide the comparison of the configurations (decide.py),
and several assessors on one pool (assessors.py)."""
