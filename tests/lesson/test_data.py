"""kdutils.data: datasets found, verified by SHA-256, imported atomically and loaded as whole tensors.

The offline-lab command line over these functions (``python -m kdutils.course data``) is tested in
``tests/course/test_cli.py``.
"""

import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from kdutils import data as kd_data
from kdutils.data import ChecksumError, DatasetNotFoundError, Split, import_raw, load_dataset, raw_folder, verify

from ..helpers import SIZES


def test_load_from_gzipped_folder_via_env_var(tiny_raw, tmp_path, monkeypatch):
    source, _ = tiny_raw
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    ds = load_dataset("fashion-mnist", root=tmp_path / "data", download=False, validation_per_class=1)

    assert ds.train.x.shape == (SIZES["train"] - 10, 1, 28, 28) and ds.train.x.dtype == torch.float32
    assert ds.validation.x.shape == (10, 1, 28, 28) and sorted(ds.validation.y.tolist()) == list(range(10))
    assert ds.test.x.shape == (SIZES["t10k"], 1, 28, 28)
    assert ds.train.y.dtype == torch.int64 and torch.bincount(ds.train.y).tolist() == [SIZES["train"] // 10 - 1] * 10
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10
    # normalised with the training set's own statistics
    assert abs(ds.train.x.mean().item()) < 1e-4 and abs(ds.train.x.std().item() - 1) < 1e-3
    # imported in torchvision's layout, decompressed
    folder = raw_folder("fashion-mnist", tmp_path / "data")
    assert sorted(p.name for p in folder.iterdir()) == sorted(kd_data.DATASETS["fashion-mnist"].files)


def test_denormalize_recovers_pixels(tiny_raw, tmp_path, monkeypatch):
    source, contents = tiny_raw
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    ds = load_dataset(root=tmp_path / "data", download=False, validation_per_class=1)
    first_pixel = contents["t10k-images-idx3-ubyte"][16] / 255
    assert ds.denormalize(ds.test.x)[0, 0, 0, 0].item() == pytest.approx(first_pixel, abs=1e-5)


def test_project_folder_is_used_before_other_sources(tiny_raw, tmp_path, monkeypatch):
    source, _ = tiny_raw
    root = tmp_path / "data"
    import_raw("fashion-mnist", source, root)
    for f in source.iterdir():  # the original source disappears: data/ alone must do
        f.unlink()
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    assert len(load_dataset(root=root, download=False, validation_per_class=1).train) == SIZES["train"] - 10


def test_plain_uncompressed_files_and_torchvision_layout_are_accepted(tiny_raw, tmp_path):
    source, contents = tiny_raw
    nested = tmp_path / "copy" / "FashionMNIST" / "raw"
    nested.mkdir(parents=True)
    for name, payload in contents.items():
        (nested / name).write_bytes(payload)
    folder = import_raw("fashion-mnist", tmp_path / "copy", tmp_path / "data")
    assert verify("fashion-mnist", tmp_path / "data") == folder


def test_system_folder_is_a_source(tiny_raw, tmp_path, monkeypatch):
    source, _ = tiny_raw
    spec = kd_data.DATASETS["fashion-mnist"]
    monkeypatch.setitem(kd_data.DATASETS, "fashion-mnist", replace(spec, system_dirs=(str(source),)))
    assert len(load_dataset(root=tmp_path / "data", download=False, validation_per_class=1).test) == SIZES["t10k"]


def test_corrupted_file_in_data_folder_is_an_error_not_a_silent_fallback(tiny_raw, tmp_path, monkeypatch):
    source, _ = tiny_raw
    root = tmp_path / "data"
    folder = import_raw("fashion-mnist", source, root)
    labels = folder / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-5])  # truncated
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))  # a good source exists, but must not hide the damage
    with pytest.raises(ChecksumError, match="train-labels-idx1-ubyte.*Delete it"):
        load_dataset(root=root, download=False, validation_per_class=1)


def test_missing_dataset_lists_the_ways_to_get_it(tiny_raw, tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(root=tmp_path / "data", download=False, validation_per_class=1)
    message = str(info.value)
    assert kd_data.RAW_DIR_ENV in message
    assert "dataset-fashion-mnist" in message
    assert "python -m kdutils.course data import" in message
    assert "download" in message


def test_failed_download_says_what_else_to_do(tiny_raw, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    spec = kd_data.DATASETS["fashion-mnist"]
    monkeypatch.setitem(kd_data.DATASETS, "fashion-mnist", replace(spec, downloader=offline))
    with pytest.raises(DatasetNotFoundError, match="Downloading fashion-mnist failed.*network is unreachable"):
        load_dataset(root=tmp_path / "data", download=True, validation_per_class=1)


def test_source_missing_a_file_is_reported(tiny_raw, tmp_path):
    source, _ = tiny_raw
    (source / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte"):
        import_raw("fashion-mnist", source, tmp_path / "data")
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        import_raw("fashion-mnist", source / "nope", tmp_path / "data")


def test_unknown_dataset_name_lists_known_ones():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar10'.*'fashion-mnist'.*'mnist'"):
        load_dataset("cifar10")


def test_name_aliases_resolve():
    assert raw_folder("MNIST").parent.name == "MNIST"
    assert raw_folder("fashion_mnist").parent.name == "FashionMNIST"


def test_split_subset_and_mismatch():
    split = kd_data.Split(torch.zeros(5, 1, 28, 28), torch.arange(5))
    assert split.subset(torch.tensor([4, 0])).y.tolist() == [4, 0]
    with pytest.raises(ValueError, match="must match"):
        kd_data.Split(torch.zeros(5, 1, 28, 28), torch.arange(4))


def test_a_split_gives_fit_its_batches_and_moves_whole():
    split = Split(torch.arange(5.0).reshape(5, 1, 1, 1).expand(5, 1, 28, 28), torch.arange(5))
    images, labels = split.batch(torch.tensor([3, 1]))
    assert labels.tolist() == [3, 1] and images[:, 0, 0, 0].tolist() == [3.0, 1.0]
    assert split.targets is split.y  # what fit counts the training accuracy over
    assert split.to("cpu").x is split.x  # already there: nothing copied
    moved = split.to("meta")
    assert isinstance(moved, Split) and moved.x.device.type == moved.y.device.type == "meta"


def test_real_fashion_mnist_loads_verified(real_fashion_mnist):
    ds = load_dataset("fashion-mnist", download=False)
    assert ds.train.x.shape == (55000, 1, 28, 28) and ds.test.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.train.y).tolist() == [5500] * 10
    assert torch.bincount(ds.validation.y).tolist() == [500] * 10
    assert verify("fashion-mnist").name == "raw"


# --- the validation split ------------------------------------------------------------------------


def test_the_validation_split_is_held_out_balanced_and_the_same_every_time(tiny_raw, tmp_path, monkeypatch):
    source, contents = tiny_raw
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    first = load_dataset(root=tmp_path / "data", download=False, validation_per_class=2)
    again = load_dataset(root=tmp_path / "data", download=False, validation_per_class=2)
    assert torch.equal(first.validation.x, again.validation.x) and torch.equal(first.train.x, again.train.x)
    assert torch.bincount(first.validation.y).tolist() == [2] * 10
    assert len(first.train) + len(first.validation) == SIZES["train"]
    # every published training image is in exactly one of the two splits
    published = torch.cat([first.train.x, first.validation.x]).flatten(1)
    assert published.unique(dim=0).shape[0] == SIZES["train"]


def test_the_statistics_come_from_the_training_split_alone(tiny_raw, tmp_path, monkeypatch):
    source, _ = tiny_raw
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    ds = load_dataset(root=tmp_path / "data", download=False, validation_per_class=3)
    assert abs(ds.train.x.mean().item()) < 1e-5 and ds.train.x.std().item() == pytest.approx(1, abs=1e-4)
    assert abs(ds.validation.x.mean().item()) > 1e-3  # normalised with the training split's numbers, not its own


def test_no_validation_split_when_asked_for_none(tiny_raw, tmp_path, monkeypatch):
    source, _ = tiny_raw
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    ds = load_dataset(root=tmp_path / "data", download=False, validation_per_class=0)
    assert len(ds.validation) == 0 and len(ds.train) == SIZES["train"]


@pytest.mark.parametrize("per_class", [-1, 1.5, True, "5"])
def test_a_bad_validation_size_is_refused(tiny_raw, tmp_path, per_class):
    with pytest.raises(ValueError, match="validation_per_class must be a whole number >= 0"):
        load_dataset(root=tmp_path / "data", download=False, validation_per_class=per_class)


def test_a_validation_split_larger_than_a_class_is_refused_with_the_largest_possible(tiny_raw, tmp_path, monkeypatch):
    source, _ = tiny_raw
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    with pytest.raises(ValueError, match="has only 6 examples, fewer than the 7 asked for; ask for at most 6"):
        load_dataset(root=tmp_path / "data", download=False, validation_per_class=7)


# --- reading the IDX files ----------------------------------------------------------------------


def test_read_idx_matches_torchvision_reader(tiny_raw, tmp_path, torchvision):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    source, _ = tiny_raw
    folder = import_raw("fashion-mnist", source, tmp_path / "data")
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        ours = kd_data.read_idx(folder / name)
        assert ours.dtype == torch.uint8 and torch.equal(ours, read_image_file(str(folder / name)))
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        assert torch.equal(kd_data.read_idx(folder / name).long(), read_label_file(str(folder / name)))


def test_class_names_are_torchvisions(torchvision):
    for spec in kd_data.DATASETS.values():
        assert list(spec.classes) == getattr(torchvision.datasets, spec.folder).classes


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an IDX file of unsigned bytes"),
        (b"\x00\x00\x0d\x01" + b"\x00" * 8, "not an IDX file of unsigned bytes"),  # 0x0d: float32 values
        (b"\x00\x00\x08\x03\x00\x00", "truncated inside its header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05" + b"\x01\x02\x03", "holds 3 values but its header promises 5"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02" + b"\x01\x02\x03", "holds 3 values but its header promises 2"),
    ],
)
def test_read_idx_rejects_damaged_files_with_advice(tmp_path, content, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(kd_data.DataError, match=message) as info:
        kd_data.read_idx(path)
    assert str(path) in str(info.value) and "load the dataset again" in str(info.value)


def test_read_idx_shape_from_header(tmp_path):
    path = tmp_path / "tiny-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x03" + bytes(range(12)))
    assert kd_data.read_idx(path).tolist() == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]


def test_no_kdutils_module_imports_torchvision():
    # Importing torchvision takes seconds, paid by every notebook; only a download needs it. Every module of
    # the package is imported, whatever was added since: a list written by hand goes stale.
    code = (
        "import importlib, pkgutil, sys, kdutils\n"
        "names = [m.name for m in pkgutil.walk_packages(kdutils.__path__, 'kdutils.')\n"
        "         if not m.name.endswith('__main__')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names), 'torchvision' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, imported = result.stdout.split()
    assert int(count) >= 30 and imported == "False", result.stdout
