"""data list beside the real BEIR sets: imports and BEIR sets with their counts (tests/unit/test_named_import.py: the
rest, on hand-made folders)."""
from __future__ import annotations

import os

from retrieval_lab.cli import main as cli_main
from tests.unit.test_named_import import lab


def test_data_list_shows_imports_and_beir_sets_with_their_counts(lab, capsys, data_root):
    tmp_path, docs, questions = lab
    assert cli_main(["data", "import", str(docs), "--name", "pets", "--questions", str(questions),
                     "--include", "*.md", "--include", "*.pdf"]) == 0
    assert cli_main(["data", "import", str(docs), "--name", "bare"]) == 0
    os.symlink(data_root / "scifact", tmp_path / "data" / "scifact")
    capsys.readouterr()
    assert cli_main(["data", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["pets"].split()[1:3] == ["2", "2"], rows["pets"]  # 2 documents (md, pdf), 2 questions
    assert f"documents of {docs} (*.md, *.pdf)" in rows["pets"]
    assert rows["bare"].split()[1:3] == ["4", "0"] and "no questions yet" in rows["bare"]
    assert "data synth" in rows["bare"]
    assert rows["scifact"].split()[1:3] == ["5,183", "1,109"] and "test: 300 q" in rows["scifact"]
