"""Files written whole or not at all (checkpoints, the store's index, results, labels)."""

import os

import pytest

from dvt_prep.atomic import replaced_atomically, write_text_atomically


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "result.json"
    write_text_atomically(path, "old")
    with pytest.raises(RuntimeError), replaced_atomically(path) as temporary:
        with open(temporary, "w") as handle:
            handle.write("half")
        raise RuntimeError("the writer died")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


def test_a_finished_write_replaces_the_file(tmp_path):
    path = tmp_path / "result.json"
    write_text_atomically(path, "old")
    write_text_atomically(path, "new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["result.json"]
