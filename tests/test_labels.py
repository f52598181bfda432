"""write_labels: a label image in an image's labels/ group that ome-zarr-py and ome-zarr-models see as labels."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from data_helpers import OmeZarrError, validate_ome_zarr, write_labels, write_ome_zarr
from data_helpers.omezarr import level_translation

SHAPE = (24, 40, 48)


@pytest.fixture()
def cells():
    lab = np.zeros(SHAPE, np.uint16)
    lab[4:20, 8:30, 10:40] = 1
    lab[10:16, 12:20, 14:22] = 3
    return lab


def _image(tmp_path, version="0.5", name="img.ome.zarr"):
    data = np.random.default_rng(0).integers(0, 1000, SHAPE, dtype=np.uint16)
    write_ome_zarr(data, tmp_path / name, voxel_size=(2.0, 0.5, 0.5), unit="um", chunks=16, version=version,
                   translation=(1.0, 0.0, -3.0))
    return tmp_path / name


def _snapshot(folder):
    out = {}
    for root, dirs, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as handle:
                out[os.path.relpath(p, folder)] = handle.read()
    return out


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_labels_group_and_image_label_metadata(tmp_path, cells, version):
    image = _image(tmp_path, version)
    label = write_labels(image, "cells", cells, colors={1: (255, 0, 0), 3: (0, 0, 255, 128)},
                         properties={1: {"class": "tissue"}})
    if version == "0.4":
        group = json.loads((image / "labels" / ".zattrs").read_text())
        attrs = json.loads((image / "labels" / "cells" / ".zattrs").read_text())
        ome, il = group, attrs["image-label"]
        assert il["version"] == "0.4"
        ms = attrs["multiscales"][0]
    else:
        group = json.loads((image / "labels" / "zarr.json").read_text())["attributes"]
        attrs = json.loads((image / "labels" / "cells" / "zarr.json").read_text())["attributes"]
        ome, il = group["ome"], attrs["ome"]["image-label"]
        assert attrs["ome"]["version"] == "0.5" and group["ome"]["version"] == "0.5"
        ms = attrs["ome"]["multiscales"][0]
    assert ome["labels"] == ["cells"]
    assert il["source"] == {"image": "../../"}
    assert il["colors"] == [{"label-value": 1, "rgba": [255, 0, 0, 255]}, {"label-value": 3, "rgba": [0, 0, 255, 128]}]
    assert il["properties"] == [{"label-value": 1, "class": "tissue"}]
    parent = json.loads((image / ("zarr.json" if version == "0.5" else ".zattrs")).read_text())
    parent_ms = (parent["attributes"]["ome"] if version == "0.5" else parent)["multiscales"][0]
    assert len(ms["datasets"]) == len(parent_ms["datasets"]) == label.n_levels > 1
    for ds, pds in zip(ms["datasets"], parent_ms["datasets"]):
        assert ds["coordinateTransformations"] == pds["coordinateTransformations"]  # mode: same block centres
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    report = validate_ome_zarr(image)
    assert report.ok, str(report)
    assert any("labels/cells: label image" in s for s in report.summaries), report.summaries


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_py_reader_sees_a_label(tmp_path, cells, version):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    image = _image(tmp_path, version)
    label = write_labels(image, "cells", cells, colors={1: (255, 0, 0)})
    nodes = list(Reader(parse_url(str(image / "labels" / "cells")))())
    label_nodes = [n for n in nodes if n.load(Label)]
    assert label_nodes, [type(s).__name__ for n in nodes for s in n.specs]
    node = label_nodes[0]
    assert len(node.data) == label.n_levels > 2
    np.testing.assert_array_equal(np.asarray(node.data[0]), cells)
    assert set(np.unique(np.asarray(node.data[1]))) <= {0, 1, 3}


def test_ome_zarr_py_finds_labels_from_the_image(tmp_path, cells):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    image = _image(tmp_path, "0.4")
    write_labels(image, "cells", cells)
    nodes = list(Reader(parse_url(str(image)))())
    assert any(n.load(Label) for n in nodes), [n.zarr.path for n in nodes]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_models_label_models(tmp_path, cells, version):
    image = _image(tmp_path, version)
    write_labels(image, "cells", cells, colors={1: (255, 0, 0)})
    if version == "0.4":
        from ome_zarr_models.v04.image_label import ImageLabel
        from ome_zarr_models.v04.labels import Labels
    else:
        from ome_zarr_models.v05.image_label import ImageLabel
        from ome_zarr_models.v05.labels import Labels
    import zarr

    labels_group = Labels.from_zarr(zarr.open_group(image / "labels", mode="r"))
    listed = labels_group.attributes.labels if version == "0.4" else labels_group.attributes.ome.labels
    assert list(listed) == ["cells"]
    label = ImageLabel.from_zarr(zarr.open_group(image / "labels" / "cells", mode="r"))
    attrs = label.attributes if version == "0.4" else label.attributes.ome
    il = attrs.image_label
    assert [(c.label_value, tuple(c.rgba)) for c in il.colors] == [(1, (255, 0, 0, 255))]
    assert il.source.image == "../../"
    assert len(attrs.multiscales[0].datasets) == 4
    if version == "0.4":
        from ome_zarr_models.v04.image import Image
    else:
        from ome_zarr_models.v05.image import Image
    parent = Image.from_zarr(zarr.open_group(image, mode="r"))  # checks the labels against the image's levels
    assert parent.labels is not None


def test_mode_never_invents_a_label(tmp_path):
    image = _image(tmp_path)
    lab = np.zeros(SHAPE, np.uint8)
    lab[:, :, 1::2] = 4  # stripes one voxel wide: the mean would make 2
    lab[:, 1::2, :] = 6
    write_labels(image, "stripes", lab)
    import zarr

    for level in range(4):
        values = set(np.unique(zarr.open_array(image / "labels" / "stripes" / str(level), mode="r")[...]).tolist())
        assert values <= {0, 4, 6}, (level, values)


def test_nearest_keeps_first_voxel_and_its_position(tmp_path, cells):
    image = _image(tmp_path)
    label = write_labels(image, "near", cells, method="nearest")
    import zarr

    np.testing.assert_array_equal(zarr.open_array(image / "labels" / "near" / "1", mode="r")[...],
                                  cells[:, ::2, ::2][:, :20, :24])
    assert label.translations[1] == (1.0, 0.0, -3.0)  # a strided level does not move
    assert level_translation(-3.0, 0.5, 2, "mode") == -2.75


def test_second_label_is_added_to_the_list(tmp_path, cells):
    image = _image(tmp_path)
    write_labels(image, "a", cells)
    write_labels(image, "b", cells == 1 if False else (cells > 0).astype(np.uint8))
    group = json.loads((image / "labels" / "zarr.json").read_text())["attributes"]
    assert group["ome"]["labels"] == ["a", "b"]
    assert group["data_helpers"]["labels"] == ["a", "b"]
    assert validate_ome_zarr(image).ok


@pytest.mark.parametrize(
    ("labels", "kwargs", "error", "match"),
    [
        (np.zeros((24, 40, 47), np.uint8), {}, OmeZarrError, "shape"),
        (np.zeros(SHAPE, np.float32), {}, OmeZarrError, "integer dtype"),
        (np.zeros(SHAPE, bool), {}, OmeZarrError, "integer dtype"),
        (np.zeros(SHAPE, np.uint8), dict(colors={1: (300, 0, 0)}), OmeZarrError, "0 to 255"),
        (np.zeros(SHAPE, np.uint8), dict(colors={1: (1, 2)}), OmeZarrError, "3 or 4 whole numbers"),
        (np.zeros(SHAPE, np.uint8), dict(colors={"red": (1, 2, 3)}), OmeZarrError, "whole numbers"),
        (np.zeros(SHAPE, np.uint8), dict(colors=[(1, 2, 3)]), OmeZarrError, "must be a dict"),
        (np.zeros(SHAPE, np.uint8), dict(properties={1: "x"}), OmeZarrError, "dict of named values"),
        (np.zeros(SHAPE, np.uint8), dict(method="mean"), OmeZarrError, "invents|not there"),
        (np.zeros(SHAPE, np.uint8), dict(name="../x"), OmeZarrError, "plain folder name"),
        ([[1, 2]], {}, OmeZarrError, "array of integers"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, labels, kwargs, error, match):
    image = _image(tmp_path)
    before = _snapshot(tmp_path)
    name = kwargs.pop("name", "cells")
    with pytest.raises(error, match=match):
        write_labels(image, name, labels, **kwargs)
    assert _snapshot(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["img.ome.zarr"]


def test_unknown_parent(tmp_path, cells):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        write_labels(tmp_path / "missing.ome.zarr", "cells", cells)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("mine")
    with pytest.raises(OmeZarrError, match="not an OME-Zarr image"):
        write_labels(tmp_path / "plain", "cells", cells)
    assert sorted(os.listdir(tmp_path / "plain")) == ["notes.txt"]
    assert not (tmp_path / "missing.ome.zarr").exists()


def test_refuses_0_6_parent(tmp_path, cells):
    image = _image(tmp_path, "0.6")
    with pytest.raises(OmeZarrError, match="0.4 and 0.5"):
        write_labels(image, "cells", cells)
    assert not (image / "labels").exists()


def test_existing_label_needs_overwrite_and_then_only_its_own_entries(tmp_path, cells):
    image = _image(tmp_path)
    write_labels(image, "cells", cells)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_labels(image, "cells", cells)
    notes = image / "labels" / "cells" / "notes.txt"
    notes.write_text("keep me")
    (image / "labels" / "mine").mkdir()
    other = cells.copy()
    other[other == 3] = 7
    label = write_labels(image, "cells", other, overwrite=True)
    import zarr

    np.testing.assert_array_equal(zarr.open_array(label.path / "0", mode="r")[...], other)
    assert notes.read_text() == "keep me" and (image / "labels" / "mine").is_dir()
    group = json.loads((image / "labels" / "zarr.json").read_text())["attributes"]
    assert group["ome"]["labels"] == ["cells"]


def test_foreign_labels_group_is_never_changed(tmp_path, cells):
    import zarr

    image = _image(tmp_path)
    zarr.create_group(image / "labels", zarr_format=3, attributes={"ome": {"version": "0.5", "labels": ["theirs"]}})
    before = _snapshot(image)
    with pytest.raises(FileExistsError, match="not written by data_helpers"):
        write_labels(image, "cells", cells)
    assert _snapshot(image) == before


def test_foreign_label_image_is_not_overwritten(tmp_path, cells):
    image = _image(tmp_path)
    write_labels(image, "cells", cells)
    foreign = image / "labels" / "cells" / "zarr.json"
    doc = json.loads(foreign.read_text())
    del doc["attributes"]["data_helpers"]
    foreign.write_text(json.dumps(doc))
    before = _snapshot(image)
    with pytest.raises(FileExistsError, match="not an OME-Zarr image written by data_helpers"):
        write_labels(image, "cells", cells, overwrite=True)
    assert _snapshot(image) == before


def test_parent_written_by_ome_zarr_py(tmp_path, cells):
    """A parent from another writer: the label copies its levels and scales."""
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image

    data = np.random.default_rng(1).integers(0, 255, SHAPE, dtype=np.uint8)
    path = tmp_path / "ozp.ome.zarr"
    group = zarr.open_group(parse_url(str(path), mode="w").store, mode="w")
    write_image(data, group, axes="zyx", scale_factors=[{"z": 1, "y": 2, "x": 2}])
    label = write_labels(path, "cells", cells)
    parent_ms = json.loads((path / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]
    parent_scales = [tuple(t["scale"]) for ds in parent_ms["datasets"] for t in ds["coordinateTransformations"]
                     if t["type"] == "scale"]
    assert label.scales == tuple(parent_scales) and label.n_levels == 2
    assert validate_ome_zarr(path).ok


def test_validator_reports_a_label_image_that_does_not_match_its_image(tmp_path, cells):
    """A label image of write_labels whose arrays were swapped by hand: the validator names both shapes.

    It is an error here, since the label image carries the marker of write_labels, which promises the
    image's shapes; another tool's label image gets a warning (see the test after the next).
    """
    image = _image(tmp_path)
    write_labels(image, "cells", cells, colors={1: (255, 0, 0), 3: (0, 0, 255)})
    assert not validate_ome_zarr(image).warnings
    other = tmp_path / "other.ome.zarr"
    write_ome_zarr(np.zeros((24, 40, 40), np.uint8), other, voxel_size=(2.0, 0.5, 0.5), unit="um", chunks=16)
    label_zarr = image / "labels" / "cells"
    for level in ("0", "1", "2", "3"):  # swap the label's arrays for arrays of another shape
        if (other / level).exists():
            os.rename(label_zarr / level, tmp_path / f"old-{level}")
            os.rename(other / level, label_zarr / level)
    report = validate_ome_zarr(image)
    found = [str(p) for p in report.errors if "labels/cells" in str(p) and "(24, 40, 48)" in str(p)]
    assert found, str(report)
    assert "(24, 40, 40)" in found[0] and "write_labels" in found[0]


def test_parent_level_without_its_scale_is_refused(tmp_path, cells):
    # A scale of the wrong length cannot be copied to the label image; nothing is written then.
    image = _image(tmp_path)
    meta_file = image / "zarr.json"
    meta = json.loads(meta_file.read_text())
    dataset = meta["attributes"]["ome"]["multiscales"][0]["datasets"][1]
    dataset["coordinateTransformations"][0]["scale"] = [4.0, 1.0]
    meta_file.write_text(json.dumps(meta))
    before = _snapshot(image)
    with pytest.raises(OmeZarrError, match="no scale for each of its axes"):
        write_labels(image, "cells", cells)
    assert _snapshot(image) == before


def _edit_multiscale(image, edit):
    meta_file = image / "zarr.json"
    doc = json.loads(meta_file.read_text())
    edit(doc["attributes"]["ome"]["multiscales"][0])
    meta_file.write_text(json.dumps(doc))


def _replace_level(image, level, shape):
    """Make level ``level`` of ``image`` the shape another tool gives it (rounded up), as zarr writes it."""
    import shutil

    import zarr

    shutil.rmtree(image / str(level))
    zarr.create_array(image / str(level), shape=shape, chunks=(16, 16, 16), dtype="uint16", fill_value=0,
                      dimension_names=["z", "y", "x"], config={"write_empty_chunks": True})[...] = 1


def _mode_of_blocks(labels, shape, step=2):
    """Each output voxel: the most frequent label among the voxels of its block that exist (ties: smallest)."""
    from collections import Counter

    out = np.zeros(shape, labels.dtype)
    for index in np.ndindex(*shape):
        block = labels[tuple(slice(i * step, (i + 1) * step) for i in index)]
        counts = Counter(block.ravel().tolist())
        best = max(counts.values())
        out[index] = min(v for v, c in counts.items() if c == best)
    return out


@pytest.mark.parametrize("method", ["mode", "nearest"])
def test_labels_of_an_image_whose_levels_are_rounded_up_match_them(tmp_path, method):
    import zarr

    image = tmp_path / "up.ome.zarr"
    write_ome_zarr(np.zeros((16, 17, 17), np.uint16), image, voxel_size=1.0, unit="um", chunks=8, n_levels=2)
    _replace_level(image, 1, (8, 9, 9))  # as tools that round up write it
    assert validate_ome_zarr(image).ok
    labels = np.random.default_rng(1).integers(0, 3, (16, 17, 17)).astype(np.uint8)
    result = write_labels(image, "cells", labels, colors={1: (255, 0, 0)}, method=method)
    assert result.shapes == ((16, 17, 17), (8, 9, 9))
    level1 = zarr.open_array(image / "labels" / "cells" / "1", mode="r")[...]
    expected = _mode_of_blocks(labels, (8, 9, 9)) if method == "mode" else labels[::2, ::2, ::2]
    np.testing.assert_array_equal(level1, expected)
    report = validate_ome_zarr(image)
    assert report.ok and not [p for p in report.warnings if "shape" in p.message], str(report)


def test_labels_of_an_image_whose_levels_no_label_level_can_match_are_refused(tmp_path):
    image = tmp_path / "odd.ome.zarr"
    write_ome_zarr(np.zeros((64, 64, 64), np.uint16), image, voxel_size=1.0, unit="um", chunks=16, n_levels=2)
    _replace_level(image, 1, (32, 34, 34))
    before = _snapshot(image)
    with pytest.raises(OmeZarrError, match=r"level 1 .* \(32, 34, 34\).*64 voxels of level 0 in blocks of 2"):
        write_labels(image, "cells", np.zeros((64, 64, 64), np.uint8))
    assert _snapshot(image) == before


@pytest.mark.parametrize("bad_path", ["../other.ome.zarr/0", "/tmp/elsewhere/0", "0/../../other.ome.zarr/0"])
def test_dataset_paths_that_leave_the_image_are_refused(tmp_path, cells, bad_path):
    image = _image(tmp_path)
    other = _image(tmp_path, name="other.ome.zarr")
    if bad_path.startswith("/"):
        bad_path = str(other / "0")

    def edit(ms):
        ms["datasets"][0]["path"] = bad_path

    _edit_multiscale(image, edit)
    before, before_other = _snapshot(image), _snapshot(other)
    with pytest.raises(OmeZarrError, match="dataset path"):
        write_labels(image, "cells", cells)
    assert _snapshot(image) == before and _snapshot(other) == before_other


def test_a_level_that_is_a_link_out_of_the_image_is_refused(tmp_path, cells):
    image = _image(tmp_path)
    other = _image(tmp_path, name="other.ome.zarr")
    import shutil

    shutil.rmtree(image / "0")
    (image / "0").symlink_to(other / "0")
    with pytest.raises(OmeZarrError, match="symbolic"):
        write_labels(image, "cells", cells)
    assert not (image / "labels").exists()


@pytest.mark.parametrize("edit, match", [
    (lambda ms: ms["datasets"][0].pop("path"), "dataset path"),
    (lambda ms: ms.__setitem__("datasets", "0"), "datasets"),
    (lambda ms: ms["datasets"].__setitem__(0, "0"), "datasets"),
    (lambda ms: ms["datasets"][0].__setitem__("coordinateTransformations", "x"), "coordinateTransformations"),
    (lambda ms: ms.__setitem__("axes", "zyx"), "'axes'"),
])
def test_broken_parent_metadata_gives_a_clear_error(tmp_path, cells, edit, match):
    image = _image(tmp_path)
    _edit_multiscale(image, edit)
    with pytest.raises(OmeZarrError, match=match):
        write_labels(image, "cells", cells)
    assert not (image / "labels").exists()


def test_an_image_path_that_is_no_path_gives_a_clear_error(cells):
    with pytest.raises(OmeZarrError, match="image_path must be"):
        write_labels(3, "cells", cells)


# -- the safety rules: leftovers of a killed run, and the labels group never without its metadata ------------


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class _Killed(BaseException):
    pass


def _killed_write_labels(monkeypatch, image, cells, pid, kind):
    """What a write_labels killed just before its commit leaves: its staging folder, owned by ``pid``."""
    from data_helpers import labels as labels_module
    from data_helpers import safety

    monkeypatch.setattr(labels_module, "_commit", lambda *a: (_ for _ in ()).throw(_Killed()))
    monkeypatch.setattr(labels_module, "remove_staging", lambda staging: None)  # a killed process cleans nothing
    with pytest.raises(_Killed):
        write_labels(image, "cells", cells)
    monkeypatch.undo()
    (staging,) = image.glob(".labels.partial-*")
    owner = json.loads((staging / safety.STAGING_OWNER).read_text())
    (staging / safety.STAGING_OWNER).write_text(json.dumps({**owner, "pid": pid, "started": 1.0, "kind": kind}))
    assert (staging / "cells" / "0").is_dir() and not (image / "labels").exists()
    return staging


@pytest.mark.parametrize("kind", ["labels", "ome-zarr"])  # as recorded now, and by earlier versions
def test_a_killed_write_labels_is_cleaned_by_the_next_writer(tmp_path, cells, monkeypatch, kind):
    image = _image(tmp_path)
    staging = _killed_write_labels(monkeypatch, image, cells, _dead_pid(), kind)
    with pytest.warns(RuntimeWarning, match=r"removed \.labels\.partial-.*no longer running"):
        write_labels(image, "cells", cells)
    assert not staging.exists()
    assert not [p.name for p in image.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("case", ["running", "foreign entry in the label", "two labels"])
def test_a_write_labels_staging_that_is_running_or_not_ours_stays(tmp_path, cells, monkeypatch, case, recwarn):
    import os as _os

    image = _image(tmp_path)
    staging = _killed_write_labels(monkeypatch, image, cells, _os.getpid() if case == "running" else _dead_pid(),
                                   "labels")
    if case == "running":
        from data_helpers import safety

        owner = json.loads((staging / safety.STAGING_OWNER).read_text())
        (staging / safety.STAGING_OWNER).write_text(json.dumps({**owner, **safety._this_process()}))
    elif case == "foreign entry in the label":
        (staging / "cells" / "notes.txt").write_text("mine")
    else:
        (staging / "nuclei").mkdir()
    before = _snapshot(staging)
    write_labels(image, "cells", cells)
    assert _snapshot(staging) == before
    assert not [w for w in recwarn if "no longer running" in str(w.message)]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_adding_a_label_replaces_the_group_metadata_in_one_rename(tmp_path, cells, monkeypatch, version):
    """Readers always find the labels group: its metadata file is never moved away, removed or re-created."""
    import shutil

    image = _image(tmp_path, version=version)
    write_labels(image, "a", cells)
    meta = image / "labels" / (".zattrs" if version == "0.4" else "zarr.json")
    calls = []

    def recording(name, real):
        def call(*args, **kwargs):
            calls.append((name, *[os.fspath(a) if isinstance(a, (str, os.PathLike)) else a for a in args[:2]]))
            return real(*args, **kwargs)
        return call

    for name in ("rename", "replace", "unlink", "remove", "link"):
        monkeypatch.setattr(os, name, recording(name, getattr(os, name)))
    monkeypatch.setattr(shutil, "rmtree", recording("rmtree", shutil.rmtree))
    monkeypatch.setattr(shutil, "move", recording("move", shutil.move))
    write_labels(image, "b", (cells > 0).astype(np.uint8))
    monkeypatch.undo()
    touching = [c for c in calls if str(meta) in c[1:]]
    assert len(touching) == 1 and touching[0][0] == "replace" and touching[0][2] == str(meta), touching
    assert not [c for c in calls if c[0] in ("rmtree", "rename") and str(image / "labels") == c[1]]
    group = json.loads(meta.read_text())
    assert (group if version == "0.4" else group["attributes"]["ome"])["labels"] == ["a", "b"]
    assert sorted(p.name for p in (image / "labels").iterdir() if p.name.startswith(".")) == (
        [".zattrs", ".zgroup"] if version == "0.4" else [])
