"""Files under attack, as an outside user meets them: corrupted checkpoints
of every kind (seeded fuzz: truncations, bit flips, header lies, empty,
garbage, wrong kinds), SIGKILL during saves, and stray temporary files.

A failed load is a ferrotorch.Error naming the file, and changes nothing.
ferrotorch's own formats (training state, optimizer state) carry a SHA-256,
so every corruption is an error. For .fdl and safetensors (formats shared
with others) a corruption outside tensor data is an error or loads a
structurally valid file whose report says what loaded."""

import copy
import json
import os
import random
import subprocess
import sys
import textwrap

import pytest
import torch

import ferrotorch as ft
from ferrotorch import checkpoint as ck
from ferrotorch.nn import Linear, ReLU
from ferrotorch.optim import Adam

CASES_PER_KIND = 600


def _graph(seed=0):
    torch.manual_seed(seed)
    return ft.FlowBuilder.from_(Linear(4, 3)).through(ReLU()).through(Linear(3, 2)).build()


def _trained(seed=0):
    g = _graph(seed)
    tr = ft.Trainer(g, Adam(g.parameters(), 0.01), loss="mse")
    for _ in range(2):
        tr.step(torch.randn(5, 4), torch.randn(5, 2))
    return g, tr


def _values(g):
    return {k: v.detach().clone() for k, v in g.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _opt_same(a, b):
    return a["param_groups"] == b["param_groups"] and all(
        a["state"][i].keys() == b["state"][i].keys()
        and all(
            torch.equal(torch.as_tensor(a["state"][i][k]), torch.as_tensor(b["state"][i][k]))
            for k in a["state"][i]
        )
        for i in a["state"]
    )


def _mutate(data: bytes, rng: random.Random, kind: str) -> bytes:
    op = rng.choice(["flip", "flip", "flip", "truncate", "header", "zero-run"])
    b = bytearray(data)
    if op == "flip":
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    elif op == "truncate":
        b = b[: rng.randrange(len(b))]
    elif op == "header":  # lie in the first bytes: sizes, counts, name lengths
        i = rng.randrange(min(64, len(b)))
        b[i] = rng.choice([0x00, 0xFF, 0x7F, 0x80, b[i] ^ 0x10])
        if b == bytearray(data):
            b[i] ^= 1
    else:
        i = rng.randrange(len(b))
        n = rng.randrange(1, 16)
        run = bytes(min(n, len(b) - i))
        if bytes(b[i : i + n]) == run:
            b[i] ^= 0xFF
        else:
            b[i : i + n] = run
    return bytes(b)


class Kind:
    """One file kind: how to save it, load it into a fresh target, snapshot
    the target, and whether its format is ferrotorch's own (checksummed)."""

    def __init__(self, name, suffix, own):
        self.name, self.suffix, self.own = name, suffix, own

    def save(self, path):
        g, tr = _trained()
        if self.name in ("fdl", "fdl.gz"):
            ck.save_checkpoint(g, path)
        elif self.name == "safetensors":
            ck.save_safetensors(g, path)
        elif self.name == "training":
            tr.save_state(path)
        else:
            tr.optimizer.save_state(path)

    def target(self):
        g, tr = _trained(seed=7)
        return g, tr

    def snapshot(self, g, tr):
        return (
            _values(g),
            copy.deepcopy(tr.optimizer.state_dict()),
            dict(tr._engine.state),
            torch.get_rng_state(),
        )

    def load(self, path, g, tr):
        if self.name in ("fdl", "fdl.gz"):
            return ck.load_checkpoint(path, g)
        if self.name == "safetensors":
            return ck.load_safetensors(path, g)
        if self.name == "training":
            return tr.load_state(path)
        return tr.optimizer.load_state(path)


KINDS = [
    Kind("fdl", ".fdl", False),
    Kind("fdl.gz", ".fdl.gz", False),
    Kind("safetensors", ".safetensors", False),
    Kind("training", ".pt", True),
    Kind("optimizer", ".opt", True),
]


def _unchanged(kind, g, tr, snap):
    vals, opt, engine, rng = snap
    return (
        _same(vals, _values(g))
        and _opt_same(opt, tr.optimizer.state_dict())
        and dict(tr._engine.state) == engine
        and torch.equal(rng, torch.get_rng_state())
    )


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_fuzzed_files_error_cleanly_and_change_nothing(tmp_path, kind):
    rng = random.Random(f"ferrotorch-fuzz-{kind.name}")
    good = str(tmp_path / f"good{kind.suffix}")
    kind.save(good)
    data = open(good, "rb").read()
    g0, tr0 = kind.target()
    kind.load(good, g0, tr0)  # the uncorrupted file loads
    expected = kind.snapshot(g0, tr0)
    bad = str(tmp_path / f"bad{kind.suffix}")
    counts = {"tried": 0, "errors": 0, "loaded": 0}
    g, tr = kind.target()
    for i in range(CASES_PER_KIND):
        mutated = _mutate(data, rng, kind.name)
        with open(bad, "wb") as f:
            f.write(mutated)
        snap = kind.snapshot(g, tr)
        counts["tried"] += 1
        try:
            report = kind.load(bad, g, tr)
        except ft.Error as e:
            assert isinstance(e, (ft.CheckpointError, ft.FileError)), (i, e)
            assert "bad" in str(e), (i, str(e))  # names the file
            assert _unchanged(kind, g, tr, snap), (i, "a failed load changed state", str(e))
            counts["errors"] += 1
            continue
        counts["loaded"] += 1
        # Own formats are checksummed: any change must have been an error.
        assert not kind.own, (i, "a corrupted ferrotorch file loaded silently")
        # Shared formats: what loaded is structurally valid and reported.
        live = set(g.state_dict())
        assert set(report.loaded) <= live, (i, report.loaded)
        after = _values(g)
        for name in live - set(report.loaded):
            assert torch.equal(after[name], snap[0][name]), (i, "an unreported entry changed", name)
        for name in report.loaded:
            assert after[name].shape == expected[0][name].shape
        kind.load(good, g, tr)  # reset for the next case
    print(f"\nfuzz {kind.name}: {json.dumps(counts)}")
    assert counts["tried"] == CASES_PER_KIND and counts["errors"] > 0


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_empty_garbage_missing_and_wrong_kind_files(tmp_path, kind):
    (tmp_path / f"empty{kind.suffix}").write_bytes(b"")
    (tmp_path / f"garbage{kind.suffix}").write_bytes(os.urandom(4096))
    torch.save({"not": "ours"}, tmp_path / f"pickle{kind.suffix}")
    other = KINDS[(KINDS.index(kind) + 3) % len(KINDS)]
    other.save(str(tmp_path / f"wrongkind{kind.suffix}"))
    g, tr = kind.target()
    snap = kind.snapshot(g, tr)
    for name in ("empty", "garbage", "pickle", "wrongkind"):
        path = str(tmp_path / f"{name}{kind.suffix}")
        with pytest.raises(ft.CheckpointError, match=name):
            kind.load(path, g, tr)
        assert _unchanged(kind, g, tr, snap), name
    with pytest.raises(ft.FileError, match="missing"):
        kind.load(str(tmp_path / f"missing{kind.suffix}"), g, tr)
    os.mkdir(tmp_path / f"adir{kind.suffix}")
    with pytest.raises(ft.FileError, match="adir"):
        kind.load(str(tmp_path / f"adir{kind.suffix}"), g, tr)
    assert _unchanged(kind, g, tr, snap)


def test_checksum_covers_every_byte_and_old_files_still_load(tmp_path):
    g, tr = _trained()
    path = str(tmp_path / "opt.pt")
    tr.optimizer.save_state(path)
    data = open(path, "rb").read()
    assert b"ferrotorch-sha256:" in data[-100:]
    assert torch.load(path, weights_only=True)["state"]  # still a plain torch file
    for i in range(0, len(data), max(1, len(data) // 300)):  # a flip anywhere is caught
        b = bytearray(data)
        b[i] ^= 0x01
        (tmp_path / "flip.pt").write_bytes(bytes(b))
        with pytest.raises(ft.CheckpointError, match="flip.pt"):
            tr.optimizer.load_state(str(tmp_path / "flip.pt"))
    torch.save(tr.optimizer.state_dict(), tmp_path / "old.pt")  # no checksum: still read
    tr.optimizer.load_state(str(tmp_path / "old.pt"))


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "dead_py": f".model.pt.{dead.pid}.ab12cd34.tmp",
            "dead_rs": f".model.fdl.{dead.pid}.3.tmp",
            "live": f".model.pt.{live.pid}.ab12cd34.tmp",
            "mine": f".model.pt.{os.getpid()}.ffffffff.tmp",
            "other": "notes.tmp",
        }
        for n in names.values():
            (tmp_path / n).write_bytes(b"partial")
        g, tr = _trained()
        tr.optimizer.save_state(str(tmp_path / "opt.pt"))  # the Python writer cleans
        left = set(os.listdir(tmp_path))
        assert names["dead_py"] not in left and names["dead_rs"] not in left
        assert {names["live"], names["mine"], names["other"]} <= left
        (tmp_path / names["dead_py"]).write_bytes(b"partial")
        ck.save_checkpoint(g, str(tmp_path / "m.fdl"))  # and so does the Rust one
        assert names["dead_py"] not in set(os.listdir(tmp_path))
        assert names["live"] in set(os.listdir(tmp_path))
    finally:
        live.kill()
        live.wait()


_KILLER = textwrap.dedent(
    r"""
    import json, os, signal, sys, time
    import torch
    torch.set_num_threads(1)  # the saver is forked: keep libgomp's pool out of it
    import ferrotorch as ft
    from ferrotorch import checkpoint as ck
    from ferrotorch.nn import Linear
    from ferrotorch.optim import Adam

    folder, kills = sys.argv[1], int(sys.argv[2])
    g = ft.FlowBuilder.from_(Linear(64, 64)).through(Linear(64, 8)).build()
    tr = ft.Trainer(g, Adam(g.parameters(), 0.01), loss="mse")
    tr.step(torch.randn(4, 64), torch.randn(4, 8))

    def fill(v):
        with torch.no_grad():
            for p in g.parameters():
                p.fill_(v)

    def save(fmt, path):
        if fmt == "fdl" or fmt == "fdl.gz":
            ck.save_checkpoint(g, path)
        elif fmt == "safetensors":
            ck.save_safetensors(g, path)
        elif fmt == "training":
            tr.save_state(path)
        else:
            tr.optimizer.save_state(path)

    def check(fmt, path):
        h = ft.FlowBuilder.from_(Linear(64, 64)).through(Linear(64, 8)).build()
        if fmt in ("fdl", "fdl.gz"):
            ck.load_checkpoint(path, h)
        elif fmt == "safetensors":
            ck.load_safetensors(path, h)
        elif fmt == "training":
            t2 = ft.Trainer(h, Adam(h.parameters(), 0.01), loss="mse")
            t2.load_state(path)
        else:
            Adam(h.parameters(), 0.01).load_state(path)
            return
        vals = {float(p.flatten()[0]) for p in h.parameters()}
        assert len(vals) == 1 and all(bool((p == p.flatten()[0]).all()) for p in h.parameters()), vals

    # SIGKILLs the saver while its temporary file exists. It is stopped first,
    # so the check and the kill see the same moment: the kill lands inside a
    # save (temp file created, not renamed yet), proven, not timed.
    def kill_mid_write(pid):
        mine = f".{pid}."
        for _ in range(200_000):
            os.kill(pid, signal.SIGSTOP)
            os.waitpid(pid, os.WUNTRACED)
            if any(mine in n and n.endswith(".tmp") for n in os.listdir(folder)):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return True
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.0002)  # pacing only: the proof is the stopped state
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return False

    out = {}
    for fmt, suffix in [("fdl", ".fdl"), ("fdl.gz", ".fdl.gz"), ("safetensors", ".safetensors"),
                        ("training", ".pt"), ("optimizer", ".opt")]:
        path = os.path.join(folder, "ckpt" + suffix)
        fill(0.0)
        save(fmt, path)
        landed, lost, most_temps = 0, 0, 0
        for k in range(kills):
            pid = os.fork()
            if pid == 0:  # the saver: rewrite the file until killed
                v = 1.0
                while True:
                    fill(v)
                    save(fmt, path)
                    v += 1.0
            landed += kill_mid_write(pid)
            try:
                check(fmt, path)
            except Exception as e:
                lost += 1
                print(fmt, k, repr(e), file=sys.stderr)
            temps = [n for n in os.listdir(folder) if n.endswith(".tmp")]
            most_temps = max(most_temps, len(temps))
        fill(0.0)
        save(fmt, path)  # a live writer's save removes the dead writers' files
        left = [n for n in os.listdir(folder) if n.endswith(".tmp")]
        out[fmt] = {"kills": kills, "landed": landed, "lost": lost, "most_temps": most_temps,
                    "temps_left": len(left)}
    print(json.dumps(out))
    """
)


def test_sigkill_during_saves_loses_nothing_and_leaves_no_temp_files(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run(
        [sys.executable, "-c", _KILLER, str(tmp_path), "20"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    print("\nkills:", json.dumps(out))
    for fmt, r in out.items():
        # every kill landed inside a save, and none lost the previous file
        assert r["kills"] == r["landed"] == 20 and r["lost"] == 0, (fmt, r, p.stderr[-2000:])
        # the killed save's temp file stays until the next writer removes it (the next saver's
        # first save does, so one at a time); a save by a live process removes all of them
        assert r["most_temps"] == 1 and r["temps_left"] == 0, (fmt, r)
