"""Find, verify, import and load the datasets of the series as in-memory tensors.

Sources are tried in this order:

1. the project's ``data/`` folder (torchvision's layout: ``data/FashionMNIST/raw/...``);
2. a folder of the four raw IDX files (plain or ``.gz``) named by the environment variable
   ``KDUTILS_RAW_DIR``, then the system locations where Linux distributions install them
   (Debian and Ubuntu: ``apt-get install dataset-fashion-mnist`` puts them in
   ``/usr/share/datasets/fashion-mnist``);
3. torchvision's own download (which checks the MD5 of each archive).

Whatever the source, every file is verified by the SHA-256 of its *uncompressed* content and written
into ``data/`` atomically, so a half-written file is never taken for data. The files are read straight
into whole tensors: training slices mini-batches by index, with no per-sample PIL decoding.
torchvision is imported only to download: importing it costs seconds, in every notebook.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .files import atomic_write, default_root

__all__ = [
    "DATASETS",
    "ChecksumError",
    "DataError",
    "Dataset",
    "DatasetNotFoundError",
    "DatasetSpec",
    "Split",
    "VALIDATION_PER_CLASS",
    "balanced_positions",
    "download",
    "ensure_dataset",
    "find_source",
    "get_spec",
    "import_raw",
    "load_dataset",
    "raw_folder",
    "read_idx",
    "sha256_of_file",
    "verify",
]

RAW_DIR_ENV = "KDUTILS_RAW_DIR"
_CHUNK = 1 << 20

#: Published training images of each class held out as the validation split (5,000 in all): no model trains on them.
VALIDATION_PER_CLASS = 500


class DataError(RuntimeError):
    """Base class of the data errors: each message says what is wrong and what to do."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """No source of the dataset could be found."""


class ChecksumError(DataError):
    """A file's content differs from the published dataset (corrupted, truncated or another file)."""


@dataclass(frozen=True)
class DatasetSpec:
    """What identifies one dataset: its files and their SHA-256 sums, its class names, its folder."""

    name: str
    folder: str  # the name of torchvision's class, which is also its folder: root/<folder>/raw
    classes: tuple[str, ...]
    sha256: dict[str, str]  # uncompressed file name -> SHA-256 of its content
    system_dirs: tuple[str, ...] = ()
    install_hint: str = ""
    downloader: Callable[..., object] | None = None  # default: torchvision.datasets.<folder>

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.sha256)

    def download_class(self) -> Callable[..., object]:
        """What downloads the files: called as ``cls(root, train=..., download=True)`` like torchvision's."""
        if self.downloader is not None:
            return self.downloader
        from torchvision import datasets  # imported here: it takes seconds, and only downloads need it

        return getattr(datasets, self.folder)


DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        folder="FashionMNIST",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        install_hint="on Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist "
        "(installs the files into /usr/share/datasets/fashion-mnist)",
    ),
    "mnist": DatasetSpec(
        name="mnist",
        folder="MNIST",
        classes=("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
                 "8 - eight", "9 - nine"),
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        system_dirs=("/usr/share/datasets/mnist",),
    ),
}


def get_spec(name: str) -> DatasetSpec:
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else name
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key not in DATASETS:
        known = ", ".join(repr(k) for k in DATASETS)
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {known}.")
    return DATASETS[key]


def _resolve(name: str, root: str | Path | None) -> tuple[DatasetSpec, Path]:
    """The spec of dataset ``name`` and the data folder: what every public entry point resolves once."""
    return get_spec(name), (Path(root).expanduser() if root is not None else default_root())


def _raw_folder(spec: DatasetSpec, root: Path) -> Path:
    return root / spec.folder / "raw"


def raw_folder(name: str, root: str | Path | None = None) -> Path:
    """Where torchvision's class for ``name`` expects the raw files (``root/FashionMNIST/raw``)."""
    return _raw_folder(*_resolve(name, root))


def sha256_of_file(path: str | Path) -> str:
    """SHA-256 of a file's content, decompressing it first when its name ends in ``.gz``."""
    path = Path(path)
    digest = hashlib.sha256()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _ways_to_get(spec: DatasetSpec, root: Path) -> str:
    ways = [
        f"put the four raw IDX files ({', '.join(spec.files)}; plain or .gz) in a folder and set "
        f"{RAW_DIR_ENV}=/that/folder, or run: python -m kdutils.course data import /that/folder --dataset {spec.name}",
        f"run with internet access once so torchvision can download it into {_raw_folder(spec, root)}",
    ]
    if spec.install_hint:
        ways.insert(0, spec.install_hint)
    return "\n".join(f"  - {w}" for w in ways)


def verify(name: str = "fashion-mnist", root: str | Path | None = None) -> Path:
    """Check every raw file of ``name`` under ``root`` against its SHA-256; return the raw folder.

    Raises ``DatasetNotFoundError`` when a file is missing and ``ChecksumError`` naming the file
    whose content is wrong.
    """
    return _verify(*_resolve(name, root))


def _verify(spec: DatasetSpec, root: Path) -> Path:
    folder = _raw_folder(spec, root)
    missing = [f for f in spec.files if not (folder / f).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{spec.name}: missing {', '.join(missing)} in {folder}. Ways to get it:\n"
            + _ways_to_get(spec, root)
        )
    for file_name, expected in spec.sha256.items():
        actual = sha256_of_file(folder / file_name)
        if actual != expected:
            raise ChecksumError(
                f"{folder / file_name} is corrupted or truncated: its SHA-256 is {actual}, expected "
                f"{expected}. Delete it and load the dataset again to re-import it."
            )
    return folder


def _source_file(source: Path, file_name: str) -> Path | None:
    for candidate in (source / file_name, source / (file_name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _copy_verified(src: Path, dest: Path, expected_sha256: str) -> None:
    """Decompress (if needed) ``src`` into ``dest`` atomically, refusing content with the wrong hash."""
    digest = hashlib.sha256()
    opener = gzip.open if src.suffix == ".gz" else open
    with atomic_write(dest) as tmp:  # an error below leaves dest as it was
        try:
            with opener(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(_CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ChecksumError(f"{src} cannot be read ({exc}); it is corrupted or truncated.") from exc
        if digest.hexdigest() != expected_sha256:
            raise ChecksumError(
                f"{src} is not the published file: the SHA-256 of its content is {digest.hexdigest()}, "
                f"expected {expected_sha256}. Replace it with an intact copy."
            )


def import_raw(name: str, source: str | Path, root: str | Path | None = None) -> Path:
    """Import the four raw IDX files of ``name`` from the folder ``source`` into ``root``.

    ``source`` may hold the files plain or gzipped, directly or in torchvision's ``<Class>/raw``
    layout. Each file is verified before it replaces anything in ``root``. Returns the raw folder.
    """
    return _import_raw(*_resolve(name, root), Path(source).expanduser())


def _import_raw(spec: DatasetSpec, root: Path, source: Path) -> Path:
    if not source.is_dir():
        raise DatasetNotFoundError(f"{source} is not a folder; give the folder that holds the raw IDX files.")
    nested = source / spec.folder / "raw"
    if all(_source_file(source, f) is None for f in spec.files) and nested.is_dir():
        source = nested
    found = {f: _source_file(source, f) for f in spec.files}
    missing = [f for f, path in found.items() if path is None]
    if missing:
        raise DatasetNotFoundError(
            f"{source} does not hold the {spec.name} files {', '.join(missing)} (plain or .gz)."
        )
    folder = _raw_folder(spec, root)
    for file_name, path in found.items():
        _copy_verified(path, folder / file_name, spec.sha256[file_name])
    return folder


def find_source(name: str) -> Path | None:
    """The first local folder (``$KDUTILS_RAW_DIR``, then system locations) holding all raw files of ``name``."""
    return _find_source(get_spec(name))


def _find_source(spec: DatasetSpec) -> Path | None:
    candidates = []
    if os.environ.get(RAW_DIR_ENV):
        candidates.append(Path(os.environ[RAW_DIR_ENV]).expanduser())
    candidates.extend(Path(d) for d in spec.system_dirs)
    for folder in candidates:
        for sub in (folder, folder / spec.folder / "raw"):
            if sub.is_dir() and all(_source_file(sub, f) is not None for f in spec.files):
                return sub
    return None


def download(name: str = "fashion-mnist", root: str | Path | None = None) -> Path:
    """Download with torchvision (it checks each archive's MD5), verify the SHA-256, then import."""
    return _download(*_resolve(name, root))


def _download(spec: DatasetSpec, root_path: Path) -> Path:
    root_path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=root_path) as tmp:
        try:
            downloader = spec.download_class()
            for train in (True, False):
                downloader(tmp, train=train, download=True)
        except Exception as exc:  # torchvision raises several types for network failures
            raise DatasetNotFoundError(
                f"Downloading {spec.name} failed ({type(exc).__name__}: {exc}). Other ways to get it:\n"
                + _ways_to_get(spec, root_path)
            ) from exc
        return _import_raw(spec, root_path, Path(tmp) / spec.folder / "raw")


def ensure_dataset(name: str = "fashion-mnist", root: str | Path | None = None, download: bool = True) -> Path:
    """Make sure verified raw files of ``name`` are under ``root``; return their folder.

    Files already in ``root`` must verify: a corrupted one is an error, never silently replaced.
    """
    return _ensure(*_resolve(name, root), download)


def _ensure(spec: DatasetSpec, root_path: Path, download: bool) -> Path:
    folder = _raw_folder(spec, root_path)
    if all((folder / f).is_file() for f in spec.files):
        return _verify(spec, root_path)
    source = _find_source(spec)
    if source is not None:
        return _import_raw(spec, root_path, source)
    if download:
        return _download(spec, root_path)
    raise DatasetNotFoundError(
        f"{spec.name} was not found in {folder}, in ${RAW_DIR_ENV} or in "
        f"{', '.join(spec.system_dirs) or 'any system folder'}. Ways to get it:\n" + _ways_to_get(spec, root_path)
    )


@dataclass(frozen=True)
class Split:
    """One split as whole tensors: ``x`` float32 ``(N, 1, 28, 28)`` normalised, ``y`` int64 ``(N,)``."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} examples but y has {self.y.shape[0]}; they must match.")

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, indices: torch.Tensor) -> Split:
        """The examples at ``indices`` (a new Split sharing no storage with this one)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return Split(self.x[indices], self.y[indices])

    @property
    def targets(self) -> torch.Tensor:
        """The labels, ``y``, under the name ``kdutils.training.fit`` gives what a model should predict."""
        return self.y

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` of the examples at ``idx``: one mini-batch, for ``kdutils.training.fit``."""
        return self.x[idx], self.y[idx]

    def to(self, device: torch.device | str) -> Split:
        """This split on ``device`` (sharing the tensors that are there already)."""
        return Split(self.x.to(device), self.y.to(device))


def balanced_positions(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Sorted positions of ``per_class`` random examples (drawn with ``seed``) of each class (label >= 0)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in labels.unique()[labels.unique() >= 0].tolist():
        members = (labels == c).nonzero().flatten()
        if members.numel() < per_class:
            raise ValueError(f"class {c} has only {members.numel()} examples, fewer than the {per_class} asked for; "
                             f"ask for at most {members.numel()} per class.")
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


@dataclass(frozen=True)
class Dataset:
    """``train`` to train on, ``validation`` (held out from it) to choose settings on, ``test`` to report on."""

    name: str
    train: Split
    validation: Split
    test: Split
    classes: list[str]
    mean: float
    std: float
    root: Path = field(default_factory=default_root)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Back to pixel intensities in [0, 1], for showing images."""
        return x * self.std + self.mean


def load_dataset(name: str = "fashion-mnist", root: str | Path | None = None, download: bool = True,
                 validation_per_class: int = VALIDATION_PER_CLASS) -> Dataset:
    """Load ``name`` ("fashion-mnist" or "mnist") into memory, importing it first if needed.

    Returns a ``Dataset`` whose ``train``, ``validation`` and ``test`` splits hold ``x`` (float32,
    ``(N, 1, 28, 28)``, normalised with the training split's mean and std) and ``y`` (int64, ``(N,)``), and
    ``classes``. ``validation`` is ``validation_per_class`` images of each class, drawn once from the
    published training set with a fixed seed (the same images on every machine); ``train`` is the rest.
    """
    if isinstance(validation_per_class, bool) or not isinstance(validation_per_class, int) or validation_per_class < 0:
        raise ValueError(f"validation_per_class must be a whole number >= 0, got {validation_per_class!r}.")
    spec, root_path = _resolve(name, root)
    folder = _ensure(spec, root_path, download)

    def read_split(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = read_idx(folder / f"{prefix}-images-idx3-ubyte").to(torch.float32).div_(255.0)
        labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte").to(torch.int64)
        if pixels.dim() != 3 or labels.dim() != 1 or pixels.shape[0] != labels.shape[0]:
            raise DataError(
                f"{folder}: the {prefix} files hold arrays of shape {tuple(pixels.shape)} and {tuple(labels.shape)}, "
                "expected (N, rows, cols) images and (N,) labels. Delete the folder and load the dataset again."
            )
        return pixels, labels

    published_pixels, published_labels = read_split("train")
    held_out = balanced_positions(published_labels, validation_per_class, seed=0)
    keep = torch.ones(len(published_labels), dtype=torch.bool)
    keep[held_out] = False
    train_pixels = published_pixels[keep]
    mean, std = train_pixels.mean().item(), train_pixels.std().item()  # from the training split only

    def to_split(pixels: torch.Tensor, labels: torch.Tensor) -> Split:
        return Split(pixels.sub(mean).div_(std).unsqueeze(1).contiguous(), labels)

    return Dataset(
        name=spec.name,
        train=to_split(train_pixels, published_labels[keep]),
        validation=to_split(published_pixels[held_out], published_labels[held_out]),
        test=to_split(*read_split("t10k")),
        classes=list(spec.classes),
        mean=mean,
        std=std,
        root=root_path,
    )


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (the format of MNIST and Fashion-MNIST) into a uint8 tensor.

    The format: two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions, one
    big-endian 32-bit size per dimension, then the values in row-major order.
    """
    path = Path(path)
    content = path.read_bytes()
    if len(content) < 4 or content[:3] != b"\x00\x00\x08":
        raise DataError(
            f"{path} is not an IDX file of unsigned bytes (it starts with {content[:4].hex() or 'nothing'}, "
            "expected 000008 then the number of dimensions). Delete it and load the dataset again."
        )
    header = 4 + 4 * content[3]
    if len(content) < header:
        raise DataError(f"{path} is truncated inside its header. Delete it and load the dataset again.")
    shape = struct.unpack(f">{content[3]}I", content[4:header])
    if len(content) != header + math.prod(shape):
        raise DataError(
            f"{path} holds {len(content) - header:,} values but its header promises {math.prod(shape):,} "
            f"(shape {shape}): it is truncated or corrupted. Delete it and load the dataset again."
        )
    return torch.frombuffer(bytearray(content), dtype=torch.uint8, offset=header).reshape(shape)
