"""The exported retriever as a LangChain retriever (`pip install retrieval-lab[langchain]`):

    from retrieval_lab.integrations.langchain import LabRetriever
    retriever = LabRetriever.from_export("best.yaml", k=5)
    docs = retriever.invoke("vitamin D and bone density")      # or: await retriever.ainvoke(...)
    docs[0].metadata  # doc_id, score, rank, title, start, end, source, page, source_offset, heading_path

`Document.page_content` is the returned unit (the `unit` setting of the export: chunk, window, section, document).
"""
from __future__ import annotations

from pathlib import Path

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict
except ImportError as exc:  # an optional extra
    raise ImportError(f"retrieval_lab.integrations.langchain needs langchain-core: "
                      f"pip install 'retrieval-lab[langchain]' ({exc})") from exc

from retrieval_lab.integrations import ExportSearch


class LabRetriever(BaseRetriever):
    """`Retriever.search` of an export, as `Document`s in its order (`id` = the document id)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    search: ExportSearch

    @classmethod
    def from_export(cls, path: str | Path, k: int = 10, overrides: list[str] | tuple[str, ...] = (),
                    **kwargs) -> "LabRetriever":
        """`overrides` in `retrieval-lab run`'s grammar (e.g. `cache.dir=...`); `kwargs` go to BaseRetriever
        (tags, metadata)."""
        return cls(search=ExportSearch.from_export(path, k, overrides), **kwargs)

    @staticmethod
    def _documents(hits) -> list[Document]:
        return [Document(page_content=text, metadata=meta, id=meta["doc_id"]) for text, meta in hits]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self._documents(self.search.hits(query))

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        return self._documents(await self.search.ahits(query))
