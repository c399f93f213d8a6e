"""Data sets read from folders in their standard formats (files generated here).

Expected values follow the formats as torchvision reads them: MNIST images are
the IDX bytes / 255 as float [N, 1, 28, 28] with int64 labels; CIFAR-10 images
are the 3072 bytes of a record (R, G, B planes) / 255 as [N, 3, 32, 32].
"""

import gzip
import os
import pathlib
import pickle
import struct

import numpy as np
import pytest
import torch

import ferrotorch as ft
from ferrotorch.data import Cifar10, DataLoader, Mnist, Shakespeare

# --- generators ---------------------------------------------------------------


def _idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


def _mnist_arrays(n, seed):
    rng = np.random.default_rng(seed)
    pix = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    pix[:, 0, 0] = np.arange(n)  # the sample's index, to check image/label pairing
    return pix, rng.integers(0, 10, size=n, dtype=np.uint8)


def write_mnist(folder, n_train=40, n_test=24, gz=False):
    """The four IDX files in `folder`; returns {split: (pixels, labels)}."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        pix, lab = _mnist_arrays(n, seed)
        files = {
            f"{split}-images-idx3-ubyte": _idx(2051, [n, 28, 28], pix.tobytes()),
            f"{split}-labels-idx1-ubyte": _idx(2049, [n], lab.tobytes()),
        }
        for name, raw in files.items():
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
        out[split] = (pix, lab)
    return out


def _cifar_arrays(n, seed):
    rng = np.random.default_rng(seed)
    pix = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return pix, rng.integers(0, 10, size=n).tolist()


def _stems(train):
    return [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]


def write_cifar_bin(folder, per_batch=6):
    """Binary batches `*.bin`; returns {train: (pixels, labels)}."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for train in (True, False):
        pixs, labs = [], []
        for k, stem in enumerate(_stems(train)):
            pix, lab = _cifar_arrays(per_batch, 10 * train + k)
            recs = b"".join(bytes([y]) + p.tobytes() for y, p in zip(lab, pix))
            (folder / f"{stem}.bin").write_bytes(recs)
            pixs.append(pix)
            labs += lab
        out[train] = (np.concatenate(pixs), labs)
    return out


def _py2_str(b):
    """A Python 2 byte string as cPickle writes it."""
    return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<I", len(b))) + b


def _py2_int(v):
    return b"K" + bytes([v]) if v < 256 else b"M" + struct.pack("<H", v)


def py2_batch_pickle(pix, labels):
    """A CIFAR-10 python batch byte for byte as the distributed files are
    (Python 2 cPickle, protocol 2, a numpy array through `_reconstruct`)."""
    raw = pix.tobytes()
    return (
        b"\x80\x02}q\x01("
        + _py2_str(b"data")
        + b"q\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04K\x00\x85U\x01b\x87Rq\x05("
        + b"K\x01"
        + _py2_int(pix.shape[0])
        + _py2_int(pix.shape[1])
        + b"\x86cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        + b"\x89T"
        + struct.pack("<I", len(raw))
        + raw
        + b"tb"
        + _py2_str(b"labels")
        + b"]q\x08("
        + b"".join(_py2_int(v) for v in labels)
        + b"e"
        + _py2_str(b"batch_label")
        + _py2_str(b"training batch 1 of 5")
        + _py2_str(b"filenames")
        + b"]("
        + b"".join(_py2_str(b"img_%d.png" % i) for i in range(len(labels)))
        + b"eu."
    )


def write_cifar_py(folder, per_batch=6, protocol=None):
    """Python batches (no extension); protocol None = the Python 2 form of the
    distributed files, else Python 3's pickle of the same dict."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for train in (True, False):
        pixs, labs = [], []
        for k, stem in enumerate(_stems(train)):
            pix, lab = _cifar_arrays(per_batch, 20 + 10 * train + k)
            if protocol is None:
                blob = py2_batch_pickle(pix, lab)
            else:
                d = {"batch_label": "batch", "labels": lab, "data": pix, "filenames": ["a.png"] * len(lab)}
                blob = pickle.dumps(d, protocol=protocol)
            (folder / stem).write_bytes(blob)
            pixs.append(pix)
            labs += lab
        out[train] = (np.concatenate(pixs), labs)
    return out


def _expect_mnist(ds, pix, lab):
    assert ds.data.shape == (len(lab), 1, 28, 28) and ds.data.dtype == torch.float32
    assert ds.targets.dtype == torch.int64 and len(ds) == len(lab)
    torch.testing.assert_close(ds.data, torch.from_numpy(pix).float().unsqueeze(1) / 255, rtol=0, atol=0)
    assert ds.targets.tolist() == lab.tolist()


def _expect_cifar(ds, pix, lab):
    assert ds.data.shape == (len(lab), 3, 32, 32) and ds.data.dtype == torch.float32
    assert ds.targets.dtype == torch.int64
    torch.testing.assert_close(
        ds.data, torch.from_numpy(pix).float().reshape(-1, 3, 32, 32) / 255, rtol=0, atol=0
    )
    assert ds.targets.tolist() == list(lab)


# --- MNIST --------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("layout", ["root", "torchvision"])
def test_mnist_folder_layouts(tmp_path, gz, layout):
    where = tmp_path if layout == "root" else tmp_path / "MNIST" / "raw"
    arrays = write_mnist(where, gz=gz)
    train = Mnist(tmp_path)
    _expect_mnist(train, *arrays["train"])
    test = Mnist(str(tmp_path), train=False)
    _expect_mnist(test, *arrays["t10k"])
    suffix = ".gz" if gz else ""
    assert [pathlib.Path(f) for f in test.files] == [
        where / f"t10k-images-idx3-ubyte{suffix}",
        where / f"t10k-labels-idx1-ubyte{suffix}",
    ]


def test_mnist_dtype_and_device(tmp_path):
    pix, lab = write_mnist(tmp_path)["train"]
    raw = Mnist(tmp_path, dtype=torch.uint8)
    assert raw.data.dtype == torch.uint8 and torch.equal(raw.data[:, 0], torch.from_numpy(pix))
    d64 = Mnist(tmp_path, dtype=torch.float64, device="cpu")
    torch.testing.assert_close(d64.data, torch.from_numpy(pix).double().unsqueeze(1) / 255, rtol=0, atol=0)
    assert d64.data.device.type == "cpu" and d64.targets.device.type == "cpu"
    with pytest.raises(ft.DTypeError, match="floating-point torch.dtype .* or torch.uint8"):
        Mnist(tmp_path, dtype=torch.int32)
    with pytest.raises(ft.ConfigError, match="unknown device 'gpu7'"):
        Mnist(tmp_path, device="gpu7")


def test_mnist_missing_files_name_what_was_looked_for(tmp_path):
    with pytest.raises(ft.FileError, match="does not exist.*never downloads"):
        Mnist(tmp_path / "nowhere")
    with pytest.raises(ft.FileError) as e:
        Mnist(tmp_path)
    msg = str(e.value)
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert str(tmp_path / "MNIST" / "raw") in msg and "never downloads" in msg
    assert isinstance(e.value, OSError)
    write_mnist(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(ft.FileError, match=r"t10k-images-idx3-ubyte' but not t10k-labels-idx1-ubyte"):
        Mnist(tmp_path, train=False)
    only_labels = tmp_path / "images"  # a folder name must not confuse which file is missing
    write_mnist(only_labels)
    os.remove(only_labels / "train-images-idx3-ubyte")
    with pytest.raises(ft.FileError, match=r"train-labels-idx1-ubyte' but not train-images-idx3-ubyte \(or"):
        Mnist(only_labels)


def test_mnist_malformed_files_name_the_file(tmp_path):
    write_mnist(tmp_path)
    img = tmp_path / "train-images-idx3-ubyte"
    lab = tmp_path / "train-labels-idx1-ubyte"
    good_img, good_lab = img.read_bytes(), lab.read_bytes()

    img.write_bytes(good_lab)  # a label file where the images should be
    with pytest.raises(
        ft.CheckpointError, match=r"train-images-idx3-ubyte: bad IDX magic number 2049 \(expected 2051"
    ):
        Mnist(tmp_path)
    img.write_bytes(good_img[:-100])
    with pytest.raises(
        ft.CheckpointError, match=r"train-images-idx3-ubyte: dimensions \[40, 28, 28\] need 31360 bytes"
    ):
        Mnist(tmp_path)
    img.write_bytes(good_img[:10])
    with pytest.raises(ft.CheckpointError, match="train-images-idx3-ubyte: truncated header"):
        Mnist(tmp_path)
    img.write_bytes(good_img)
    lab.unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(good_lab)[:-12])
    with pytest.raises(ft.CheckpointError, match=r"train-labels-idx1-ubyte\.gz: invalid gzip data"):
        Mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(2049, [3], [1, 2, 3])))
    with pytest.raises(ft.CheckpointError, match="40 images but 3 labels"):
        Mnist(tmp_path)
    assert isinstance(ft.CheckpointError("x"), ValueError)


def test_download_is_refused(tmp_path):
    write_mnist(tmp_path)
    for cls in (Mnist, Cifar10):
        with pytest.raises(ft.ConfigError, match="download=True is not supported.*never reaches the network"):
            cls(tmp_path, download=True)
    assert len(Mnist(tmp_path, download=False)) == 40


def test_parse_classmethods_keep_the_byte_entry_points():
    pix, lab = _mnist_arrays(5, 3)
    m = Mnist.parse(_idx(2051, [5, 28, 28], pix.tobytes()), gzip.compress(_idx(2049, [5], lab.tobytes())))
    _expect_mnist(m, pix, lab)
    assert m.images is m.data and m.labels is m.targets


# --- CIFAR-10 -----------------------------------------------------------------


@pytest.mark.parametrize("sub", ["", "cifar-10-batches-bin"])
def test_cifar_binary_batches(tmp_path, sub):
    arrays = write_cifar_bin(tmp_path / sub if sub else tmp_path)
    train, test = Cifar10(tmp_path), Cifar10(tmp_path, train=False)
    _expect_cifar(train, *arrays[True])
    _expect_cifar(test, *arrays[False])
    assert len(train) == 30 and [pathlib.Path(f).name for f in train.files] == [
        f"data_batch_{i}.bin" for i in range(1, 6)
    ]
    assert Cifar10.classes[train.targets[0]] == Cifar10.CLASS_NAMES[train.targets[0]]


@pytest.mark.parametrize("protocol", [None, 2, 3, 4, 5])
@pytest.mark.parametrize("sub", ["", "cifar-10-batches-py"])
def test_cifar_python_pickles(tmp_path, protocol, sub):
    arrays = write_cifar_py(tmp_path / sub if sub else tmp_path, protocol=protocol)
    _expect_cifar(Cifar10(tmp_path), *arrays[True])
    _expect_cifar(Cifar10(tmp_path, train=False), *arrays[False])


def test_cifar_py2_pickle_is_what_python_reads():
    """The hand-written Python 2 form is a valid pickle of the expected dict."""
    pix, lab = _cifar_arrays(3, 0)
    d = pickle.loads(py2_batch_pickle(pix, lab), encoding="bytes")
    assert d[b"labels"] == lab and np.array_equal(d[b"data"], pix) and len(d[b"filenames"]) == 3


def test_cifar_pickle_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    write_cifar_py(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({"data": Evil(), "labels": []}, protocol=2))
    with pytest.raises(ft.CheckpointError, match=r"test_batch: refuses global 'posix.mkdir'.*no code is run"):
        Cifar10(tmp_path, train=False)
    assert not marker.exists()


def test_cifar_incomplete_and_missing(tmp_path):
    with pytest.raises(ft.FileError, match="CIFAR-10 \\(test\\) not found: looked for test_batch"):
        Cifar10(tmp_path, train=False)
    write_cifar_bin(tmp_path / "cifar-10-batches-bin")
    os.remove(tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin")
    with pytest.raises(ft.FileError, match=r"cifar-10-batches-bin' is incomplete, missing data_batch_3\.bin"):
        Cifar10(tmp_path)


def test_cifar_malformed_files(tmp_path):
    write_cifar_bin(tmp_path)
    f = tmp_path / "test_batch.bin"
    good = f.read_bytes()
    f.write_bytes(good[:-1])
    with pytest.raises(
        ft.CheckpointError, match=r"test_batch\.bin: 18437 bytes is not a whole number of 3073-byte records"
    ):
        Cifar10(tmp_path, train=False)
    f.write_bytes(bytes([12]) + good[1:])
    with pytest.raises(ft.CheckpointError, match=r"test_batch\.bin: label 12 is not a class"):
        Cifar10(tmp_path, train=False)

    py = tmp_path / "py"
    write_cifar_py(py)
    g = py / "test_batch"
    blob = g.read_bytes()
    g.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ft.CheckpointError, match=r"test_batch: truncated"):
        Cifar10(py, train=False)
    g.write_bytes(b"not a pickle")
    with pytest.raises(ft.CheckpointError, match="not a python pickle"):
        Cifar10(py, train=False)
    g.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(ft.CheckpointError, match="'labels' is missing"):
        Cifar10(py, train=False)
    g.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.float32), "labels": [1, 2]}))
    with pytest.raises(ft.CheckpointError, match="dtype uint8"):
        Cifar10(py, train=False)
    g.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 2, 3]}))
    with pytest.raises(ft.CheckpointError, match=r"shape \[2, 3072\] and there are 3 labels"):
        Cifar10(py, train=False)


# --- map-style protocol, transforms, loaders ------------------------------------


def test_getitem_like_torchvision(tmp_path):
    pix, lab = write_mnist(tmp_path)["train"]
    ds = Mnist(tmp_path)
    x, y = ds[3]
    assert isinstance(y, int) and y == lab[3]
    torch.testing.assert_close(x, torch.from_numpy(pix[3]).float().unsqueeze(0) / 255, rtol=0, atol=0)
    assert ds[-1][1] == lab[-1] and ds[np.int64(2)][1] == lab[2]
    with pytest.raises(IndexError, match="index 40 is out of range for 40 samples"):
        ds[40]
    with pytest.raises(ft.InputTypeError, match="index must be an integer"):
        ds["a"]
    seen = []
    tds = Mnist(tmp_path, transform=lambda t: t * 2 - 1, target_transform=lambda v: seen.append(v) or v + 100)
    x2, y2 = tds[3]
    torch.testing.assert_close(x2, x * 2 - 1)
    assert y2 == lab[3] + 100 and seen == [lab[3]]


def test_torch_dataloader_over_dataset(tmp_path):
    pix, lab = write_mnist(tmp_path)["train"]
    ds = Mnist(tmp_path, transform=lambda t: t.flatten())
    xs, ys = [], []
    for xb, yb in torch.utils.data.DataLoader(ds, batch_size=16, shuffle=False):
        xs.append(xb)
        ys.append(yb)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (40, 784) and y.dtype == torch.int64
    torch.testing.assert_close(x, torch.from_numpy(pix).reshape(40, -1).float() / 255, rtol=0, atol=0)
    assert y.tolist() == lab.tolist()


@pytest.mark.parametrize("kind", ["mnist", "cifar"])
def test_ferrotorch_dataloader_over_dataset(tmp_path, kind):
    if kind == "mnist":
        pix, lab = write_mnist(tmp_path)["train"]
        ds = Mnist(tmp_path)
        index_of = lambda xb: (xb[:, 0, 0, 0] * 255).round().long()  # noqa: E731
    else:
        pix, lab = write_cifar_bin(tmp_path)[True]
        ds = Cifar10(tmp_path)
        flat = torch.from_numpy(pix).float() / 255
        index_of = lambda xb: torch.cdist(xb.flatten(1), flat).argmin(1)  # noqa: E731
    lab = torch.as_tensor(np.asarray(lab), dtype=torch.int64)
    loader = DataLoader(ds, 8, shuffle=True, seed=3)
    assert loader.num_samples == len(ds) and len(loader) == loader.num_batches == -(-len(ds) // 8)
    seen = []
    for xb, yb in loader.epoch(0):
        idx = index_of(xb)
        assert torch.equal(yb, lab[idx])  # images and labels stay paired
        seen += idx.tolist()
    assert sorted(seen) == list(range(len(ds))) and seen != sorted(seen)


def test_ferrotorch_dataloader_refuses_a_transform(tmp_path):
    write_mnist(tmp_path)
    ds = Mnist(tmp_path, transform=lambda t: t)
    with pytest.raises(ft.ConfigError, match="has a transform.*ds.data = f\\(ds.data\\)"):
        DataLoader(ds, 8)
    ds.data, ds.transform = ds.data * 2, None
    (xb, _yb), *_ = list(DataLoader(ds, 40, shuffle=False).epoch(0))
    torch.testing.assert_close(xb, Mnist(tmp_path).data * 2)


def test_trainer_fits_on_a_folder_dataset(tmp_path):
    from ferrotorch import FlowBuilder, Trainer
    from ferrotorch.nn import Linear
    from ferrotorch.optim import Adam

    write_mnist(tmp_path)
    ds = Mnist(tmp_path)
    ds.data = ds.data.flatten(1)
    g = FlowBuilder.from_(Linear(784, 10)).build()
    tr = Trainer(g, Adam(g.parameters(), 0.01), loss="cross_entropy")
    assert tr.fit(DataLoader(ds, 16), epochs=2).steps == 6


# --- Shakespeare --------------------------------------------------------------

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


def test_shakespeare_from_file_folder_and_text(tmp_path):
    f = tmp_path / "input.txt"
    f.write_text(TEXT, encoding="utf-8")
    from_file = Shakespeare(str(f), 8)
    from_folder = Shakespeare(tmp_path, 8)
    from_text = Shakespeare(TEXT, 8)
    vocab = sorted(set(TEXT))
    idx = [vocab.index(c) for c in TEXT]
    n = (len(TEXT) - 1) // 8
    for s in (from_file, from_folder, from_text):
        assert s.vocab == "".join(vocab) and len(s) == n
        assert s.data.flatten().tolist() == idx[: n * 8]
        assert s.targets.flatten().tolist() == idx[1 : n * 8 + 1]
    assert from_folder.files == [str(f)] and from_text.files == []
    x, y = from_file[1]
    assert s.decode(x.tolist()) == TEXT[8:16] and s.decode(y.tolist()) == TEXT[9:17]
    xb, yb = next(iter(DataLoader(from_file, 4, shuffle=False)))
    assert torch.equal(xb, from_file.data[:4]) and torch.equal(yb, from_file.targets[:4])
    tb = next(iter(torch.utils.data.DataLoader(from_file, batch_size=3)))
    assert torch.equal(tb[1], from_file.targets[:3])


def test_shakespeare_errors(tmp_path):
    with pytest.raises(ft.FileError, match="cannot read .*missing.txt"):
        Shakespeare(tmp_path / "missing.txt", 8)
    with pytest.raises(ft.FileError, match="looked for input.txt, tinyshakespeare.txt, shakespeare.txt"):
        Shakespeare(tmp_path, 8)
    (tmp_path / "bad.txt").write_bytes(b"abc\xff\xfedef")
    with pytest.raises(ft.CheckpointError, match=r"bad.txt': expected UTF-8 text, invalid byte at offset 3"):
        Shakespeare(tmp_path / "bad.txt", 2)
    with pytest.raises(ft.ConfigError, match="seq_len must be an integer >= 1"):
        Shakespeare(TEXT, 0)
    with pytest.raises(ft.InputTypeError, match="expected a path or a text"):
        Shakespeare(b"bytes", 2)
