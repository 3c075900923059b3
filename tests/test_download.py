"""Downloads against archives served from 127.0.0.1 (a server with HTTP Range support)."""

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from asdstudy.datasets import clip_table
from asdstudy.datasets.download import Archive, DownloadError, archives, fetch, record_checksums, verify


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _fixture_archive(shared=None) -> bytes:
    files = {f"dev_data/fan/train/normal_id_00_0000000{i}.wav": b"RIFF" + bytes(100) for i in range(3)}
    files["dev_data/fan/test/anomaly_id_00_00000000.wav"] = b"RIFF" + bytes(50)
    return _zip_bytes(files)


def test_fetch_verifies_unpacks_and_marks(server, tmp_path):
    data = _fixture_archive()
    server.files["/dev_data_fan.zip"] = data
    a = Archive("dcase2020-dev", "fan", "dev_data_fan.zip", server.url + "/dev_data_fan.zip",
                hashlib.md5(data).hexdigest())
    fetch(a, tmp_path, progress=False)
    assert len(list((tmp_path / "dev_data/fan/train").glob("*.wav"))) == 3
    assert (tmp_path / ".asdstudy/dev_data_fan.zip.json").exists()
    assert not (tmp_path / ".downloads/dev_data_fan.zip").exists()  # archive removed after unpacking
    v = verify(tmp_path)
    assert v.iloc[0].archive == "dev_data_fan.zip" and v.iloc[0].files == 4 and v.iloc[0].state == "complete"
    n = len(server.requests)
    fetch(a, tmp_path, progress=False)  # marker present: nothing fetched
    assert len(server.requests) == n


def test_checksum_mismatch_deletes_and_explains(server, tmp_path):
    server.files["/dev_data_fan.zip"] = _fixture_archive()
    a = Archive("dcase2020-dev", "fan", "dev_data_fan.zip", server.url + "/dev_data_fan.zip", "0" * 32)
    with pytest.raises(DownloadError, match="dev_data_fan.zip: checksum mismatch"):
        fetch(a, tmp_path, progress=False)
    assert not (tmp_path / "dev_data").exists()
    assert not (tmp_path / ".asdstudy").exists()
    assert not list((tmp_path / ".downloads").glob("*.zip"))


def test_interrupted_download_resumes_with_range(server, tmp_path):
    import os

    big = {"dev_data/fan/train/normal_id_00_00000009.wav": b"RIFF" + os.urandom(400_000)}
    data = _zip_bytes(big)
    server.files["/dev_data_fan.zip"] = data
    md5 = hashlib.md5(data).hexdigest()
    a = Archive("dcase2020-dev", "fan", "dev_data_fan.zip", server.url + "/dev_data_fan.zip", md5)
    server.cut_after = 200_000
    with pytest.raises(DownloadError, match="What arrived is kept; run the same command again to resume"):
        fetch(a, tmp_path, progress=False)
    part = tmp_path / ".downloads/partial/dev_data_fan.zip.part"
    assert part.exists() and 0 < part.stat().st_size < len(data)
    assert not (tmp_path / "dev_data").exists()  # nothing that looks complete
    assert verify(tmp_path).iloc[0].state == "partial download"
    kept = part.stat().st_size
    fetch(a, tmp_path, progress=False)
    assert server.requests[-1]["range"] == f"bytes={kept}-"
    assert (tmp_path / ".asdstudy/dev_data_fan.zip.json").exists()
    assert len(clip_table(tmp_path, layout="dcase2020")) == 1


def test_corrupt_zip_is_reported(server, tmp_path):
    data = b"this is not a zip file at all"
    server.files["/x.zip"] = data
    a = Archive("dcase2020-dev", "fan", "x.zip", server.url + "/x.zip", hashlib.md5(data).hexdigest())
    with pytest.raises(DownloadError, match="x.zip: not a valid zip archive"):
        fetch(a, tmp_path, progress=False)
    assert not (tmp_path / ".asdstudy").exists()


def test_record_metadata_checksums(server, tmp_path, monkeypatch):
    data = _fixture_archive()
    server.files["/api/records/4562016"] = json.dumps(
        {"files": [{"key": "dev_data_fan.zip", "checksum": "md5:" + hashlib.md5(data).hexdigest()}]}).encode()
    server.files["/files/dev_data_fan.zip"] = data
    assert record_checksums("4562016", api=server.url + "/api") == {"dev_data_fan.zip": hashlib.md5(data).hexdigest()}
    monkeypatch.setattr("asdstudy.datasets.download.ZENODO_API", server.url + "/api")
    (a,) = archives("dcase2021-dev", ["fan"], base_url=server.url + "/files")
    assert a.md5 is None and a.record == "4562016"
    fetch(a, tmp_path, progress=False)
    assert (tmp_path / ".asdstudy/dev_data_fan.zip.json").exists()
    with pytest.raises(DownloadError, match="could not read the checksums of Zenodo record 999"):
        record_checksums("999", api=server.url + "/api")


def test_archive_tables():
    dev = archives("dcase2020-dev")
    assert len(dev) == 6 and all(len(a.md5) == 32 for a in dev)
    assert {a.machine for a in archives("dcase2020-eval", ["slider"])} == {"slider"}
    assert [a.filename for a in archives("mimii", ["slider"])] == ["-6_dB_slider.zip", "0_dB_slider.zip", "6_dB_slider.zip"]
    with pytest.raises(DownloadError, match="has no machine type drill"):
        archives("dcase2020-dev", ["drill"])
    with pytest.raises(DownloadError, match="unknown dataset"):
        archives("esc50")


def test_pinned_checksums_match_reference(shared_data):
    import pandas as pd

    ref = pd.read_csv(Path(shared_data).parent / "reference/dcase2020_task2_archives.csv")
    from asdstudy.datasets.download import dcase2020_archives

    assert dcase2020_archives().sort_values("filename").md5.tolist() == ref.sort_values("filename").md5.tolist()
