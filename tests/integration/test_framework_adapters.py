"""The exported retriever inside LangChain (langchain-core) and LlamaIndex (llama-index-core): `from_export` gives,
sync and async, exactly `Retriever.search`'s top 10 (ids, order, scores, text) for a chunked BM25 + WordLlama hybrid
export on Cranfield with small-to-big units (a window of chunks), and the metadata a RAG application cites: source
file, PDF page, heading path and offsets of imported documents."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from retrieval_lab import load_retriever, tracking
from retrieval_lab.config import compose_config
from retrieval_lab.integrations.langchain import LabRetriever as LangChainRetriever
from retrieval_lab.integrations.llama_index import LabRetriever as LlamaIndexRetriever
from retrieval_lab.pipeline import run_experiment
from retrieval_lab.pipeline.export import export_run
from retrieval_lab.pipeline.tracked import log_outcome
from tests.unit.test_folder_import import make_docs

QUERIES = 25  # of Cranfield's 225 queries: each goes through search and four adapter calls


def export(cfg, folder):
    outcome = run_experiment(cfg)
    uri = str(cfg.tracking.uri)
    run_id = log_outcome(cfg, outcome)
    return export_run(tracking.client({"uri": uri}), run_id, folder / "best.yaml"), outcome


@pytest.fixture(scope="module")
def hybrid_export(data_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapters")
    cfg = compose_config([f"dataset.root={data_root}", "dataset=cranfield", "retriever=hybrid", "embedder=wordllama",
                          "embedder.progress=false", "chunker=fixed_tokens", "chunker.size=64",
                          "chunker.overlap=16", "unit=window", "unit.window=1",
                          f"tracking.uri=sqlite:///{folder}/mlflow.db", "tracking.experiment=adapters"])
    path, outcome = export(cfg, folder)
    return path, outcome.dataset.queries.texts[:QUERIES]


def test_langchain_and_llama_index_return_search_top_10(hybrid_export):
    path, queries = hybrid_export
    retriever = load_retriever(path)
    assert len(retriever.passages) > 1400  # chunked: more passages than documents
    langchain = LangChainRetriever.from_export(path, k=10)
    llama = LlamaIndexRetriever.from_export(path, k=10)
    passages = retriever.passages
    spans = {}
    for doc, start, end in zip(passages.doc_ids, passages.starts, passages.ends):
        spans.setdefault(doc, []).append((int(start), int(end)))
    widened = 0  # hits whose unit holds more than one chunk (small-to-big)
    for query in queries:
        hits = retriever.search(query, k=10)
        want = [(h["doc_id"], h["score"], h["passage"]) for h in hits]
        widened += sum(sum(h["start"] <= s and e <= h["end"] for s, e in spans[h["doc_id"]]) > 1 for h in hits)
        docs = langchain.invoke(query)
        adocs = asyncio.run(langchain.ainvoke(query))
        nodes = llama.retrieve(query)
        anodes = asyncio.run(llama.aretrieve(query))
        for got in (docs, adocs):
            assert [(d.metadata["doc_id"], d.metadata["score"], d.page_content) for d in got] == want
            assert [d.id for d in got] == [doc for doc, _, _ in want]
        for got in (nodes, anodes):
            assert [(n.node.ref_doc_id, n.score, n.node.get_content()) for n in got] == want
        assert [d.metadata["rank"] for d in docs] == list(range(1, 11))
        assert all(0 <= d.metadata["start"] < d.metadata["end"] for d in docs)
        assert nodes[0].node.node_id == f"{want[0][0]}#{docs[0].metadata['start']}-{docs[0].metadata['end']}"
    assert widened > 5 * len(queries)


def test_concurrent_async_calls_each_get_their_own_answer(hybrid_export):
    path, queries = hybrid_export
    langchain = LangChainRetriever.from_export(path, k=3)
    want = [[d.metadata["doc_id"] for d in langchain.invoke(q)] for q in queries[:6]]

    async def all_at_once():
        return await asyncio.gather(*(langchain.ainvoke(q) for q in queries[:6]))

    got = asyncio.run(all_at_once())
    assert [[d.metadata["doc_id"] for d in docs] for docs in got] == want


def test_imported_documents_carry_file_page_heading_and_offsets(tmp_path):
    docs = make_docs(tmp_path / "docs")
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"question": "dogs and strangers", "evidence": ["Dogs bark at strangers."]}) + "\n"
                         + json.dumps({"question": "what to install before building",
                                       "evidence": ["a C compiler"]}) + "\n")
    cfg = compose_config([f"dataset.path={docs}", f"dataset.questions={questions}", "retriever=bm25",
                          "chunker=fixed_tokens", "chunker.size=8", "chunker.overlap=0", "unit=section",
                          f"cache.dir={tmp_path / 'cache'}", "eval.k=[1,3]", "eval.depth=3",
                          f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])
    path, _ = export(cfg, tmp_path)
    (doc,) = LangChainRetriever.from_export(path, k=1).invoke("dogs bark strangers")
    meta = doc.metadata
    assert (meta["doc_id"], meta["source"], meta["page"], meta["heading_path"]) == \
        ("manual.pdf", "manual.pdf", 2, ["Advanced use"])
    assert "Dogs bark at strangers." in doc.page_content and meta["source_offset"] >= 0
    (node,) = LlamaIndexRetriever.from_export(path, k=1).retrieve("C compiler make requirements")
    meta = node.node.metadata
    assert (meta["doc_id"], meta["source"], meta["page"], meta["heading_path"]) == \
        ("guide/install.md", "guide/install.md", None, ["Requirements"])
    text = load_retriever(path).corpus.texts[load_retriever(path).corpus.ids.index("guide/install.md")]
    assert text[meta["start"]:meta["end"]] == node.node.get_content()


def test_the_core_never_imports_the_frameworks():
    code = ("import sys, retrieval_lab.cli, retrieval_lab.pipeline, retrieval_lab.commands.export, retrieval_lab.pipeline.export, "
            "retrieval_lab.dense;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'llama_index', 'chromadb')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
