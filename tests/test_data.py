import gzip
import io
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from kdutils import data as kd_data
from kdutils.checkpoints import save_checkpoint
from kdutils.data import (
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    ChecksumError,
    DatasetNotFoundError,
    import_raw,
    load_dataset,
    main,
    raw_folder,
    verify,
)
from kdutils.models import StudentModel

from .conftest import SIZES


def test_load_from_gzipped_folder_via_env_var(tiny_raw, tmp_path, monkeypatch):
    source, _ = tiny_raw
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    ds = load_dataset("fashion-mnist", root=tmp_path / "data", download=False)

    assert ds.train.x.shape == (SIZES["train"], 1, 28, 28) and ds.train.x.dtype == torch.float32
    assert ds.test.x.shape == (SIZES["t10k"], 1, 28, 28)
    assert ds.train.y.dtype == torch.int64 and ds.train.y.tolist() == [i % 10 for i in range(SIZES["train"])]
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10
    # normalised with the training set's own statistics
    assert abs(ds.train.x.mean().item()) < 1e-4 and abs(ds.train.x.std().item() - 1) < 1e-3
    # imported in torchvision's layout, decompressed
    folder = raw_folder("fashion-mnist", tmp_path / "data")
    assert sorted(p.name for p in folder.iterdir()) == sorted(kd_data.DATASETS["fashion-mnist"].files)


def test_denormalize_recovers_pixels(tiny_raw, tmp_path, monkeypatch):
    source, contents = tiny_raw
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    ds = load_dataset(root=tmp_path / "data", download=False)
    first_pixel = contents["t10k-images-idx3-ubyte"][16] / 255
    assert ds.denormalize(ds.test.x)[0, 0, 0, 0].item() == pytest.approx(first_pixel, abs=1e-5)


def test_project_folder_is_used_before_other_sources(tiny_raw, tmp_path, monkeypatch):
    source, _ = tiny_raw
    root = tmp_path / "data"
    import_raw("fashion-mnist", source, root)
    for f in source.iterdir():  # the original source disappears: data/ alone must do
        f.unlink()
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    assert len(load_dataset(root=root, download=False).train) == SIZES["train"]


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
    assert len(load_dataset(root=tmp_path / "data", download=False).test) == SIZES["t10k"]


def test_corrupted_source_is_rejected_and_nothing_is_written(tiny_raw, tmp_path):
    source, contents = tiny_raw
    damaged = bytearray(contents["train-images-idx3-ubyte"])
    damaged[100] ^= 0xFF
    (source / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(damaged)))
    with pytest.raises(ChecksumError, match="train-images-idx3-ubyte"):
        import_raw("fashion-mnist", source, tmp_path / "data")
    folder = raw_folder("fashion-mnist", tmp_path / "data")
    assert not (folder / "train-images-idx3-ubyte").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_truncated_gzip_is_rejected(tiny_raw, tmp_path):
    source, _ = tiny_raw
    gz = source / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte"):
        import_raw("fashion-mnist", source, tmp_path / "data")


def test_corrupted_file_in_data_folder_is_an_error_not_a_silent_fallback(tiny_raw, tmp_path, monkeypatch):
    source, _ = tiny_raw
    root = tmp_path / "data"
    folder = import_raw("fashion-mnist", source, root)
    labels = folder / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-5])  # truncated
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))  # a good source exists, but must not hide the damage
    with pytest.raises(ChecksumError, match="train-labels-idx1-ubyte.*Delete it"):
        load_dataset(root=root, download=False)


def test_missing_dataset_lists_the_ways_to_get_it(tiny_raw, tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(root=tmp_path / "data", download=False)
    message = str(info.value)
    assert kd_data.RAW_DIR_ENV in message
    assert "dataset-fashion-mnist" in message
    assert "python -m kdutils.data import" in message
    assert "download" in message


def test_failed_download_says_what_else_to_do(tiny_raw, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    spec = kd_data.DATASETS["fashion-mnist"]
    monkeypatch.setitem(kd_data.DATASETS, "fashion-mnist", replace(spec, downloader=offline))
    with pytest.raises(DatasetNotFoundError, match="Downloading fashion-mnist failed.*network is unreachable"):
        load_dataset(root=tmp_path / "data", download=True)


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


def test_real_fashion_mnist_loads_verified(real_fashion_mnist):
    ds = load_dataset("fashion-mnist", download=False)
    assert ds.train.x.shape == (60000, 1, 28, 28) and ds.test.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.train.y).tolist() == [6000] * 10
    assert os.path.basename(str(verify("fashion-mnist"))) == "raw"


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


def test_kdutils_does_not_import_torchvision():
    # Importing torchvision takes seconds, paid by every notebook; only a download needs it.
    import subprocess
    import sys

    code = (
        "import sys, kdutils.data, kdutils.checkpoints, kdutils.training, kdutils.plots, kdutils.transfer, "
        "kdutils.teacher, kdutils.features, kdutils.repro, kdutils.losses, kdutils.models, kdutils.analysis, "
        "kdutils.paths; "
        "print('torchvision' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- the offline-lab command line: python -m kdutils.data status|import DIR|verify|fetch -------------------
# The offline-lab command line: ``python -m kdutils.data status|import DIR|verify|fetch``.
#
# Every test runs on tiny generated IDX files (``tiny_raw`` in conftest.py) in a temporary data folder,
# so none needs the real dataset or a network. ``main(argv, out)`` is called directly (its return value
# is the exit code); one test runs the real ``python -m`` entry point in a subprocess.

FILES = kd_data.DATASETS["fashion-mnist"].files


def run_cli(*argv: str) -> tuple[int, str]:
    """Run the command line in-process; return (exit code, everything it printed)."""
    out = io.StringIO()
    code = main([str(a) for a in argv], out=out, err=out)
    return code, out.getvalue()


@pytest.fixture
def root(tmp_path):
    """An empty data folder, as on a freshly cloned repository."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def imported(tiny_raw, root):
    """A data folder that already holds the tiny dataset, imported and verified."""
    source, _ = tiny_raw
    assert run_cli("--root", root, "import", source)[0] == EXIT_OK
    return raw_folder("fashion-mnist", root)


# --- import ------------------------------------------------------------------------------------


def test_import_copies_verified_files_in_torchvision_layout(tiny_raw, root):
    source, contents = tiny_raw
    code, printed = run_cli("--root", root, "import", source)

    folder = raw_folder("fashion-mnist", root)
    assert code == EXIT_OK
    assert printed.strip() == f"imported and verified fashion-mnist into {folder}"
    # decompressed, under torchvision's layout, byte for byte the published content
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name, payload in contents.items():
        assert (folder / name).read_bytes() == payload


def test_import_from_an_empty_folder_names_the_missing_files(tiny_raw, root, tmp_path):
    empty = tmp_path / "empty-stick"
    empty.mkdir()
    code, printed = run_cli("--root", root, "import", empty)

    assert code == EXIT_PROBLEM
    assert printed.startswith("error: ")
    assert str(empty) in printed and "does not hold the fashion-mnist files" in printed
    for name in FILES:
        assert name in printed
    assert not raw_folder("fashion-mnist", root).exists()  # nothing half-imported


def test_import_from_a_folder_that_does_not_exist(tiny_raw, root, tmp_path):
    code, printed = run_cli("--root", root, "import", tmp_path / "no-such-stick")
    assert code == EXIT_PROBLEM
    assert "is not a folder" in printed and "no-such-stick" in printed


def test_import_refuses_a_corrupted_file_and_writes_nothing_for_it(tiny_raw, root):
    source, contents = tiny_raw
    damaged = bytearray(contents["train-labels-idx1-ubyte"])
    damaged[-1] ^= 0xFF  # one flipped byte: the size is right, the content is not
    (source / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(damaged)))

    code, printed = run_cli("--root", root, "import", source)

    assert code == EXIT_PROBLEM
    assert "train-labels-idx1-ubyte" in printed and "SHA-256" in printed and "Replace it" in printed
    folder = raw_folder("fashion-mnist", root)
    assert not (folder / "train-labels-idx1-ubyte").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]  # no temporary file left behind


def test_import_refuses_a_truncated_gzip(tiny_raw, root):
    source, _ = tiny_raw
    archive = source / "t10k-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:100])
    code, printed = run_cli("--root", root, "import", source)
    assert code == EXIT_PROBLEM
    assert "t10k-images-idx3-ubyte" in printed and "corrupted or truncated" in printed


def test_import_repairs_a_corrupted_data_folder(imported, tiny_raw, root):
    source, contents = tiny_raw
    target = imported / "t10k-labels-idx1-ubyte"
    target.write_bytes(b"not the labels")
    assert run_cli("--root", root, "verify")[0] == EXIT_PROBLEM

    assert run_cli("--root", root, "import", source)[0] == EXIT_OK
    assert target.read_bytes() == contents["t10k-labels-idx1-ubyte"]
    assert run_cli("--root", root, "verify")[0] == EXIT_OK


# --- verify ------------------------------------------------------------------------------------


def test_verify_passes_on_intact_files(imported, root):
    code, printed = run_cli("--root", root, "verify")
    assert code == EXIT_OK
    assert printed.strip() == f"fashion-mnist: all 4 files verified in {imported}"


def test_verify_names_a_corrupted_file(imported, root):
    images = imported / "train-images-idx3-ubyte"
    damaged = bytearray(images.read_bytes())
    damaged[500] ^= 0x01
    images.write_bytes(bytes(damaged))

    code, printed = run_cli("--root", root, "verify")

    assert code == EXIT_PROBLEM
    assert printed.startswith("error: ")
    assert str(images) in printed and "corrupted or truncated" in printed and "Delete it" in printed


def test_verify_names_a_truncated_file(imported, root):
    labels = imported / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])
    code, printed = run_cli("--root", root, "verify")
    assert code == EXIT_PROBLEM and "t10k-labels-idx1-ubyte" in printed


def test_verify_on_an_empty_data_folder_names_the_missing_files(tiny_raw, root):
    code, printed = run_cli("--root", root, "verify")
    assert code == EXIT_PROBLEM
    assert "missing" in printed
    for name in FILES:
        assert name in printed


def test_verify_reports_a_single_missing_file(imported, root):
    (imported / "train-labels-idx1-ubyte").unlink()
    code, printed = run_cli("--root", root, "verify")
    assert code == EXIT_PROBLEM
    assert "missing train-labels-idx1-ubyte" in printed
    missing_clause = printed.split("Ways to get it")[0]
    assert "train-images-idx3-ubyte" not in missing_clause  # only what is actually missing


# --- status ------------------------------------------------------------------------------------


def _line(printed: str, start: str) -> str:
    lines = [line.strip() for line in printed.splitlines() if line.strip().startswith(start)]
    assert len(lines) == 1, f"expected one line starting with {start!r} in:\n{printed}"
    return lines[0]


def test_status_of_an_empty_folder_says_absent_and_succeeds(tiny_raw, root):
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_OK  # nothing there is not a problem: it is what a fresh clone looks like
    assert printed.splitlines()[0] == f"data folder: {root}"
    assert _line(printed, "fashion-mnist").split() == ["fashion-mnist", "not", "here", "(absent)"]
    assert _line(printed, "checkpoints:") == "checkpoints: 0"


def test_status_points_to_a_local_source_it_could_import(tiny_raw, root, monkeypatch):
    source, _ = tiny_raw
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_OK
    assert f"importable from {source}" in _line(printed, "fashion-mnist")


def test_status_after_import_reports_verified(imported, root):
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_OK
    assert _line(printed, "fashion-mnist").split() == ["fashion-mnist", "verified", str(imported)]


def test_status_flags_a_corrupted_dataset_with_a_failing_exit_code(imported, root):
    (imported / "train-images-idx3-ubyte").write_bytes(b"\x00" * 64)
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_PROBLEM
    line = _line(printed, "fashion-mnist")
    assert "CORRUPTED" in line and "train-images-idx3-ubyte" in line


def test_status_lists_checkpoints_and_flags_a_damaged_one(imported, root):
    checkpoints = root / "checkpoints"
    save_checkpoint(StudentModel(), checkpoints / "student.pt", dataset="fashion-mnist", test_accuracy=0.8512)
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_OK
    assert _line(printed, "checkpoints:") == "checkpoints: 1"
    assert _line(printed, "student.pt").split() == [
        "student.pt", "ok", "StudentModel", "fashion-mnist", "test", "accuracy", "0.8512"
    ]

    broken = checkpoints / "teacher.pt"
    broken.write_bytes((checkpoints / "student.pt").read_bytes()[:1000])  # truncated mid-write
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_PROBLEM
    assert _line(printed, "checkpoints:") == "checkpoints: 2"
    assert "DAMAGED" in _line(printed, "teacher.pt") and "truncated or corrupted" in printed
    assert " ok " in _line(printed, "student.pt") + " "


# --- fetch -------------------------------------------------------------------------------------


def _fake_torchvision(contents: dict[str, bytes], calls: list):
    """A stand-in for torchvision's dataset class that 'downloads' the given files."""

    class FashionMNIST:  # the class name is the folder torchvision downloads into
        def __init__(self, root, train=True, download=False):
            calls.append((Path(root), train, download))
            raw = Path(root) / "FashionMNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            prefix = "train" if train else "t10k"
            for name, payload in contents.items():
                if name.startswith(prefix):
                    (raw / name).write_bytes(payload)

    return FashionMNIST


def _use_downloader(monkeypatch, cls) -> None:
    """Make 'fetch' call ``cls`` instead of torchvision's downloader (tiny_raw's spec stays otherwise)."""
    spec = kd_data.DATASETS["fashion-mnist"]
    monkeypatch.setitem(kd_data.DATASETS, "fashion-mnist", replace(spec, downloader=cls))


def test_fetch_downloads_then_verifies(tiny_raw, root, monkeypatch):
    _, contents = tiny_raw
    calls = []
    _use_downloader(monkeypatch, _fake_torchvision(contents, calls))

    code, printed = run_cli("--root", root, "fetch")

    folder = raw_folder("fashion-mnist", root)
    assert code == EXIT_OK
    assert printed.strip() == f"downloaded and verified fashion-mnist into {folder}"
    assert [(train, download) for _, train, download in calls] == [(True, True), (False, True)]
    for name, payload in contents.items():
        assert (folder / name).read_bytes() == payload
    # the download went to a temporary folder inside the data folder, which is gone afterwards
    assert all(path.parent == root and path.name.startswith(".download-") for path, _, _ in calls)
    assert not [p for p in root.iterdir() if p.name.startswith(".download-")]
    assert run_cli("--root", root, "verify")[0] == EXIT_OK


def test_fetch_refuses_a_download_with_the_wrong_content(tiny_raw, root, monkeypatch):
    _, contents = tiny_raw
    tampered = dict(contents, **{"t10k-images-idx3-ubyte": contents["t10k-images-idx3-ubyte"][:-10]})
    _use_downloader(monkeypatch, _fake_torchvision(tampered, []))

    code, printed = run_cli("--root", root, "fetch")

    assert code == EXIT_PROBLEM
    assert "t10k-images-idx3-ubyte" in printed and "SHA-256" in printed
    assert not (raw_folder("fashion-mnist", root) / "t10k-images-idx3-ubyte").exists()


def test_fetch_without_network_says_what_else_to_do(tiny_raw, root, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("[Errno 101] Network is unreachable")

    _use_downloader(monkeypatch, offline)

    code, printed = run_cli("--root", root, "fetch")

    assert code == EXIT_PROBLEM
    assert "Downloading fashion-mnist failed" in printed and "Network is unreachable" in printed
    assert "python -m kdutils.data import" in printed and kd_data.RAW_DIR_ENV in printed
    assert not [p for p in root.iterdir() if p.name.startswith(".download-")]


# --- usage -------------------------------------------------------------------------------------


def test_unknown_dataset_is_a_usage_error_listing_the_known_ones(tiny_raw, root):
    code, printed = run_cli("--root", root, "verify", "--dataset", "cifar10")
    assert code == EXIT_USAGE
    assert "Unknown dataset 'cifar10'" in printed and "'fashion-mnist'" in printed and "'mnist'" in printed


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["import"]])
def test_bad_command_lines_are_usage_errors(argv, capsys):
    assert main(argv) == EXIT_USAGE
    assert "usage: python -m kdutils.data" in capsys.readouterr().err


def test_help_exits_zero(capsys):
    assert main(["--help"]) == EXIT_OK
    shown = capsys.readouterr().out
    for command in ("status", "import", "verify", "fetch"):
        assert command in shown


def test_module_entry_point_returns_the_exit_code(tmp_path):
    """The real ``python -m kdutils.data`` in a subprocess, on an empty data folder (no network used)."""
    env = {k: v for k, v in os.environ.items() if k != kd_data.RAW_DIR_ENV}
    empty = tmp_path / "data"
    empty.mkdir()
    command = [sys.executable, "-m", "kdutils.data", "--root", str(empty), "verify", "--dataset", "mnist"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == EXIT_PROBLEM
    printed = result.stdout + result.stderr
    assert "error:" in printed and "missing" in printed and "Traceback" not in printed


# --- streams, options and system errors --------------------------------------------------------


def test_errors_go_to_stderr_and_results_to_stdout(tiny_raw, root):
    out, err = io.StringIO(), io.StringIO()
    assert main(["--root", str(root), "verify"], out=out, err=err) == EXIT_PROBLEM
    assert out.getvalue() == ""
    assert err.getvalue().startswith("error: fashion-mnist: missing")
    assert "python -m kdutils.data import" in err.getvalue()  # says how to get it


def test_root_may_follow_the_command(tiny_raw, root):
    source, _ = tiny_raw
    assert run_cli("import", source, "--root", root)[0] == EXIT_OK
    assert run_cli("verify", "--root", root)[0] == EXIT_OK


def test_status_names_the_files_an_incomplete_dataset_lacks(imported, root):
    (imported / "t10k-labels-idx1-ubyte").unlink()
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_OK
    assert "incomplete: missing t10k-labels-idx1-ubyte" in printed


def test_system_errors_are_reported_without_a_traceback(tiny_raw, root, monkeypatch):
    source, _ = tiny_raw

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(root))

    monkeypatch.setattr(kd_data.tempfile, "mkstemp", denied)
    code, printed = run_cli("--root", root, "import", source)
    assert code == EXIT_PROBLEM
    assert printed.startswith("error: ") and "Permission denied" in printed


# --- the word list of notebook 10 (wamerican) -------------------------------------------------------------


@pytest.fixture
def word_list(tmp_path, monkeypatch):
    """A small word list whose SHA-256 is the expected one, and no system copy to fall back on."""
    import hashlib

    content = "Aachen\naardvark\naardvark's\nzebra\n"
    path = tmp_path / "american-english"
    path.write_text(content, encoding="utf-8")
    monkeypatch.setattr(kd_data, "WORD_LIST_SHA256", hashlib.sha256(content.encode()).hexdigest())
    monkeypatch.setattr(kd_data, "WORD_LIST_SYSTEM_PATH", tmp_path / "not-installed" / "american-english")
    monkeypatch.setattr(kd_data, "WORD_LIST_SHIPPED_PATH", tmp_path / "not-shipped" / "american-english.gz")
    return path


def test_word_list_is_read_and_verified(word_list):
    assert kd_data.load_word_list(word_list) == ["Aachen", "aardvark", "aardvark's", "zebra"]


def test_word_list_in_the_data_folder_comes_first(word_list, tmp_path):
    root = tmp_path / "data"
    copy = kd_data.word_list_path(root)
    assert copy == root / "words" / "american-english"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(word_list.read_bytes())
    assert kd_data.load_word_list(root=root)[-1] == "zebra"


def test_missing_word_list_says_how_to_get_it(word_list, tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        kd_data.load_word_list(root=tmp_path / "empty")
    message = str(info.value)
    assert "kdutils/corpora" in message and "apt-get install wamerican" in message
    assert str(kd_data.WORD_LIST_SYSTEM_PATH) in message and str(kd_data.word_list_path(tmp_path / "empty")) in message
    with pytest.raises(DatasetNotFoundError, match="wamerican"):
        kd_data.load_word_list(tmp_path / "nowhere.txt")


def test_the_shipped_gzip_copy_is_used_when_there_is_no_other(word_list, tmp_path, monkeypatch):
    shipped = tmp_path / "corpora" / "american-english.gz"
    shipped.parent.mkdir()
    shipped.write_bytes(gzip.compress(word_list.read_bytes()))
    monkeypatch.setattr(kd_data, "WORD_LIST_SHIPPED_PATH", shipped)
    assert kd_data.load_word_list(root=tmp_path / "empty") == ["Aachen", "aardvark", "aardvark's", "zebra"]


def test_a_damaged_shipped_copy_is_an_error_not_other_words(word_list, tmp_path):
    truncated = tmp_path / "american-english.gz"
    truncated.write_bytes(gzip.compress(word_list.read_bytes())[:-6])
    with pytest.raises(ChecksumError, match="not a readable gzip file"):
        kd_data.load_word_list(truncated)
    other = tmp_path / "other.gz"
    other.write_bytes(gzip.compress(b"Aachen\n"))
    with pytest.raises(ChecksumError, match="SHA-256"):
        kd_data.load_word_list(other)


def test_another_word_list_is_rejected_by_its_checksum(word_list):
    word_list.write_text("Aachen\naardvark\n", encoding="utf-8")  # another release: other words
    with pytest.raises(ChecksumError, match=r"american-english is not the word list of wamerican 2020\.12\.07-2"):
        kd_data.load_word_list(word_list)


def test_the_shipped_word_list_is_the_one_the_notebook_expects():
    """The copy in kdutils/corpora: present in every clone, on every system, so notebook 10 runs offline."""
    lines = kd_data.load_word_list(kd_data.WORD_LIST_SHIPPED_PATH)
    assert len(lines) == 104_334 and lines[:2] == ["A", "AA"]
    notice = kd_data.WORD_LIST_SHIPPED_PATH.with_name("american-english.COPYRIGHT").read_text(encoding="utf-8")
    assert "Permission to use, copy, modify, distribute and sell these word" in notice


def test_debians_word_list_when_installed_is_the_same_file():
    if not kd_data.WORD_LIST_SYSTEM_PATH.is_file():
        pytest.skip("wamerican is not installed; the shipped copy is used (sudo apt-get install wamerican to compare)")
    assert kd_data.load_word_list(kd_data.WORD_LIST_SYSTEM_PATH) == kd_data.load_word_list(
        kd_data.WORD_LIST_SHIPPED_PATH)
