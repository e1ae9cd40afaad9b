import pickle

import pytest
import torch

from prunelab.errors import PrunelabError
from prunelab.lm.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_gives_identical_outputs(trained_lm, tmp_path):
    lm, vocab, _ = trained_lm
    model = lm.model
    path = save_checkpoint(tmp_path / "m.pt", model, vocab, {"note": "x"})
    loaded, loaded_vocab, info = load_checkpoint(path)
    tokens = torch.randint(0, len(vocab), (2, 10))
    assert torch.equal(model(tokens), loaded(tokens))
    assert loaded_vocab.words == vocab.words and loaded_vocab.oov_penalty == vocab.oov_penalty
    assert info["note"] == "x"
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("*.tmp"))


def test_missing_truncated_and_foreign_files_are_refused(trained_lm, tmp_path):
    model, vocab = trained_lm[0].model, trained_lm[1]
    with pytest.raises(PrunelabError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    data = save_checkpoint(tmp_path / "m.pt", model, vocab).read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(PrunelabError, match="cannot be loaded"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(PrunelabError, match="not a prunelab checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_refused_not_run(tmp_path, capsys):
    with open(tmp_path / "evil.pt", "wb") as handle:
        torch.save({"format": "prunelab-lm", "x": Payload()}, handle, pickle_module=pickle)
    with pytest.raises(PrunelabError, match="cannot be loaded safely"):
        load_checkpoint(tmp_path / "evil.pt")
    assert "pickled code ran" not in capsys.readouterr().out
