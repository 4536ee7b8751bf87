"""The unit suite's guard (tests/unit/guard.py) on the real model libraries: their loaders fail while it is on, and
run as usual while it is off (here, outside the unit suite, it is switched on by hand)."""
from __future__ import annotations

import pytest

from tests.unit import guard


def test_sentence_transformers_and_transformers_loaders_fail_under_the_guard():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from transformers import PreTrainedModel

    if not guard._installed:  # the unit suite's conftest has not, in this process (its roots are left as they are)
        guard.install(None, None)
    guard.take_violations()
    loaders = [(lambda: sentence_transformers.SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2"),
                "sentence_transformers.SentenceTransformer"),
               (lambda: sentence_transformers.CrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2"),
                "sentence_transformers.CrossEncoder"),
               (lambda: PreTrainedModel.from_pretrained("bert-base-uncased"), "PreTrainedModel.from_pretrained")]
    for load, name in loaders:
        with guard.active(), pytest.raises(guard.UnitTestGuardError, match=rf"loads a real model \(.*{name}\)"):
            load()
        assert len(guard.take_violations()) == 1
    with pytest.raises(Exception) as off:  # guard off: the library itself answers (no such model offline)
        PreTrainedModel.from_pretrained("no-such-org/no-such-model")
    assert not isinstance(off.value, guard.UnitTestGuardError)
