"""`doc2query`: a seq2seq query-generation model (Hugging Face name or local folder) writes a question per passage.

For example BeIR/query-gen-msmarco-t5-base-v1 where the network (or the Hugging Face cache) has it. Decoding samples
with top-k 10 / top-p 0.95 as BEIR's query generation does, seeded from `--seed`, so a run is reproducible on the
same hardware; `sample: false` decodes greedily.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval_lab.data.synth.base import Passage, SynthError, SynthQuestion, sample_passages, take
from retrieval_lab.errors import ModelNotFoundError
from retrieval_lab.types import Corpus


@dataclass
class Doc2QueryGenerator:
    model: str | None = None
    max_input_tokens: int = 384
    max_new_tokens: int = 64
    batch_size: int = 16
    sample: bool = True
    window: int = 2
    device: str | None = None  # cuda when available, else cpu

    name = "doc2query"

    def __post_init__(self):
        if not self.model:
            raise SynthError("--generator doc2query needs --model", "a Hugging Face name such as "
                             "BeIR/query-gen-msmarco-t5-base-v1, or a local model folder")

    def settings(self) -> dict:
        return {"model": self.model, "max_input_tokens": self.max_input_tokens,
                "max_new_tokens": self.max_new_tokens, "sample": self.sample, "window": self.window}

    def generate(self, corpus: Corpus, n: int, rng: np.random.Generator) -> list[SynthQuestion]:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model)
            model = AutoModelForSeq2SeqLM.from_pretrained(self.model)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"doc2query model {self.model!r} cannot be loaded: {str(exc).splitlines()[0]}"
                                     "\n  fix: give a local model folder, or a Hugging Face name with the network "
                                     "(or HF_HUB_OFFLINE unset) to download it") from None
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model.to(device).eval()
        torch.manual_seed(int(rng.integers(2**31)))

        def ask(passages: list[Passage]) -> list[str | None]:
            batch = tokenizer([p.text for p in passages], truncation=True, max_length=self.max_input_tokens,
                              padding=True, return_tensors="pt").to(device)
            batch.pop("token_type_ids", None)  # BERT-style tokenizers add it; seq2seq models take no such input
            with torch.inference_mode():
                out = model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=self.sample,
                                     top_k=10 if self.sample else None, top_p=0.95 if self.sample else None)
            return [" ".join(t.split()) for t in tokenizer.batch_decode(out, skip_special_tokens=True)]

        return take(sample_passages(corpus, rng, self.window), n, ask, batch=self.batch_size,
                    what=f"{len(corpus)} documents (the model gave empty questions for the rest)")
