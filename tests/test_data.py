"""DataLoader over in-memory tensors."""

import numpy as np
import pytest
import torch

import ferrotorch as ft
from ferrotorch.data import DataLoader


def _ids(loader, epoch):
    return [int(v) for (x,) in loader.epoch(epoch) for v in x.tolist()]


def test_every_sample_once_per_epoch():
    dl = DataLoader(torch.arange(23.0), 5)
    for e in range(3):
        assert sorted(_ids(dl, e)) == list(range(23))


def test_shuffle_reproducible_and_changes_per_epoch():
    a, b = DataLoader(torch.arange(40.0), 8, seed=1), DataLoader(torch.arange(40.0), 8, seed=1)
    assert _ids(a, 2) == _ids(b, 2)
    assert _ids(a, 0) != _ids(a, 1)
    assert _ids(a, 0) != _ids(DataLoader(torch.arange(40.0), 8, seed=2), 0)


def test_no_shuffle_keeps_order():
    assert _ids(DataLoader(torch.arange(7.0), 3, shuffle=False), 0) == list(range(7))


def test_drop_last_both_ways():
    assert DataLoader(torch.zeros(10), 3, drop_last=True).num_batches == 3
    dl = DataLoader(torch.zeros(10), 3)
    assert dl.num_batches == 4 and [b[0].shape[0] for b in dl.epoch(0)] == [3, 3, 3, 1]


def test_pairs_stay_aligned_and_numpy_accepted():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = torch.arange(6) * 10
    for xb, yb in DataLoader((x, y), 4):
        assert torch.equal(xb[:, 0].long() // 2 * 10, yb)


def test_iter_advances_epoch_and_len():
    dl = DataLoader(torch.arange(30.0), 10)
    first = [b[0].tolist() for b in dl]
    second = [b[0].tolist() for b in dl]
    assert first != second and len(dl) == 3 == len(dl.epoch(0)) and dl.num_samples == 30


def test_dict_fields_named():
    dl = DataLoader({"x": torch.zeros(4, 2), "y": torch.ones(4)}, 2)
    assert dl.names == ["x", "y"]


def test_bad_input():
    with pytest.raises(ft.ShapeError, match="field 1 has 5 samples"):
        DataLoader((torch.zeros(4, 2), torch.zeros(5)), 2)
    with pytest.raises(ft.ConfigError, match="batch_size"):
        DataLoader(torch.zeros(4), 0)
    with pytest.raises(ft.ConfigError, match="empty"):
        DataLoader(torch.zeros(0, 3), 2)
    with pytest.raises(ft.InputTypeError, match=r"data\[1\]"):
        DataLoader((torch.zeros(4), "y"), 2)
    with pytest.raises(ft.ConfigError, match="names"):
        DataLoader((torch.zeros(4), torch.zeros(4)), 2, names=["a"])


def test_field_index():
    dl = DataLoader({"x": torch.zeros(4, 2), "y": torch.ones(4)}, 2)
    assert dl.field_index("y") == 1
    with pytest.raises(ft.TagError, match="no field 'z'"):
        dl.field_index("z")


# --- Kaun-style pipelines -----------------------------------------------------

from ferrotorch.data import Cifar10, Data, Mnist, Shakespeare  # noqa: E402


def test_constructors():
    assert Data.of_array([3, 1, 2]).to_list() == [3, 1, 2]
    assert Data.of_fn(4, lambda i: i * i).to_list() == [0, 1, 4, 9]
    assert Data.repeat(3, "a").to_list() == ["a", "a", "a"]
    t = torch.arange(6.0).reshape(3, 2)
    rows = Data.of_tensor(t).to_list()
    assert len(rows) == 3 and torch.equal(rows[1], t[1])
    pairs = Data.of_tensors((t, torch.tensor([7, 8, 9]))).to_list()
    assert torch.equal(pairs[2][0], t[2]) and pairs[2][1].item() == 9
    with pytest.raises(ft.ShapeError, match="first dimensions differ"):
        Data.of_tensors((t, torch.zeros(4)))
    with pytest.raises(ft.ConfigError, match="n >= 0"):
        Data.of_fn(-1, lambda i: i)


def test_transformers_and_consumers_as_kaun():
    d = Data.of_array(range(7)).map(lambda v: v + 1).batch(3)
    assert d.length == 3
    assert d.to_list() == [[1, 2, 3], [4, 5, 6], [7]]
    assert d.to_list() == []  # consumers do not rewind
    d.reset()
    assert d.fold(lambda acc, b: acc + sum(b), 0) == 28
    d2 = Data.of_array(range(7)).batch(3, drop_last=True)
    assert d2.length == 2 and d2.to_list() == [[0, 1, 2], [3, 4, 5]]
    seen = []
    Data.of_array("ab").iteri(lambda i, v: seen.append((i, v)))
    assert seen == [(0, "a"), (1, "b")]
    out = []
    Data.of_array([1, 2]).iter(out.append)
    assert out == [1, 2]
    mb = Data.of_array(range(5)).map_batch(2, sum).to_list()
    assert mb == [1, 5, 4]
    with pytest.raises(ft.ConfigError, match="n > 0"):
        Data.of_array([1]).batch(0)


def test_shuffle_fixed_permutation():
    a = Data.of_array(range(20)).shuffle(5)
    first = a.to_list()
    a.reset()
    assert a.to_list() == first and sorted(first) == list(range(20)) and first != list(range(20))
    assert Data.of_array(range(20)).shuffle(5).to_list() == first
    assert Data.of_array(range(20)).shuffle(6).to_list() != first


def test_prepare_batches_pairs():
    x = torch.arange(10.0).unsqueeze(1)
    y = torch.arange(10)
    batches = Data.prepare((x, y), 4).to_list()
    assert len(batches) == 2  # drop_last defaults to True
    for xb, yb in batches:
        assert torch.equal(xb[:, 0].long(), yb)
    shuffled = Data.prepare((x, y), 4, shuffle=1, drop_last=False)
    got = [yb.tolist() for _, yb in shuffled]
    assert len(got) == 3 and sorted(sum(got, [])) == list(range(10)) and got[0] != [0, 1, 2, 3]
    shuffled.reset()
    assert [yb.tolist() for _, yb in shuffled] == got


def test_fit_accepts_pipelines_torch_loaders_and_rejects_spent_generators():
    from ferrotorch import FlowBuilder, Trainer
    from ferrotorch.nn import Linear
    from ferrotorch.optim import Adam

    x, y = torch.randn(32, 3), torch.randn(32, 1)
    g = FlowBuilder.from_(Linear(3, 1)).build()
    tr = Trainer(g, Adam(g.parameters(), 0.01))
    assert tr.fit(Data.prepare((x, y), 8), epochs=3).steps == 12  # reset per epoch
    tdl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    assert tr.fit(tdl, epochs=2).steps == 4
    gen = ((x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8))
    with pytest.raises(ValueError, match="no batches"):
        tr.fit(gen, epochs=2)


# --- data set parsers ---------------------------------------------------------


def _idx(magic, dims, payload):
    import struct

    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


def test_mnist_parse_plain_and_gzip():
    import gzip

    rng = np.random.default_rng(0)
    pix = rng.integers(0, 256, size=3 * 28 * 28, dtype=np.uint8)
    labels = [5, 0, 9]
    img, lab = _idx(2051, [3, 28, 28], pix), _idx(2049, [3], labels)
    for a, b in ((img, lab), (gzip.compress(img), gzip.compress(lab))):
        m = Mnist.parse(a, b)
        assert m.images.shape == (3, 1, 28, 28) and m.images.dtype == torch.float32 and len(m) == 3
        torch.testing.assert_close(m.images.flatten(), torch.from_numpy(pix).float() / 255)
        assert m.labels.tolist() == labels and m.labels.dtype == torch.int64


def test_mnist_malformed():
    img = _idx(2051, [2, 28, 28], [0] * (2 * 784))
    lab = _idx(2049, [2], [1, 2])
    with pytest.raises(ft.ConfigError, match="magic"):
        Mnist.parse(_idx(2049, [2, 28, 28], [0] * (2 * 784)), lab)
    with pytest.raises(ft.ConfigError, match="MNIST images.*need 1568 bytes"):
        Mnist.parse(img[:-5], lab)
    with pytest.raises(ft.ConfigError, match="truncated header"):
        Mnist.parse(img[:6], lab)
    with pytest.raises(ft.ConfigError, match="2 images but 3 labels"):
        Mnist.parse(img, _idx(2049, [3], [1, 2, 3]))
    with pytest.raises(ft.ConfigError, match="gzip"):
        Mnist.parse(b"\x1f\x8bgarbage", lab)


def test_cifar10_parse():
    rng = np.random.default_rng(1)
    recs, labels, pixels = [], [3, 7], []
    for lab in labels:
        p = rng.integers(0, 256, size=3072, dtype=np.uint8)
        pixels.append(p)
        recs.append(bytes([lab]) + p.tobytes())
    c = Cifar10.parse([recs[0], recs[1]])
    assert c.images.shape == (2, 3, 32, 32) and c.labels.tolist() == labels
    torch.testing.assert_close(c.images[1], torch.from_numpy(pixels[1]).float().reshape(3, 32, 32) / 255)
    assert Cifar10.CLASS_NAMES[3] == "cat"
    with pytest.raises(ft.ConfigError, match="batch 0.*records"):
        Cifar10.parse([recs[0][:-1]])
    with pytest.raises(ft.ConfigError, match="label 12"):
        Cifar10.parse([bytes([12]) + bytes(3072)])


def test_shakespeare_parse():
    text = "to be or not to be"
    s = Shakespeare.parse(text, 4)
    vocab = sorted(set(text))
    assert s.vocab == "".join(vocab) and s.vocab_size == len(vocab)
    n = (len(text) - 1) // 4
    assert s.data.shape == (n, 4) and s.targets.shape == (n, 4) and len(s) == n
    idx = [vocab.index(c) for c in text]
    assert s.data.flatten().tolist() == idx[: n * 4]
    assert s.targets.flatten().tolist() == idx[1 : n * 4 + 1]
    assert s.decode(s.data[0].tolist()) == text[:4]
    assert s.char_to_idx("t") == vocab.index("t") and s.idx_to_char(0) == vocab[0]
    with pytest.raises(ft.ConfigError, match="too few"):
        Shakespeare.parse("ab", 4)
    with pytest.raises(ft.ConfigError, match="outside the vocabulary"):
        s.decode([99])
