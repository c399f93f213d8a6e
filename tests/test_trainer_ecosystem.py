"""ferrotorch.Trainer trains Hugging Face and timm models the way their
ecosystems feed them: dict batches passed as keyword arguments, ModelOutput
(and tuple / dict) outputs, the model's own loss under ``loss=None``, and
``predict`` / ``evaluate`` returning logits. Each case is compared with the
equivalent hand-written torch loop from the same weights (``copy.deepcopy``)
and the same RNG state: the same ops run, so weights and losses are
bit-equal. The models are tiny configs built here (no download)."""

import copy
import sys

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.data import DataLoader
from ferrotorch.nn import GELU, Linear

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")


def _bert():
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
        max_position_embeddings=16,
    )
    return transformers.BertForSequenceClassification(cfg)


def _gpt2():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    return transformers.GPT2LMHeadModel(cfg)


def _text_batches(n=3, rows=4, seq=7, label_key="labels"):
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        mask = torch.ones(rows, seq, dtype=torch.long)
        mask[0, -2:] = 0  # some padding, so the mask matters
        out.append(
            {
                "input_ids": torch.randint(0, 50, (rows, seq), generator=g),
                "attention_mask": mask,
                label_key: torch.randint(0, 3, (rows,), generator=g),
            }
        )
    return out


def _same(a, b):
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), k


def _adamw(params, kind):
    if kind == "torch":
        return torch.optim.AdamW(params, lr=1e-2, fused=True)
    return ft.optim.AdamW(params, lr=1e-2, implementation="fused")


# --- Hugging Face: dict batches and ModelOutput ---------------------------------------


@pytest.mark.parametrize("feed", ["list", "torch_loader", "ft_loader", "step"])
@pytest.mark.parametrize("opt", ["torch", "ferrotorch"])
def test_bert_trains_on_its_own_loss_as_the_hf_loop(feed, opt):
    """loss=None: model(**batch) with labels, trained on output.loss, dropout on."""
    model = _bert()
    ref = copy.deepcopy(model)
    batches = _text_batches()
    trainer = Trainer(model, _adamw(model.parameters(), opt), loss=None)
    whole = {k: torch.cat([b[k] for b in batches]) for k in batches[0]}
    rows = [{k: v[i] for k, v in whole.items()} for i in range(len(whole["labels"]))]
    # torch's DataLoader draws a seed from the global RNG per epoch: the
    # reference iterates it too, so dropout sees the same RNG state.
    loader = torch.utils.data.DataLoader(rows, batch_size=4, shuffle=False)
    torch.manual_seed(7)
    if feed == "list":
        losses = trainer.fit(batches, epochs=2).step_losses
    elif feed == "torch_loader":
        losses = trainer.fit(loader, epochs=2).step_losses
    elif feed == "ft_loader":
        losses = trainer.fit(DataLoader(whole, 4, shuffle=False), epochs=2).step_losses
    else:
        losses = [trainer.step(b) for _ in range(2) for b in batches]
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, fused=True)
    torch.manual_seed(7)
    ref_losses = []
    for _ in range(2):
        for b in loader if feed == "torch_loader" else batches:
            ref_opt.zero_grad()
            out = ref(**b)
            out.loss.backward()
            ref_opt.step()
            ref_losses.append(out.loss.item())
    assert losses == ref_losses
    _same(model, ref)
    assert trainer.global_step == 6


@pytest.mark.parametrize("label_key", ["labels", "label"])
def test_bert_builtin_loss_applies_to_logits_with_the_dict_labels(label_key):
    """loss="cross_entropy": 'labels' (or 'label') is the target, taken out
    of the model's inputs; the loss applies to output.logits."""
    model = _bert()
    ref = copy.deepcopy(model)
    batches = _text_batches(label_key=label_key)
    trainer = Trainer(
        model, _adamw(model.parameters(), "ferrotorch"), loss="cross_entropy", clip_grad_norm=0.5
    )
    torch.manual_seed(3)
    hist = trainer.fit(batches, epochs=2)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, fused=True)
    torch.manual_seed(3)
    ref_losses = []
    for _ in range(2):
        for b in batches:
            inputs = {k: v for k, v in b.items() if k != label_key}
            ref_opt.zero_grad()
            out = ref(**inputs)
            assert out.loss is None  # the labels did not reach the model
            loss = F.cross_entropy(out.logits, b[label_key])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
            ref_opt.step()
            ref_losses.append(loss.item())
    assert hist.step_losses == ref_losses
    _same(model, ref)


def test_bert_loss_callable_gets_the_output_and_the_target():
    model = _bert()
    ref = copy.deepcopy(model)
    batches = _text_batches()
    seen = []

    def loss_fn(out, target):
        seen.append((type(out).__name__, target.shape))
        return F.cross_entropy(out.logits, target, label_smoothing=0.1)

    trainer = Trainer(model, torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True), loss=loss_fn)
    torch.manual_seed(4)
    got = [trainer.step(b) for b in batches]
    assert seen[0] == ("SequenceClassifierOutput", torch.Size([4]))
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, fused=True)
    torch.manual_seed(4)
    want = []
    for b in batches:
        ref_opt.zero_grad()
        out = ref(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        loss = F.cross_entropy(out.logits, b["labels"], label_smoothing=0.1)
        loss.backward()
        ref_opt.step()
        want.append(loss.item())
    assert got == want
    _same(model, ref)


def test_loss_callable_without_a_labels_key_gets_the_whole_batch():
    model = _bert()
    ref = copy.deepcopy(model)
    batches = _text_batches(label_key="target")

    def loss_fn(out, batch):
        return F.cross_entropy(out.logits, batch["target"])

    class Fwd(torch.nn.Module):  # takes the whole dict, 'target' included
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, target):
            return self.m(input_ids=input_ids, attention_mask=attention_mask)

    trainer = Trainer(Fwd(model), torch.optim.SGD(model.parameters(), lr=0.1), loss=loss_fn)
    torch.manual_seed(2)
    got = [trainer.step(b) for b in batches]
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    torch.manual_seed(2)
    want = []
    for b in batches:
        ref_opt.zero_grad()
        loss = F.cross_entropy(
            ref(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, b["target"]
        )
        loss.backward()
        ref_opt.step()
        want.append(loss.item())
    assert got == want
    _same(model, ref)


def test_bert_predict_and_evaluate_return_logits():
    model = _bert()
    batches = _text_batches()
    trainer = Trainer(model, torch.optim.AdamW(model.parameters(), lr=1e-2), loss=None)
    trainer.fit(batches[:2], epochs=1)
    assert model.training  # fit's mode is restored after predict / evaluate below
    model.eval()
    with torch.no_grad():
        want = [model(**b) for b in batches]
    model.train()
    # predict: the logits; a dict's labels are left out of the inputs.
    got = trainer.predict(batches[0])
    assert isinstance(got, torch.Tensor) and not got.requires_grad
    assert torch.equal(got, want[0].logits)
    assert torch.equal(
        trainer.predict({"input_ids": batches[0]["input_ids"]}), model.eval()(batches[0]["input_ids"]).logits
    )
    model.train()
    # evaluate: the output's own loss, metrics on logits vs the labels.
    res = trainer.evaluate(batches, metrics=["accuracy"])
    assert model.training
    assert res["loss"] == pytest.approx(sum(o.loss.item() for o in want) / 3, rel=1e-6)
    pred = torch.cat([o.logits for o in want]).argmax(1)
    acc = (pred == torch.cat([b["labels"] for b in batches])).float().mean().item()
    assert res["accuracy"] == pytest.approx(acc)
    # the same with a built-in loss: cross_entropy on the logits.
    tr2 = Trainer(model, torch.optim.AdamW(model.parameters(), lr=1e-2), loss="cross_entropy")
    res2 = tr2.evaluate(batches)
    want2 = [F.cross_entropy(o.logits, b["labels"]).item() for o, b in zip(want, batches)]
    assert res2["loss"] == pytest.approx(sum(want2) / 3, rel=1e-6)


def test_gpt2_language_model_trains_on_its_own_loss():
    model = _gpt2()
    ref = copy.deepcopy(model)
    g = torch.Generator().manual_seed(5)
    batches = []
    for _ in range(3):
        ids = torch.randint(0, 50, (2, 8), generator=g)
        batches.append({"input_ids": ids, "labels": ids})
    trainer = Trainer(model, _adamw(model.parameters(), "ferrotorch"), loss=None)
    torch.manual_seed(9)
    hist = trainer.fit(batches, epochs=2)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, fused=True)
    torch.manual_seed(9)
    want = []
    for _ in range(2):
        for b in batches:
            ref_opt.zero_grad()
            out = ref(**b)
            out.loss.backward()
            ref_opt.step()
            want.append(out.loss.item())
    assert hist.step_losses == want
    _same(model, ref)
    logits = trainer.predict(batches[0]["input_ids"])
    assert logits.shape == (2, 8, 50)
    ref.eval()
    with torch.no_grad():
        assert torch.equal(logits, ref(batches[0]["input_ids"]).logits)


def test_tuple_outputs_and_return_dict_false():
    """A tuple output (return_dict=False): loss=None trains on its first
    element; predict returns the logits."""
    model = _bert()
    model.config.return_dict = False
    ref = copy.deepcopy(model)
    batches = _text_batches()
    trainer = Trainer(model, torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True), loss=None)
    torch.manual_seed(1)
    got = [trainer.step(b) for b in batches]
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, fused=True)
    torch.manual_seed(1)
    want = []
    for b in batches:
        ref_opt.zero_grad()
        loss = ref(**b)[0]
        loss.backward()
        ref_opt.step()
        want.append(loss.item())
    assert got == want
    _same(model, ref)
    ref.eval()
    with torch.no_grad():
        assert torch.equal(
            trainer.predict(batches[0]), ref(batches[0]["input_ids"], batches[0]["attention_mask"])[0]
        )


# --- timm: tensor batches, tuple inputs ----------------------------------------------


def _images(n=3, rows=4, size=16):
    g = torch.Generator().manual_seed(2)
    return [
        (torch.randn(rows, 3, size, size, generator=g), torch.randint(0, 3, (rows,), generator=g))
        for _ in range(n)
    ]


@pytest.mark.parametrize("arch", ["vit", "resnet18"])
@pytest.mark.parametrize("feed", ["list", "ft_loader"])
def test_timm_model_trains_as_a_torch_loop(arch, feed):
    torch.manual_seed(0)
    if arch == "vit":
        model = timm.create_model(
            "vit_tiny_patch16_224",
            pretrained=False,
            num_classes=3,
            img_size=16,
            patch_size=8,
            embed_dim=16,
            depth=1,
            num_heads=2,
            drop_rate=0.1,
        )
    else:
        # resnet18's layout with narrow channels: BatchNorm buffers, a few seconds
        model = timm.create_model(
            "resnet18", pretrained=False, num_classes=3, channels=(8, 16, 32, 64), stem_width=8
        )
    ref = copy.deepcopy(model)
    data = _images()
    trainer = Trainer(model, _adamw(model.parameters(), "ferrotorch"), loss="cross_entropy")
    torch.manual_seed(6)
    if feed == "list":
        hist = trainer.fit(data, epochs=2)
    else:
        x, y = torch.cat([d[0] for d in data]), torch.cat([d[1] for d in data])
        hist = trainer.fit(DataLoader((x, y), 4, shuffle=False), epochs=2)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, fused=True)
    torch.manual_seed(6)
    want = []
    for _ in range(2):
        for x, y in data:
            ref_opt.zero_grad()
            loss = F.cross_entropy(ref(x), y)
            loss.backward()
            ref_opt.step()
            want.append(loss.item())
    assert hist.step_losses == want
    _same(model, ref)
    for a, b in zip(model.buffers(), ref.buffers()):  # BatchNorm statistics
        assert torch.equal(a, b)
    ref.eval()
    with torch.no_grad():
        assert torch.equal(trainer.predict(data[0][0]), ref(data[0][0]))
        res = trainer.evaluate(data, metrics=["accuracy"])
        losses = [F.cross_entropy(ref(x), y).item() for x, y in data]
    assert res["loss"] == pytest.approx(sum(losses) / 3, rel=1e-6)


def test_several_positional_inputs_and_a_dict_input():
    """(x1, x2, target) → model(x1, x2); ({'a': .., 'b': ..}, target) → model(**inputs)."""

    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(4, 3), torch.nn.Linear(2, 3)

        def forward(self, a, b):
            return self.a(a) + self.b(b)

    torch.manual_seed(0)
    model = Two()
    ref = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    rows = [
        (torch.randn(5, 4, generator=g), torch.randn(5, 2, generator=g), torch.randn(5, 3, generator=g))
        for _ in range(4)
    ]
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss="mse")
    got = trainer.fit(rows[:2], epochs=1).step_losses
    got += [trainer.step(({"a": a, "b": b}, y)) for a, b, y in rows[2:3]]
    got += [trainer.step((a, b), y) for a, b, y in rows[3:]]
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    want = []
    for a, b, y in rows:
        ref_opt.zero_grad()
        loss = F.mse_loss(ref(a, b), y)
        loss.backward()
        ref_opt.step()
        want.append(loss.item())
    assert got == want
    _same(model, ref)
    assert torch.equal(trainer.predict((rows[0][0], rows[0][1])), model(rows[0][0], rows[0][1]).detach())


# --- the rule's errors ---------------------------------------------------------------


def test_ambiguous_or_incomplete_batches_raise_config_errors_naming_the_structure():
    model = _bert()
    b = _text_batches(1)[0]
    tr = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss="cross_entropy")
    no_label = {k: v for k, v in b.items() if k != "labels"}
    with pytest.raises(ft.ConfigError, match=r"dict with keys \['input_ids', 'attention_mask'\].*'labels'"):
        tr.step(no_label)
    with pytest.raises(ft.ConfigError, match="both 'labels' and 'label'"):
        tr.step({**b, "label": b["labels"]})
    with pytest.raises(ft.ConfigError, match="tensor of shape \\[4, 7\\].*needs a target"):
        tr.step(b["input_ids"])
    with pytest.raises(ft.ConfigError, match="tuple of 1"):
        tr.fit([(b["input_ids"],)])
    none = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss=None)
    with pytest.raises(
        ft.ConfigError, match="BertForSequenceClassification .*SequenceClassifierOutput.*'logits'.*no loss"
    ):
        none.step(no_label)
    with pytest.raises(ft.ConfigError, match="step\\(batch\\)"):
        none.step(no_label, b["labels"])
    assert none.global_step == 0 and tr.global_step == 0
    for p in model.parameters():  # nothing was applied
        assert p.grad is None or not p.grad.any()
    g = FlowBuilder.from_(Linear(2, 2)).build()
    with pytest.raises(ft.ConfigError, match="loss=None.*ferrotorch module"):
        Trainer(g, ft.optim.SGD(g.parameters(), 0.1), loss=None)


def test_an_output_without_logits_or_tensor_is_named():
    model = torch.nn.Linear(2, 2)
    tr = Trainer(
        lambda x: {"hidden": None, "stuff": "text"}, torch.optim.SGD(model.parameters(), 0.1), loss="mse"
    )
    with pytest.raises(ft.InputTypeError, match="expected a torch.Tensor.*dict.*'hidden'"):
        tr.step(torch.randn(3, 2), torch.randn(3, 2))


# --- the ferrotorch fast path stays Python-free ---------------------------------------


@pytest.mark.parametrize("kind", ["graph", "layer"])
def test_ferrotorch_model_with_builtin_loss_runs_no_python_per_batch(kind):
    torch.manual_seed(0)
    if kind == "graph":
        g = FlowBuilder.from_(Linear(4, 8)).through(GELU()).through(Linear(8, 2)).build()
    else:
        g = Linear(4, 2)
    tr = Trainer(g, ft.optim.AdamW(g.parameters(), 0.01), loss="mse")
    assert tr._py is None and tr.builtin_loss
    loader = DataLoader((torch.randn(64, 4), torch.randn(64, 2)), 8)
    calls = []

    def prof(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    sys.setprofile(prof)
    try:
        ups, n, done = tr._engine.run_loader(loader, 64, None, [])
    finally:
        sys.setprofile(None)
    assert n == 8 and done and len(ups) == 8
    assert calls == []  # the whole run of batches stayed in Rust
