"""The exported retriever as a LlamaIndex retriever (`pip install retrieval-lab[llama-index]`):

    from retrieval_lab.integrations.llama_index import LabRetriever
    retriever = LabRetriever.from_export("best.yaml", k=5)
    nodes = retriever.retrieve("vitamin D and bone density")   # or: await retriever.aretrieve(...)
    nodes[0].score, nodes[0].node.ref_doc_id, nodes[0].node.metadata   # page, source, heading_path, offsets

A node is the returned unit; its id is `<doc id>#<start>-<end>` and its source relationship (`ref_doc_id`) the
document id, so evaluations that compare document ids see document ids, not node ids.
"""
from __future__ import annotations

from pathlib import Path

try:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
except ImportError as exc:  # an optional extra
    raise ImportError(f"retrieval_lab.integrations.llama_index needs llama-index-core: "
                      f"pip install 'retrieval-lab[llama-index]' ({exc})") from exc

from retrieval_lab.integrations import ExportSearch


class LabRetriever(BaseRetriever):
    """`Retriever.search` of an export, as `NodeWithScore`s in its order."""

    def __init__(self, search: ExportSearch, **kwargs):
        self.search = search
        super().__init__(**kwargs)

    @classmethod
    def from_export(cls, path: str | Path, k: int = 10, overrides: list[str] | tuple[str, ...] = (),
                    **kwargs) -> "LabRetriever":
        """`overrides` in `retrieval-lab run`'s grammar (e.g. `cache.dir=...`); `kwargs` go to BaseRetriever."""
        return cls(ExportSearch.from_export(path, k, overrides), **kwargs)

    @staticmethod
    def _nodes(hits) -> list[NodeWithScore]:
        nodes = []
        for text, meta in hits:
            node = TextNode(id_=f"{meta['doc_id']}#{meta['start']}-{meta['end']}", text=text, metadata=meta,
                            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=meta["doc_id"])})
            nodes.append(NodeWithScore(node=node, score=meta["score"]))
        return nodes

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._nodes(self.search.hits(query_bundle.query_str))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._nodes(await self.search.ahits(query_bundle.query_str))
