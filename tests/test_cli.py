from click.testing import CliRunner

from asdstudy.cli import main


def test_help_lists_commands():
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0 and "data" in r.output and "info" in r.output
    r = CliRunner().invoke(main, ["data", "--help"])
    for cmd in ("generate", "download", "verify", "list"):
        assert cmd in r.output


def test_generate_list_and_info(tmp_path, monkeypatch):
    monkeypatch.setenv("ASDSTUDY_DATA", str(tmp_path))
    r = CliRunner().invoke(main, ["data", "generate", "--profile", "smoke", "-m", "valve"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "synthetic/smoke-seed0/dcase2020/dev_data/valve/train/normal_id_00_00000000.wav").exists()
    r = CliRunner().invoke(main, ["data", "list", str(tmp_path / "synthetic/smoke-seed0/dcase2020"),
                                  "--csv", str(tmp_path / "t.csv")])
    assert r.exit_code == 0, r.output
    assert "32 clips" in r.output and "anomaly" in r.output and (tmp_path / "t.csv").exists()
    r = CliRunner().invoke(main, ["info"])
    assert r.exit_code == 0 and "synthetic smoke-seed0: dcase2020/valve" in r.output and "torch" in r.output


def test_clear_errors_exit_2(tmp_path):
    r = CliRunner().invoke(main, ["data", "list", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "missing: dataset folder not found" in r.output
    r = CliRunner().invoke(main, ["data", "download", "esc50", "--dest", str(tmp_path)])
    assert r.exit_code == 2 and "unknown dataset 'esc50'" in r.output
    r = CliRunner().invoke(main, ["data", "verify", str(tmp_path)])
    assert r.exit_code == 1 and "nothing downloaded" in r.output
