//! One batch through the engine. Every training style's batch enters at
//! [`Engine::step_lazy`] (a batch and a target), [`Engine::model_step_lazy`]
//! (a model the caller runs itself) or their read and closure forms, and
//! runs either eagerly (`micro_step_lazy`: forward, loss, check, backward;
//! on a window's last batch, `update`) or, in CUDA graph mode, as a captured
//! step (`graph_step`). Both book what happened through
//! [`LoopState::book`]; a non-finite value is judged in one place
//! (`Engine::nonfinite`).

use tch::{Device, Tensor};

use super::engine::Engine;
use super::graph_cache::Plan;
use super::graph_step::StepParts;
use super::loss_fn::Target;
use super::options::NonFinite;
use super::position::{
    Closed, Closes, EpochSummary, LoopState, Outcome, StepReport, Update, UpdateReport, WindowMean,
};
use super::update::{self, lock};
use crate::tensor::{grad_of, kind_str, shape_str};
use crate::{Error, Result};

/// A non-finite value a step found, and where.
#[derive(Clone, Copy, Debug)]
enum Found {
    /// A batch's loss, read before its backward (eager).
    Loss(f64),
    /// The update closing a window: a gradient or, under a process group,
    /// some rank's loss or gradient (`ranks`). `before`: the books before
    /// the window's last batch, which a raise restores.
    Update { ranks: bool, before: LoopState },
    /// Graph mode: the captured step's device check (loss or gradient); the
    /// update was skipped on the device.
    Captured(f64),
}

impl Engine {
    /// One batch: forward, loss, backward; every `grad_accumulation`
    /// batches the update. Advances the batch position. The loss is read.
    pub fn step(&self, inputs: &[Tensor], target: &Target) -> Result<StepReport> {
        let (_, r) = self.step_lazy(inputs, target, false)?;
        self.settle(r)
    }

    /// One batch, its loss left on the device where reads are batched: the
    /// loss (still attached: detach it before handing it out) and a report
    /// whose values are NaN until read. `report` keeps the update for
    /// [`Engine::take_updates`] (fit's runs).
    pub fn step_lazy(
        &self,
        inputs: &[Tensor],
        target: &Target,
        report: bool,
    ) -> Result<(Tensor, StepReport)> {
        check_not_empty(inputs, target)?;
        let xs = self.inputs_to_device(inputs)?;
        let (loss, r) = match (self.graph.active(), target) {
            (true, Target::Tensor(y)) => self.graph_step(&xs, &self.to_device(y)?, report)?,
            _ => self.micro_step_lazy(|| self.forward_loss(&xs, target), report)?,
        };
        if let (false, true, Some(u)) = (self.batched, report, r.update) {
            self.keep(u)?; // read already
        }
        Ok((loss, r))
    }

    /// One batch whose loss `compute` returns, as it returns it (no
    /// autocast region here). The loss is read.
    pub fn micro_step(&self, compute: impl FnOnce() -> Result<Tensor>) -> Result<StepReport> {
        let (_, r) = self.micro_step_lazy(compute, false)?;
        self.settle(r)
    }

    /// One batch whose loss `compute` returns (it runs the forward itself:
    /// floDl's `step_fn`, a torch-style closure `step(closure)`): `compute`
    /// runs whole under the trainer's autocast (`amp`), as a torch loop's
    /// `with torch.autocast(...)` holds forward and loss. The loss is read.
    pub fn closure_step(&self, compute: impl FnOnce() -> Result<Tensor>) -> Result<StepReport> {
        self.model_step(compute, Ok)
    }

    /// One batch whose loss the caller computed before the call (a
    /// torch-style manual loop's `step_loss(loss)`): backward and the rest
    /// of the step. With `amp` this is refused: the forward already ran,
    /// outside the engine's autocast, so amp could not apply to it.
    pub fn loss_step(&self, loss: Tensor) -> Result<StepReport> {
        if let Some((_, kind)) = self.opts.autocast {
            return Err(Error::Value(format!(
                "loss step: autocast to {} cannot apply to a forward that already ran (the loss \
                 was computed before the call, outside autocast); run the forward inside the step",
                kind_str(kind)
            )));
        }
        self.micro_step(|| Ok(loss))
    }

    /// One batch of a model the caller runs itself (a Python model on the
    /// GIL path, whose batches and outputs only Python can read): `forward`
    /// runs under the trainer's autocast (`amp`) and returns what `loss`
    /// turns into the batch's loss outside autocast, as the engine's own
    /// forward and loss run. Counters, checks, backward and the update are
    /// the engine's, as in [`Engine::step_lazy`]: the loss (attached) and a
    /// report whose values are NaN until read; `report` keeps the update for
    /// [`Engine::take_updates`].
    pub fn model_step_lazy<O>(
        &self,
        forward: impl FnOnce() -> Result<O>,
        loss: impl FnOnce(O) -> Result<Tensor>,
        report: bool,
    ) -> Result<(Tensor, StepReport)> {
        let (l, r) = self.micro_step_lazy(|| loss(self.autocast(forward)?), report)?;
        if let (false, true, Some(u)) = (self.batched, report, r.update) {
            self.keep(u)?; // read already
        }
        Ok((l, r))
    }

    /// [`Engine::model_step_lazy`] with the loss read.
    pub fn model_step<O>(
        &self,
        forward: impl FnOnce() -> Result<O>,
        loss: impl FnOnce(O) -> Result<Tensor>,
    ) -> Result<StepReport> {
        let (_, r) = self.model_step_lazy(forward, loss, false)?;
        self.settle(r)
    }

    /// The eager step of one batch: zero grads at a window's start, the
    /// loss from `compute`, its read and check (unless it stays pending),
    /// backward, and on the window's last batch the update.
    fn micro_step_lazy(
        &self,
        compute: impl FnOnce() -> Result<Tensor>,
        report: bool,
    ) -> Result<(Tensor, StepReport)> {
        let accum = self.opts.grad_accumulation as u64;
        let mut st = lock(&self.state, "trainer")?;
        let before = *st;
        if st.micro == 0 {
            lock(&self.optimizer, "optimizer")?.zero_grad()?;
        }
        let loss = compute()?;
        if loss.numel() != 1 {
            return Err(Error::Shape(format!(
                "the loss must be a scalar, got shape {}",
                shape_str(&loss)
            )));
        }
        // With batched reads and nothing on the host deciding from this
        // loss, it stays pending; otherwise it is read now (a checked step,
        // e.g. graph mode's eager warm-up, books pending ones first, in order).
        let pending = self.batched && !self.checks_nonfinite();
        let value = if pending {
            None
        } else {
            if self.batched {
                self.read_pending(&mut st)?;
            }
            Some(loss.f_double_value(&[])?)
        };
        let dropped = match value {
            Some(v) if !v.is_finite() && self.checks_nonfinite() => {
                // Skip: no backward for this batch; the window is bad.
                self.nonfinite(&mut st, Found::Loss(v))?;
                true
            }
            _ => {
                self.backward(&loss)?;
                false
            }
        };
        st.book(Outcome::Batch {
            loss: value,
            dropped,
        });
        let closed = if st.micro < accum {
            // Forward-ref state must not reach into a freed graph.
            self.model.detach_state();
            None
        } else {
            let mean = if pending {
                WindowMean::Pending
            } else {
                WindowMean::Booked
            };
            self.close_window(&mut st, &before, mean)?
        };
        if pending {
            let closes = closed.map(|c| Closes {
                step: c.report.step,
                micro: c.batches,
            });
            self.defer(&mut st, &loss, None, closes, report)?;
        }
        Ok((
            loss,
            StepReport {
                loss: value.unwrap_or(f64::NAN),
                update: closed.map(|c| c.report),
            },
        ))
    }

    /// Backward of one batch's loss: divided over the window, scaled.
    fn backward(&self, loss: &Tensor) -> Result<()> {
        let accum = self.opts.grad_accumulation;
        let mut back = if accum > 1 {
            loss.f_div_scalar(accum as f64)?
        } else {
            loss.shallow_clone()
        };
        if let Some((scaler, _)) = &self.opts.scaler {
            back = lock(scaler, "GradScaler")?.scale(&back)?;
        }
        Ok(back.f_backward()?)
    }

    /// The update that ends the accumulation window booked in `st`, and its
    /// booking. `mean`: Booked, or Pending when the window's losses are
    /// still in the ledger (the read fills the mean in).
    fn close_window(
        &self,
        st: &mut LoopState,
        before: &LoopState,
        mean: WindowMean,
    ) -> Result<Option<Closed>> {
        let u = self.update(st, before, mean)?;
        let closed = st.book(Outcome::Update(u));
        self.model.end_step();
        Ok(closed)
    }

    /// The update on the window booked in `st`: schedule → (process group:
    /// status, then gradient all-reduce) → `update::apply` (or a skip).
    fn update(&self, st: &mut LoopState, before: &LoopState, mean: WindowMean) -> Result<Update> {
        let n = st.micro.max(1);
        let own = match mean {
            WindowMean::Pending => f64::NAN,
            _ => st.window_loss_sum / n as f64,
        };
        let lr = self.scheduled_lr(st)?;
        let ps = self.param_handles();
        let (mut mean, mut bad) = (mean, st.window_bad);
        if let Some(pg) = &self.opts.process_group {
            // Status first (every rank learns whether any window was bad),
            // then the gradients, so the collectives stay in lockstep.
            let s = pg.sum_values(
                &[own, f64::from(u8::from(st.window_bad))],
                self.param_device(),
            )?;
            mean = WindowMean::Ranks(s[0] / pg.size() as f64);
            bad = s[1] > 0.0;
            if !bad {
                let grads: Vec<Tensor> = ps.iter().filter_map(grad_of).collect();
                pg.all_reduce_mean_(&grads)?;
            }
        }
        let mut opt = lock(&self.optimizer, "optimizer")?;
        let outcome = if bad {
            update::Outcome::NonFinite
        } else {
            update::apply(&mut *opt, &ps, &self.opts, lr, self.checks_nonfinite())?
        };
        let skipped = outcome == update::Outcome::NonFinite;
        if skipped {
            // The window's gradients are dropped either way.
            opt.zero_grad()?;
            drop(opt);
            self.nonfinite(
                st,
                Found::Update {
                    ranks: bad,
                    before: *before,
                },
            )?;
        } else {
            drop(opt);
        }
        if let Some(pg) = &self.opts.process_group {
            // BatchNorm-style running statistics: the mean over the ranks.
            let bufs: Vec<Tensor> = self
                .model
                .buffers()
                .into_iter()
                .map(|b| b.tensor)
                .filter(|t| t.is_floating_point())
                .collect();
            if !bufs.is_empty() {
                pg.all_reduce_mean_(&bufs)?;
            }
        }
        Ok(Update {
            skipped: Some(skipped),
            mean,
        })
    }

    /// What a non-finite value does, decided here alone: with
    /// `on_nonfinite='raise'`, a TrainingError naming the step and batch
    /// (a bad update restores `before` and drops the window); otherwise the
    /// caller skips the batch's backward or counts the skipped update.
    fn nonfinite(&self, st: &mut LoopState, found: Found) -> Result<()> {
        if self.opts.on_nonfinite != NonFinite::Raise {
            return Ok(());
        }
        let at =
            |s: &LoopState| format!("step {} (epoch {}, batch {})", s.step, s.epoch + 1, s.batch);
        let msg = match found {
            // Under a process group every rank must decide together: the
            // window is marked and the update decides for all.
            Found::Loss(_) if self.opts.process_group.is_some() => return Ok(()),
            Found::Loss(v) => format!(
                "non-finite loss ({}) at {}; the model, optimizer and counters are unchanged",
                float_text(v),
                at(st)
            ),
            Found::Update { ranks, before } => {
                *st = before;
                st.reset_window();
                // Outside a process group a bad loss raised before backward,
                // so a bad window here means some rank's loss or gradient.
                format!(
                    "non-finite {} at {}; the update was not applied and the accumulated \
                     gradients were dropped",
                    if ranks {
                        "loss or gradient (on some rank)"
                    } else {
                        "gradient"
                    },
                    at(&before)
                )
            }
            Found::Captured(v) => format!(
                "non-finite loss ({}) or gradient at {}; the update was skipped on the device and \
                 the counters are unchanged",
                float_text(v),
                at(st)
            ),
        };
        Err(Error::Training(msg))
    }

    /// One batch in CUDA graph mode: eager warm-up steps for a new shape,
    /// then capture, then replays with the lr written into its device tensor.
    fn graph_step(&self, xs: &[Tensor], y: &Tensor, report: bool) -> Result<(Tensor, StepReport)> {
        let params = self.param_handles();
        let forward_loss = |i: &[Tensor], t: &Target| self.forward_loss(i, t);
        let parts = StepParts {
            model: &self.model,
            optimizer: &*self.optimizer,
            opts: &self.opts,
            params: &params,
            forward_loss: &forward_loss,
        };
        let mut batch: Vec<&Tensor> = xs.iter().collect();
        batch.push(y);
        let (plan, shape) = self.graph.plan(&parts, &batch)?;
        if plan == Plan::WarmUp {
            let target = Target::Tensor(y.shallow_clone());
            return self.graph.warm_up(&parts, &shape, || {
                self.micro_step_lazy(|| self.forward_loss(xs, &target), report)
            });
        }
        let mut st = lock(&self.state, "trainer")?;
        if let Some(lr) = self.scheduled_lr(&st)? {
            lock(&self.optimizer, "optimizer")?.set_lr(lr)?;
        }
        let both = match self.graph.run(&parts, plan, shape, xs, y) {
            Err(e) if plan == Plan::Capture && self.graph.give_up(&e)? => {
                // Nothing ran; host-side state the capture touched is reset
                // and this batch takes the eager step.
                if let Some((scaler, _)) = &self.opts.scaler {
                    let mut sc = lock(scaler, "GradScaler")?;
                    if let Some(s) = sc.scale_async().map(|s| s.shallow_clone()) {
                        sc.update_to(&s)?;
                    }
                }
                drop(st);
                let target = Target::Tensor(y.shallow_clone());
                return self.micro_step_lazy(|| self.forward_loss(xs, &target), report);
            }
            r => r?,
        };
        // [loss, skip flag] on the device; the flag counts without a scaler.
        let loss = both.f_select(0, 0)?;
        let flag = match self.opts.scaler {
            None => Some(both.f_select(0, 1)?),
            Some(_) => None,
        };
        // Batched: left pending. Else the one host read of the step, as in
        // eager mode: loss and flag together.
        let read = if self.batched {
            None
        } else {
            let host = both.f_to_device(Device::Cpu)?;
            let nonfinite = flag.is_some() && host.f_double_value(&[1])? != 0.0;
            Some((host.f_double_value(&[0])?, nonfinite))
        };
        if let Some((value, true)) = read {
            self.nonfinite(&mut st, Found::Captured(value))?;
        }
        // A captured step is a whole window: its batch, then its update.
        st.book(Outcome::Batch {
            loss: read.map(|(v, _)| v),
            dropped: false,
        });
        let u = Update {
            skipped: read.map(|(_, bad)| bad),
            mean: match read {
                Some(_) => WindowMean::Booked,
                None => WindowMean::Pending,
            },
        };
        let closed = st.book(Outcome::Update(u));
        self.model.end_step();
        if read.is_none() {
            let closes = closed.map(|c| Closes {
                step: c.report.step,
                micro: c.batches,
            });
            self.defer(&mut st, &loss, flag.as_ref(), closes, report)?;
        }
        Ok((
            loss,
            StepReport {
                loss: read.map_or(f64::NAN, |(v, _)| v),
                update: closed.map(|c| c.report),
            },
        ))
    }

    fn flush(&self, st: &mut LoopState) -> Result<Option<UpdateReport>> {
        if st.micro == 0 {
            return Ok(None);
        }
        self.read_pending(st)?;
        let before = *st;
        let closed = self.close_window(st, &before, WindowMean::Booked)?;
        Ok(closed.map(|c| c.report))
    }

    /// The mean of the current epoch's finite batch losses so far (NaN if
    /// none); under a process group, over every rank's batches.
    pub fn epoch_loss(&self) -> Result<f64> {
        let st = self.state()?;
        self.epoch_mean(&st)
    }

    fn epoch_mean(&self, st: &LoopState) -> Result<f64> {
        let (mut sum, mut count) = (st.epoch_loss_sum, st.epoch_batches as f64);
        if let Some(pg) = &self.opts.process_group {
            let s = pg.sum_values(&[sum, count], self.param_device())?;
            (sum, count) = (s[0], s[1]);
        }
        Ok(if count > 0.0 { sum / count } else { f64::NAN })
    }

    /// Ends the epoch: a partial window is flushed first; the epoch count
    /// advances and the position and sums reset.
    pub fn end_epoch(&self) -> Result<(Option<UpdateReport>, EpochSummary)> {
        let mut st = lock(&self.state, "trainer")?;
        let flushed = self.flush(&mut st)?;
        self.read_pending(&mut st)?;
        let summary = EpochSummary {
            epoch: st.epoch + 1,
            loss: self.epoch_mean(&st)?,
            batches: st.batch,
        };
        st.book(Outcome::EpochEnd);
        Ok((flushed, summary))
    }
}

/// A float for messages, non-finite ones as torch prints them (`nan`, `inf`).
fn float_text(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        v.to_string()
    }
}

/// An empty batch would give a NaN mean loss; name the cause instead.
fn check_not_empty(inputs: &[Tensor], target: &Target) -> Result<()> {
    let target = match target {
        Target::Tensor(t) => Some(t),
        Target::Loss(_) => None,
    };
    let named = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("input {i}"), t))
        .chain(target.map(|t| ("target".to_string(), t)));
    for (what, t) in named {
        if t.dim() > 0 && t.size()[0] == 0 {
            return Err(Error::Value(format!(
                "the batch is empty ({what} has shape {}); \
                 a batch needs at least one sample",
                shape_str(t)
            )));
        }
    }
    Ok(())
}
