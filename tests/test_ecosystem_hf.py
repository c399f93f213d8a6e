"""Hugging Face's Trainer and accelerate drive ferrotorch optimizers and
schedulers unchanged, bit-equal to torch's counterparts (fused against
fused). Tiny models built from configs: no downloads."""

import copy

import pytest
import torch

import ferrotorch as ft

transformers = pytest.importorskip("transformers")
accelerate = pytest.importorskip("accelerate")

pytestmark = pytest.mark.filterwarnings("ignore")


def _bert():
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return transformers.BertForSequenceClassification(cfg)


class _Rows(torch.utils.data.Dataset):
    def __init__(self, n=24):
        g = torch.Generator().manual_seed(1)
        self.ids = torch.randint(0, 40, (n, 8), generator=g)
        self.labels = torch.randint(0, 3, (n,), generator=g)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": self.labels[i],
        }


MINE = lambda p: ft.optim.AdamW(p, 5e-3, weight_decay=0.01, implementation="fused")  # noqa: E731
THEIRS = lambda p: torch.optim.AdamW(p, 5e-3, weight_decay=0.01, fused=True)  # noqa: E731


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _hf_train(make_opt, out, max_steps=6, resume=None, schedule="hf"):
    """A tiny BERT trained by transformers' Trainer with ``make_opt``'s
    optimizer and a linear schedule: HF's, ferrotorch's or torch's LinearLR."""
    model = _bert()
    opt = make_opt(model.parameters())
    sched = {
        "hf": lambda: transformers.get_linear_schedule_with_warmup(opt, 2, max_steps),
        "ft": lambda: ft.sched.LinearLR(opt, 1.0, 0.1, max_steps),
        "torch": lambda: torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.1, max_steps),
    }[schedule]()
    args = transformers.TrainingArguments(
        output_dir=str(out),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        save_steps=3,
        save_strategy="steps",
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        data_seed=0,
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_Rows(), optimizers=(opt, sched))
    trainer.train(resume_from_checkpoint=resume)
    return model, opt


@pytest.mark.parametrize("ft_sched", [False, True], ids=["hf_schedule", "ft_schedule"])
def test_hf_trainer_equals_torch(tmp_path, ft_sched):
    # ferrotorch's LinearLR on ours against torch's LinearLR on torch's optimizer.
    a, oa = _hf_train(MINE, tmp_path / "a", schedule="ft" if ft_sched else "hf")
    b, _ = _hf_train(THEIRS, tmp_path / "b", schedule="torch" if ft_sched else "hf")
    assert isinstance(oa, ft.optim.Optimizer)
    assert not torch.equal(a.classifier.weight, _bert().classifier.weight)
    _same(a, b)


def test_hf_trainer_resume_from_checkpoint(tmp_path):
    """Resuming from checkpoint-3 (optimizer and scheduler state saved by HF)
    reaches the uninterrupted run's weights bit for bit."""
    full, _ = _hf_train(MINE, tmp_path / "full")
    ckpt = tmp_path / "full" / "checkpoint-3"
    assert (ckpt / "optimizer.pt").exists()
    resumed, _ = _hf_train(MINE, tmp_path / "again", resume=str(ckpt))
    _same(full, resumed)


def _accelerate_run(make_opt, clip=None):
    acc = accelerate.Accelerator(cpu=True)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 5, generator=g), torch.randn(30, 2, generator=g)
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))
    net0 = copy.deepcopy(net)
    opt = make_opt(net.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    net, opt, dl, sched = acc.prepare(net, opt, dl, sched)
    for _ in range(2):
        for xb, yb in dl:
            opt.zero_grad()
            acc.backward(torch.nn.functional.mse_loss(net(xb), yb))
            if clip is not None:
                acc.clip_grad_norm_(net.parameters(), clip)
            opt.step()
            sched.step()
    return net, net0, opt


def test_accelerate_prepare_equals_torch():
    a, a0, oa = _accelerate_run(MINE, clip=0.3)
    b, b0, _ = _accelerate_run(THEIRS, clip=0.3)
    _same(a0, b0)
    assert isinstance(oa.optimizer, ft.optim.Optimizer)
    assert not torch.equal(a[0].weight, a0[0].weight)
    _same(a, b)


# --- a PreTrainedModel holding a ferrotorch graph --------------------------------


class _GraphConfig(transformers.PretrainedConfig):
    model_type = "ferrotorch_graph_test"

    def __init__(self, d=4, **kw):
        self.d = d
        super().__init__(**kw)


class _GraphModel(transformers.PreTrainedModel):
    config_class = _GraphConfig

    def __init__(self, config):
        super().__init__(config)
        self.graph = (
            ft.FlowBuilder.from_(ft.nn.Linear(config.d, 8))
            .through(ft.nn.GELU())
            .through(ft.nn.LayerNorm(8))
            .also(ft.nn.Linear(8, 8))
            .through(ft.nn.BatchNorm(8))
            .through(ft.nn.Linear(8, 2))
            .build()
        )
        self.post_init()  # calls parameters(recurse=False) / buffers(recurse=False) on every module

    def _init_weights(self, module):
        pass

    def forward(self, x):
        return self.graph(x)


def test_pretrained_model_holding_a_graph_saves_and_loads_bit_equal(tmp_path):
    model = _GraphModel(_GraphConfig())
    opt = ft.optim.Adam(model.parameters(), 0.05)
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    for _ in range(3):  # weights and running statistics away from their initial values
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    model.eval()
    model.save_pretrained(tmp_path)
    loaded = _GraphModel.from_pretrained(tmp_path).eval()
    _same(model, loaded)
    assert torch.equal(loaded(x), model(x))
    # The Rust side sees the loaded tensors: the Trainer's predict and the graph's own file agree.
    trainer = ft.Trainer(loaded.graph, ft.optim.Adam(loaded.graph.parameters(), 1e-3), loss="mse")
    assert torch.equal(trainer.predict(x), model(x))
    loaded.graph.save_checkpoint(str(tmp_path / "g.fdl"))
    fresh = _GraphModel(_GraphConfig()).eval()
    fresh.graph.load_checkpoint(str(tmp_path / "g.fdl"))
    assert torch.equal(fresh(x), model(x))
