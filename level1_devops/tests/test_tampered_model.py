"""Level 1's service serves only the model file handed off: its SHA-256 must be the one in the metadata handed
off with it, checked before the file is unpickled. One byte changed, or the file swapped for a pickle that runs
code when loaded, is refused with one clear line, and the swapped-in code never runs. (An appended tail, a
missing file and broken metadata: test_pipeline.py.)"""

import pickle
import shutil
from pathlib import Path

import pytest

from level1.service import ModelFileError, load_model_file


class Payload:
    """What an attacker puts in a model file: unpickling it writes ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "executed"))


@pytest.fixture
def handoff(trained, tmp_path) -> Path:
    """A copy of the handed-off folder (model.pkl + model.json) to tamper with."""
    shutil.copytree(trained.handoff_dir, tmp_path / "handoff")
    return tmp_path / "handoff" / "model.pkl"


def test_one_byte_changed_is_refused_naming_the_file_and_the_hashes(handoff):
    data = bytearray(handoff.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte: same size, same name
    handoff.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as refused:
        load_model_file(handoff)
    message = str(refused.value)
    assert "\n" not in message and str(handoff) in message and "SHA-256" in message
    assert message.endswith("refusing to serve a model that is not the one handed off")


def test_a_pickle_that_runs_code_is_refused_before_it_is_loaded(handoff, tmp_path):
    marker = tmp_path / "executed.txt"
    evil = pickle.dumps(Payload(marker))
    pickle.loads(evil)  # the control: unpickled, it runs
    assert marker.read_text() == "executed"
    marker.unlink()

    handoff.write_bytes(evil)
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_model_file(handoff)
    assert not marker.exists()
