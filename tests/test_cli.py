"""python -m data_helpers: download, info and serve."""

from __future__ import annotations

import socket
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
    (tmp_path / "url.tmp").write_text("a file of the user's")  # the old code replaced url.tmp
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
    assert not url_file.exists()  # its own URL file is removed when it stops
    assert (tmp_path / "url.tmp").read_text() == "a file of the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello.txt", "url.tmp"]


def test_serve_never_overwrites_an_existing_url_file(tmp_path, capsys):
    url_file = tmp_path / "notes.txt"
    url_file.write_text("my notes")
    assert main(["serve", str(tmp_path), "--port", "0", "--url-file", str(url_file)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert url_file.read_text() == "my notes"


def test_serve_on_a_busy_port_is_a_clear_error(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["serve", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"Port {port} on 127.0.0.1 is already in use" in err and "--port 0" in err
    assert "Traceback" not in err


def test_serve_refuses_outside_host(tmp_path, capsys):
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_download_refuses_an_ftp_mirror(tiny, monkeypatch, capsys):
    monkeypatch.setenv("DATA_HELPERS_MIRROR", "ftp://127.0.0.1/data")
    assert main(["download", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "ftp:// mirrors are not supported" in err and "file:///" in err
    assert not tiny.cache.exists()


def test_download_from_a_folder_mirror(tiny, monkeypatch, capsys):
    tiny.server.stop()
    monkeypatch.setenv("DATA_HELPERS_MIRROR", tiny.mirror.as_uri())
    assert main(["download", "tiny"]) == 0
    assert f"tiny: verified {len(tiny.info.files)} files" in capsys.readouterr().out


# -- convert and export: clear refusals, exit status 2, nothing written ----------------------------------------


def _tiff_planes(folder):
    import numpy as np
    import tifffile

    folder.mkdir()
    for z in range(4):
        tifffile.imwrite(folder / f"z{z}.tif", np.full((6, 7), z, np.uint8))
    return folder


@pytest.mark.parametrize("chunks", ["0", "-8"])
def test_convert_refuses_chunks_that_are_not_positive(tmp_path, capsys, chunks):
    planes = _tiff_planes(tmp_path / "in")
    assert main(["convert", str(planes), str(tmp_path / "a.ome.zarr"), "--voxel-size", "1", "1", "1",
                 "--unit", "um", "--chunks", chunks, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--chunks {chunks}" in err and "positive" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_convert_series_of_a_multi_series_file(tmp_path, capsys):
    import numpy as np
    import tifffile
    import zarr

    source = tmp_path / "two.ome.tif"
    with tifffile.TiffWriter(source, ome=True) as tw:
        tw.write(np.zeros((3, 4, 5), np.uint8), metadata={"axes": "ZYX", "Name": "overview"})
        tw.write(np.ones((2, 6, 5), np.uint8), metadata={"axes": "ZYX", "Name": "detail"})
    args = ["convert", str(source), str(tmp_path / "a.ome.zarr"), "--voxel-size", "1", "1", "1", "--unit", "um",
            "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--series" in err and "'overview'" in err and "'detail'" in err and "Traceback" not in err
    assert main(args + ["--series", "1"]) == 0
    assert zarr.open_array(tmp_path / "a.ome.zarr" / "0", mode="r").shape == (2, 6, 5)


def test_export_region_that_is_not_finite_is_a_clear_error(tmp_path, capsys):
    planes = _tiff_planes(tmp_path / "in")
    assert main(["convert", str(planes), str(tmp_path / "a.ome.zarr"), "--voxel-size", "1", "1", "1",
                 "--unit", "um", "--no-progress"]) == 0
    for region in ("0:1e400,:,:", "0:inf,:,:", "nan:2,:,:"):
        assert main(["export", str(tmp_path / "a.ome.zarr"), str(tmp_path / "out"), "--region", region]) == 2
        assert "not finite" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc, where nobody may write")
def test_convert_into_a_system_folder_is_a_clear_error(tmp_path, capsys):
    planes = _tiff_planes(tmp_path / "in")
    assert main(["convert", str(planes), "/proc/a.ome.zarr", "--voxel-size", "1", "1", "1", "--unit", "um",
                 "--no-progress"]) == 2
    assert "cannot create a.ome.zarr in /proc" in capsys.readouterr().err
