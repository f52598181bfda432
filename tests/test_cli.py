"""python -m data_helpers: download, info and serve."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from data_helpers.__main__ import main


def test_download_into_chosen_cache(tiny, tmp_path, capsys):
    target = tmp_path / "classroom-cache"
    assert main(["download", "tiny", "--cache", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"tiny: verified {len(tiny.info.files)} files" in out
    assert (target / "tiny.zarr" / ".zarray").is_file()


def test_download_failure_exits_non_zero(tiny, capsys):
    tiny.server.stop()
    assert main(["download", "tiny"]) == 1
    assert "Ways out" in capsys.readouterr().err


def test_download_unknown_dataset(clean_env, capsys):
    assert main(["download", "lung"]) == 2
    assert "Unknown dataset 'lung'" in capsys.readouterr().err


def test_info(clean_env, capsys):
    assert main(["info", "heart"]) == 0
    out = capsys.readouterr().out
    assert "120 x 120 x 139" in out and "CC-BY-4.0" in out and "cache folder" in out


def test_serve_writes_url_file_and_serves(tmp_path):
    (tmp_path / "hello.txt").write_text("hi")
    url_file = tmp_path / "url"
    proc = subprocess.Popen(
        [sys.executable, "-m", "data_helpers", "serve", str(tmp_path), "--port", "0", "--url-file", str(url_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(100):
            if url_file.exists():
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the server wrote no URL file: {proc.communicate(timeout=5)}")
        url = url_file.read_text().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/hello.txt", timeout=10).text == "hi"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_serve_refuses_outside_host(tmp_path, capsys):
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err
