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
    with pytest.raises(DownloadError, match=r"What arrived \(\d+ bytes\) is kept in .*part; run the same command again to resume"):
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


def test_verify_compares_the_files_on_disk_with_the_archive(server, tmp_path):
    """Deleted and zeroed (same size) files make verify say "damaged", not "complete"."""
    data = _fixture_archive()
    server.files["/dev_data_fan.zip"] = data
    a = Archive("dcase2020-dev", "fan", "dev_data_fan.zip", server.url + "/dev_data_fan.zip",
                hashlib.md5(data).hexdigest())
    fetch(a, tmp_path, progress=False)
    assert verify(tmp_path).iloc[0].state == "complete"
    train = sorted((tmp_path / "dev_data/fan/train").glob("*.wav"))
    train[0].unlink()
    v = verify(tmp_path).iloc[0]
    assert (v.state, v.missing, v.differ) == ("damaged", 1, 0) and v.example.endswith(train[0].name)
    train[1].write_bytes(bytes(train[1].stat().st_size))  # zeroed, same size
    v = verify(tmp_path).iloc[0]
    assert (v.missing, v.differ) == (1, 1)
    assert verify(tmp_path, contents=False).iloc[0].differ == 0  # --quick compares sizes only
    from click.testing import CliRunner

    from asdstudy.cli import main

    r = CliRunner().invoke(main, ["data", "verify", str(tmp_path)])
    assert r.exit_code == 1 and "damaged" in r.output and "not complete" in r.output


def test_a_404_says_the_file_is_not_there_not_that_it_will_resume(server, tmp_path):
    a = Archive("dcase2020-dev", "fan", "dev_data_fan.zip", server.url + "/nothing.zip", "0" * 32)
    with pytest.raises(DownloadError, match=r"answered 404 .*not at this address.*nothing to resume") as e:
        fetch(a, tmp_path, progress=False)
    assert "kept" not in str(e.value)


def test_an_orphan_temporary_file_of_a_killed_download_is_removed(server, tmp_path):
    data = _fixture_archive()
    server.files["/dev_data_fan.zip"] = data
    orphan = tmp_path / ".downloads" / "tmpab12cd34"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half of something")
    a = Archive("dcase2020-dev", "fan", "dev_data_fan.zip", server.url + "/dev_data_fan.zip",
                hashlib.md5(data).hexdigest())
    fetch(a, tmp_path, progress=False)
    assert not orphan.exists()


def test_md5_option_for_an_archive_without_a_published_checksum(server, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from asdstudy.cli import main
    from asdstudy.datasets import download as D

    data = _fixture_archive()
    server.files["/dev_data_fan.zip"] = data
    monkeypatch.setattr(D, "record_checksums", lambda record, **k: {})
    with pytest.raises(DownloadError, match=r"--md5 dev_data_fan.zip=HASH"):
        D.download("dcase2021-dev", tmp_path, machines=["fan"], base_url=server.url, progress=False)
    r = CliRunner().invoke(main, ["data", "download", "dcase2021-dev", "--dest", str(tmp_path), "-m", "fan",
                                  "--base-url", server.url, "--md5", f"dev_data_fan.zip={hashlib.md5(data).hexdigest()}"])
    assert r.exit_code == 0, r.output
    assert verify(tmp_path).iloc[0].state == "complete"
    r = CliRunner().invoke(main, ["data", "download", "dcase2021-dev", "--dest", str(tmp_path), "--md5", "x=1"])
    assert r.exit_code == 2 and "ARCHIVE=HASH" in r.output
