//! The engine: every batch of every training style goes through
//! [`Engine::micro_step`], which owns the counters, the checks and the order
//! of a step. With a built-in loss nothing here needs Python, so the
//! bindings release the GIL around it.

use std::sync::{Arc, Mutex};

use tch::{Device, Kind, Tensor};

use super::graph_cache::{GraphMode, Plan};
use super::graph_step::{self, GraphRuntime, GraphStatus, StepParts};
use super::loss_fn::{LossFn, Target};
use super::options::{NonFinite, ScheduleUnit, TrainerOptions};
use super::position::{EpochSummary, LoopState, StepReport, UpdateReport};
use super::reads::{Closes, Ledger, LossReads, MAX_PENDING};
use super::update::{self, lock, Outcome};
use crate::amp::AutocastGuard;
use crate::data::DataLoader;
use crate::nn::Module;
use crate::optim::Optimizer;
use crate::tensor::{shape_str, SharedTensor};
use crate::{Error, Result};

pub struct Engine {
    model: Arc<dyn Module>,
    optimizer: Arc<Mutex<dyn Optimizer>>,
    loss: LossFn,
    opts: TrainerOptions,
    params: Vec<SharedTensor>,
    state: Mutex<LoopState>,
    /// (loader address, epoch) -> that epoch's order: one permutation per
    /// epoch however many chunks it is trained in.
    order: Mutex<Option<(usize, u64, SharedTensor)>>,
    /// CUDA graph mode: eligibility, per-shape graphs, counters.
    graph: GraphRuntime,
    /// Losses (and skip flags) not read yet; used only when `batched`.
    reads: Mutex<Ledger>,
    /// Losses are read in batches, not per step (`reads.rs`).
    batched: bool,
}

/// Where a run of batches over a loader stops (besides the epoch's end).
#[derive(Clone, Debug, Default)]
pub struct RunLimits {
    /// Batches at most in this call (the GIL comes back between calls).
    pub max_batches: usize,
    /// Stop once this many optimizer steps have been taken in total.
    pub until_step: Option<u64>,
    /// Stop right after any step whose number is a multiple of one of these
    /// (where `log_every`/`checkpoint_every` have work to do).
    pub every: Vec<u64>,
}

impl RunLimits {
    fn stops_after(&self, step: u64) -> bool {
        self.until_step.is_some_and(|u| step >= u)
            || self.every.iter().any(|&e| e > 0 && step % e == 0)
    }
}

/// The outcome of [`Engine::run_loader`].
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub updates: Vec<UpdateReport>,
    pub batches: usize,
    /// Every batch of the epoch has been consumed (call `end_epoch`).
    pub epoch_done: bool,
}

impl Engine {
    pub fn new(
        model: Arc<dyn Module>,
        optimizer: Arc<Mutex<dyn Optimizer>>,
        loss: LossFn,
        opts: TrainerOptions,
    ) -> Result<Self> {
        opts.validate()?;
        let params: Vec<SharedTensor> = model
            .parameters()
            .into_iter()
            .map(|p| SharedTensor::new(p.tensor))
            .collect();
        let device = opts
            .device
            .or_else(|| params.first().map(|p| p.device()))
            .unwrap_or(Device::Cpu);
        let blocker = match opts.cuda_graph {
            GraphMode::Off => None,
            _ => graph_step::step_blocker(model.as_ref(), &loss, &opts, &*optimizer)?,
        };
        let graph = GraphRuntime::new(opts.cuda_graph, device, blocker)?;
        if graph.active() {
            lock(&optimizer, "optimizer")?.set_capturable(true)?;
        }
        let per_step = per_step_reason(&opts, graph.active());
        let batched = match (opts.loss_reads, per_step) {
            (LossReads::Step, _) => false,
            (LossReads::Auto, reason) => device.is_cuda() && reason.is_none(),
            (LossReads::Batched, None) => true,
            (LossReads::Batched, Some(why)) => {
                return Err(Error::Value(format!(
                    "Trainer: loss_reads='batched' is not possible here: {why}"
                )))
            }
        };
        Ok(Engine {
            model,
            optimizer,
            loss,
            opts,
            params,
            state: Mutex::new(LoopState::default()),
            order: Mutex::new(None),
            graph,
            reads: Mutex::new(Ledger::default()),
            batched,
        })
    }

    /// Graph mode's state: active or why not, the capture key, counters.
    pub fn cuda_graph_status(&self) -> Result<GraphStatus> {
        let ps: Vec<Tensor> = self.params.iter().map(|p| p.handle()).collect();
        let key = {
            let opt = lock(&self.optimizer, "optimizer")?;
            self.graph.key(&ps, &*opt)?
        };
        self.graph.status(key)
    }

    /// Drops every captured graph (after load_state, a move, anything the
    /// capture key cannot see); later steps warm up and capture again.
    pub fn invalidate_cuda_graphs(&self) -> Result<()> {
        self.graph.invalidate()
    }

    pub fn model(&self) -> &Arc<dyn Module> {
        &self.model
    }

    pub fn loss(&self) -> &LossFn {
        &self.loss
    }

    pub fn options(&self) -> &TrainerOptions {
        &self.opts
    }

    /// The counters and sums, every pending loss read first.
    pub fn state(&self) -> Result<LoopState> {
        let mut st = lock(&self.state, "trainer")?;
        self.read_pending(&mut st)?;
        Ok(*st)
    }

    /// The counters without reading pending losses (the sums may lag).
    fn position(&self) -> Result<LoopState> {
        Ok(*lock(&self.state, "trainer")?)
    }

    /// Restores the counters and sums (exact resume); losses still pending
    /// belong to the replaced run and are dropped.
    pub fn set_state(&self, s: LoopState) -> Result<()> {
        let mut st = lock(&self.state, "trainer")?;
        lock(&self.reads, "trainer")?.clear();
        *st = s;
        Ok(())
    }

    /// Whether losses are read in batches (`loss_reads`).
    pub fn batched_reads(&self) -> bool {
        self.batched
    }

    fn read_pending(&self, st: &mut LoopState) -> Result<super::reads::Read> {
        let mut l = lock(&self.reads, "trainer")?;
        l.read(st)
    }

    /// Reads every pending loss; the updates of `fit`'s lazy steps since the
    /// last call, with their losses.
    pub fn take_updates(&self) -> Result<Vec<UpdateReport>> {
        let mut st = lock(&self.state, "trainer")?;
        let mut l = lock(&self.reads, "trainer")?;
        l.read(&mut st)?;
        Ok(l.take_updates())
    }

    /// Books a step's loss as pending (batched reads); a full ledger is read.
    fn defer(
        &self,
        st: &mut LoopState,
        loss: &Tensor,
        flag: Option<&Tensor>,
        closes: Option<Closes>,
        report: bool,
    ) -> Result<()> {
        let mut l = lock(&self.reads, "trainer")?;
        if l.len() >= MAX_PENDING {
            // Before the push: this step's own loss stays for its caller.
            l.read(st)?;
        }
        l.push(loss, flag, closes, report)
    }

    /// A step's report with its loss read: pending losses are read now (one
    /// transfer) and the report's values filled in.
    fn settle(&self, mut r: StepReport) -> Result<StepReport> {
        if !self.batched {
            return Ok(r);
        }
        let mut st = lock(&self.state, "trainer")?;
        let read = self.read_pending(&mut st)?;
        if let Some(v) = read.last_loss {
            r.loss = v;
        }
        if let Some(u) = r.update.as_mut() {
            if let Some(done) = read.updates.iter().find(|d| d.step == u.step) {
                *u = *done;
            }
        }
        Ok(r)
    }

    /// `t` on the trainer's device; non-blocking from pinned memory.
    pub fn to_device(&self, t: &Tensor) -> Result<Tensor> {
        match self.opts.device {
            Some(d) if t.device() != d => Ok(t.f_to_device_(d, t.kind(), true, false)?),
            _ => Ok(t.shallow_clone()),
        }
    }

    fn inputs_to_device(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        inputs.iter().map(|t| self.to_device(t)).collect()
    }

    /// The model on one input, or a graph on its declared inputs.
    fn forward_inputs(&self, inputs: &[Tensor]) -> Result<Tensor> {
        match (inputs, self.model.as_graph()) {
            ([x], _) => self.model.forward(x),
            (_, Some(g)) => g.forward_multi(inputs),
            (_, None) => Err(Error::Value(format!(
                "Trainer: the model takes one input, the batch has {}",
                inputs.len()
            ))),
        }
    }

    /// `f` under the trainer's autocast (`amp`), or as it is without one.
    fn autocast<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match self.opts.autocast {
            Some((dev, kind)) => {
                let _guard = AutocastGuard::new(dev, kind, true)?;
                f()
            }
            None => f(),
        }
    }

    fn forward_loss(&self, inputs: &[Tensor], target: &Target) -> Result<Tensor> {
        let p = self.autocast(|| self.forward_inputs(inputs))?;
        // Losses run in float32, as autocast's fp32 list would.
        let pred =
            if self.opts.autocast.is_some() && matches!(p.f_kind()?, Kind::Half | Kind::BFloat16) {
                p.f_to_kind(Kind::Float)?
            } else {
                p
            };
        match target {
            Target::Tensor(y) => self.loss.compute(&pred, &self.to_device(y)?),
            Target::Loss(f) => f(&pred),
        }
    }

    /// Whether non-finite losses and gradients are checked here (not with a
    /// GradScaler, whose found-inf decides, nor with `on_nonfinite="off"`).
    fn checks_nonfinite(&self) -> bool {
        self.opts.scaler.is_none() && self.opts.on_nonfinite != NonFinite::Off
    }

    /// Where collectives' small host values go (NCCL reduces only CUDA tensors).
    fn param_device(&self) -> Device {
        self.params.first().map_or(Device::Cpu, |p| p.device())
    }

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
            lock(&self.reads, "trainer")?.keep(u); // read already
        }
        Ok((loss, r))
    }

    /// One batch in CUDA graph mode: eager warm-up steps for a new shape,
    /// then capture, then replays with the lr written into its device tensor.
    fn graph_step(&self, xs: &[Tensor], y: &Tensor, report: bool) -> Result<(Tensor, StepReport)> {
        let params: Vec<Tensor> = self.params.iter().map(|p| p.handle()).collect();
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
            if self.opts.on_nonfinite == NonFinite::Raise {
                return Err(Error::Training(format!(
                    "non-finite loss ({}) or gradient at step {} (epoch {}, batch {}); the update \
                     was skipped on the device and the counters are unchanged",
                    py_float(value),
                    st.step,
                    st.epoch + 1,
                    st.batch
                )));
            }
        }
        st.batch += 1;
        if let Some((value, nonfinite)) = read {
            if value.is_finite() {
                st.epoch_loss_sum += value;
                st.epoch_batches += 1;
            }
            if nonfinite {
                st.skipped += 1;
            }
        }
        st.step += 1;
        st.next_window(read.is_none());
        self.model.end_step();
        if read.is_none() {
            let closes = Closes {
                step: st.step,
                micro: 1,
            };
            self.defer(&mut st, &loss, flag.as_ref(), Some(closes), report)?;
        }
        let (value, nonfinite) = read.unwrap_or((f64::NAN, false));
        Ok((loss, graph_step::report(value, st.step, nonfinite)))
    }

    /// The lr the schedule gives for the next update, if there is one.
    fn scheduled_lr(&self, st: &LoopState) -> Result<Option<f64>> {
        match &self.opts.schedule {
            Some(s) => {
                let count = match self.opts.schedule_unit {
                    ScheduleUnit::Step => st.step,
                    ScheduleUnit::Epoch => st.epoch,
                };
                Ok(Some(s.try_lr(s.first_step() + count as usize)?))
            }
            None => Ok(None),
        }
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
        if let Some((dev, kind)) = self.opts.autocast {
            return Err(Error::Value(format!(
                "Trainer.step_loss: amp={} cannot apply to a forward that already ran (the loss was \
                 computed before the call, outside autocast); use step(closure), whose closure runs \
                 under autocast, or run the forward under torch.autocast('{}', {}) yourself and give \
                 the Trainer scaler= (float16) without amp=",
                amp_name(kind),
                dev.name(),
                amp_name(kind)
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
            lock(&self.reads, "trainer")?.keep(u); // read already
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
                "Trainer: the loss must be a scalar, got shape {}",
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
        match value {
            Some(v) if !v.is_finite() && self.checks_nonfinite() => {
                // Under a process group every rank must decide together: the
                // window is marked and the update decides for all (close_window).
                if self.opts.on_nonfinite == NonFinite::Raise && self.opts.process_group.is_none() {
                    return Err(Error::Training(format!(
                        "non-finite loss ({}) at step {} (epoch {}, batch {}); \
                         the model, optimizer and counters are unchanged",
                        py_float(v),
                        st.step,
                        st.epoch + 1,
                        st.batch
                    )));
                }
                st.window_bad = true; // skip: no backward for this batch
            }
            _ => self.backward(&loss)?,
        }
        st.micro += 1;
        st.batch += 1;
        if let Some(v) = value {
            st.window_loss_sum += v;
            if v.is_finite() {
                st.epoch_loss_sum += v;
                st.epoch_batches += 1;
            }
        }
        let update = if st.micro < accum {
            // Forward-ref state must not reach into a freed graph.
            self.model.detach_state();
            None
        } else {
            let micro = st.micro;
            let u = self.close_window(&mut st, &before, pending)?;
            Some((u, micro))
        };
        if pending {
            let closes = update.map(|(u, micro)| Closes {
                step: u.step,
                micro,
            });
            self.defer(&mut st, &loss, None, closes, report)?;
        }
        Ok((
            loss,
            StepReport {
                loss: value.unwrap_or(f64::NAN),
                update: update.map(|(u, _)| u),
            },
        ))
    }

    /// The update that ends an accumulation window. `pending`: the
    /// window's losses are still in the ledger (its mean is filled on read).
    fn close_window(
        &self,
        st: &mut LoopState,
        before: &LoopState,
        pending: bool,
    ) -> Result<UpdateReport> {
        let n = st.micro.max(1);
        let mut mean = if pending {
            f64::NAN
        } else {
            st.window_loss_sum / n as f64
        };
        let lr = self.scheduled_lr(st)?;
        let ps: Vec<Tensor> = self.params.iter().map(|p| p.handle()).collect();
        let mut bad = st.window_bad;
        if let Some(pg) = &self.opts.process_group {
            // Status first (every rank learns whether any window was bad),
            // then the gradients, so the collectives stay in lockstep.
            let s = pg.sum_values(
                &[mean, f64::from(u8::from(st.window_bad))],
                self.param_device(),
            )?;
            mean = s[0] / pg.size() as f64;
            bad = s[1] > 0.0;
            if !bad {
                let grads: Vec<Tensor> = ps.iter().filter_map(crate::tensor::grad_of).collect();
                pg.all_reduce_mean_(&grads)?;
            }
        }
        let mut opt = lock(&self.optimizer, "optimizer")?;
        let outcome = if bad {
            Outcome::NonFinite
        } else {
            update::apply(&mut *opt, &ps, &self.opts, lr, self.checks_nonfinite())?
        };
        let skipped = outcome == Outcome::NonFinite;
        if skipped {
            // The window's gradients are dropped either way.
            opt.zero_grad()?;
            if self.opts.on_nonfinite == NonFinite::Raise {
                let (step, epoch, batch) = (before.step, before.epoch, before.batch);
                *st = *before;
                st.reset_window();
                // Outside a process group a bad loss raised before backward,
                // so a bad window here means some rank's loss or gradient.
                return Err(Error::Training(format!(
                    "non-finite {} at step {step} (epoch {}, batch {batch}); \
                     the update was not applied and the accumulated gradients were dropped",
                    if bad {
                        "loss or gradient (on some rank)"
                    } else {
                        "gradient"
                    },
                    epoch + 1
                )));
            }
            st.skipped += 1;
        }
        drop(opt);
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
        st.step += 1;
        st.next_window(pending);
        self.model.end_step();
        Ok(UpdateReport {
            step: st.step,
            loss: mean,
            skipped,
        })
    }

    /// Closes a partial accumulation window (the epoch ended first), as
    /// Lightning does: the update runs on what was accumulated.
    pub fn finish_window(&self) -> Result<Option<UpdateReport>> {
        let mut st = lock(&self.state, "trainer")?;
        if st.micro == 0 {
            return Ok(None);
        }
        self.read_pending(&mut st)?;
        let before = *st;
        self.close_window(&mut st, &before, false).map(Some)
    }

    /// The mean of the current epoch's finite batch losses so far (NaN if
    /// none); under a process group, over every rank's batches.
    pub fn epoch_loss(&self) -> Result<f64> {
        let st = self.state()?;
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
        let flushed = self.finish_window()?;
        let loss = self.epoch_loss()?;
        let mut st = lock(&self.state, "trainer")?;
        let summary = EpochSummary {
            epoch: st.epoch + 1,
            loss,
            batches: st.batch,
        };
        st.epoch += 1;
        st.batch = 0;
        st.epoch_loss_sum = 0.0;
        st.epoch_batches = 0;
        Ok((flushed, summary))
    }

    fn epoch_order(&self, loader: &DataLoader, epoch: u64) -> Result<Tensor> {
        let key = loader as *const DataLoader as usize;
        let mut cache = lock(&self.order, "trainer")?;
        if let Some((k, e, t)) = cache.as_ref() {
            if *k == key && *e == epoch {
                return Ok(t.handle());
            }
        }
        let t = loader.order_tensor(epoch)?;
        *cache = Some((key, epoch, SharedTensor::new(t.shallow_clone())));
        Ok(t)
    }

    /// Trains on `loader` from the current position (epoch, batch) until
    /// the epoch's batches are consumed or a limit is hit. Fields are
    /// (inputs..., target).
    pub fn run_loader(&self, loader: &DataLoader, limits: &RunLimits) -> Result<RunReport> {
        if loader.num_fields() < 2 {
            return Err(Error::Value(format!(
                "Trainer.fit: the loader must yield (input, ..., target), it has {} field(s)",
                loader.num_fields()
            )));
        }
        self.run_batches(loader, limits, |mut batch| {
            let y = batch
                .pop()
                .ok_or_else(|| Error::Value("empty batch".into()))?;
            Ok(self.step_lazy(&batch, &Target::Tensor(y), true)?.1)
        })
    }

    /// [`Engine::run_loader`] for a model the caller runs itself (see
    /// [`Engine::model_step_lazy`]): `forward` gets each batch's fields.
    pub fn run_loader_with<O>(
        &self,
        loader: &DataLoader,
        limits: &RunLimits,
        forward: impl Fn(Vec<Tensor>) -> Result<O>,
        loss: impl Fn(O) -> Result<Tensor>,
    ) -> Result<RunReport> {
        self.run_batches(loader, limits, |batch| {
            Ok(self.model_step_lazy(|| forward(batch), &loss, true)?.1)
        })
    }

    /// The loop of a run over `loader`: `step` trains one batch.
    fn run_batches(
        &self,
        loader: &DataLoader,
        limits: &RunLimits,
        mut step: impl FnMut(Vec<Tensor>) -> Result<StepReport>,
    ) -> Result<RunReport> {
        self.model.set_training(true)?;
        let n = loader.num_batches() as u64;
        let epoch = self.position()?.epoch;
        let order = self.epoch_order(loader, epoch)?;
        let mut out = RunReport::default();
        loop {
            let b = self.position()?.batch;
            if b >= n {
                out.epoch_done = true;
                break;
            }
            if out.batches >= limits.max_batches {
                break;
            }
            let r = step(loader.batch(&order, b as usize)?)?;
            out.batches += 1;
            if r.update.is_some_and(|u| limits.stops_after(u.step)) {
                break;
            }
        }
        // With batched reads: one transfer for the whole run's losses.
        out.updates = self.take_updates()?;
        Ok(out)
    }

    /// Runs `f` in eval mode without grad; the training mode is restored
    /// (also when `f` fails). `evaluate`/`predict` of a model the caller
    /// runs itself go through this.
    pub fn in_eval<T>(&self, was_training: bool, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.model.set_training(false)?;
        let out = {
            let _g = tch::no_grad_guard();
            f()
        };
        // Restore the mode even when f failed; f's error comes first.
        let restored = self.model.set_training(was_training);
        let out = out?;
        restored?;
        Ok(out)
    }

    /// Eval mode, no grad: the model's output on `inputs`; mode restored.
    pub fn predict(&self, inputs: &[Tensor], was_training: bool) -> Result<Tensor> {
        let xs = self.inputs_to_device(inputs)?;
        self.in_eval(was_training, || self.forward_inputs(&xs))
    }

    /// Eval mode, no grad: (loss, prediction) on one batch; mode restored.
    pub fn eval_batch(
        &self,
        inputs: &[Tensor],
        target: &Target,
        was_training: bool,
    ) -> Result<(Tensor, Tensor)> {
        let xs = self.inputs_to_device(inputs)?;
        self.in_eval(was_training, || {
            let pred = self.forward_inputs(&xs)?;
            let loss = match target {
                Target::Tensor(y) => self.loss.compute(&pred, &self.to_device(y)?)?,
                Target::Loss(f) => f(&pred)?,
            };
            Ok((loss.f_detach()?, pred))
        })
    }

    /// The device batches are moved to, if any.
    pub fn device(&self) -> Option<Device> {
        self.opts.device
    }
}

/// An autocast dtype as torch names it, for messages.
fn amp_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Half => "torch.float16",
        _ => "torch.bfloat16",
    }
}

/// A float as Python prints it (`nan`, `inf`), for messages.
fn py_float(v: f64) -> String {
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
                "Trainer.step: the batch is empty ({what} has shape {}); \
                 a batch needs at least one sample",
                shape_str(t)
            )));
        }
    }
    Ok(())
}

/// Why this configuration must read every loss on the host, if it must.
fn per_step_reason(opts: &TrainerOptions, graph_mode: bool) -> Option<&'static str> {
    if opts.process_group.is_some() {
        return Some("a process group averages each window's loss and status on the host");
    }
    if opts.scaler.is_some() {
        return None; // the scaler's found-inf decides on the device
    }
    match opts.on_nonfinite {
        NonFinite::Raise => Some("on_nonfinite='raise' checks every loss on the host"),
        NonFinite::Skip if !graph_mode => Some(
            "on_nonfinite='skip' decides on the host in eager mode (graph mode skips on the device)",
        ),
        _ => None,
    }
}
