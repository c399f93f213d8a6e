//! The engine: one owner for the loop's state. This file holds what every
//! job shares (the parts of a trainer, its books, the pending loss reads,
//! the forward); the jobs have their own files: one batch through the step
//! (`step.rs`: eager, or captured in a CUDA graph), a run over a loader
//! (`run.rs`), evaluation and prediction (`eval.rs`). With a built-in loss
//! nothing here needs Python, so the bindings release the GIL around it.

use std::sync::{Arc, Mutex};

use tch::{Device, Kind, Tensor};

use super::graph_cache::GraphMode;
use super::graph_step::{self, GraphRuntime, GraphStatus};
use super::loss_fn::{LossFn, Target};
use super::options::{NonFinite, ScheduleUnit, TrainerOptions};
use super::position::{Closes, LoopState, StepReport, UpdateReport};
use super::reads::{Ledger, LossReads, Read, MAX_PENDING};
use super::update::lock;
use crate::amp::AutocastGuard;
use crate::nn::Module;
use crate::optim::Optimizer;
use crate::tensor::SharedTensor;
use crate::{Error, Result};

pub struct Engine {
    pub(super) model: Arc<dyn Module>,
    pub(super) optimizer: Arc<Mutex<dyn Optimizer>>,
    pub(super) loss: LossFn,
    pub(super) opts: TrainerOptions,
    pub(super) params: Vec<SharedTensor>,
    /// The books: counters and sums (`position.rs`).
    pub(super) state: Mutex<LoopState>,
    /// The last epoch order a run used, keyed by loader and epoch
    /// (`run.rs`): one permutation per epoch however many chunks it is
    /// trained in.
    pub(super) order: Mutex<Option<(super::run::OrderKey, SharedTensor)>>,
    /// CUDA graph mode: eligibility, per-shape graphs, counters.
    pub(super) graph: GraphRuntime,
    /// Losses (and skip flags) not read yet; used only when `batched`.
    pub(super) reads: Mutex<Ledger>,
    /// Losses are read in batches, not per step (`reads.rs`).
    pub(super) batched: bool,
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
            .or_else(|| params.first().map(|p| p.handle().device()))
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
                    "batched loss reads are not possible here: {why}"
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
        let ps = self.param_handles();
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

    pub fn loss(&self) -> &LossFn {
        &self.loss
    }

    /// The device batches are moved to, if any.
    pub fn device(&self) -> Option<Device> {
        self.opts.device
    }

    /// The counters and sums, every pending loss read first.
    pub fn state(&self) -> Result<LoopState> {
        let mut st = lock(&self.state, "trainer")?;
        self.read_pending(&mut st)?;
        Ok(*st)
    }

    /// The counters without reading pending losses: no host sync, so a
    /// loop's head and progress can ask every batch. The step, micro-step,
    /// epoch and batch are exact; the loss sums and the skip count may lag
    /// until the next read.
    pub fn position(&self) -> Result<LoopState> {
        Ok(*lock(&self.state, "trainer")?)
    }

    /// Losses not read yet (batched reads).
    pub fn pending_reads(&self) -> Result<usize> {
        Ok(lock(&self.reads, "trainer")?.len())
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

    pub(super) fn read_pending(&self, st: &mut LoopState) -> Result<Read> {
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

    /// Keeps an update read at its step for the run's next take.
    pub(super) fn keep(&self, u: UpdateReport) -> Result<()> {
        lock(&self.reads, "trainer")?.keep(u);
        Ok(())
    }

    /// Books a step's loss as pending (batched reads); a full ledger is read.
    pub(super) fn defer(
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
    pub(super) fn settle(&self, mut r: StepReport) -> Result<StepReport> {
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
            Some(d) if t.device() != d => Ok(t.f_to_device_(d, t.f_kind()?, true, false)?),
            _ => Ok(t.shallow_clone()),
        }
    }

    pub(super) fn inputs_to_device(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        inputs.iter().map(|t| self.to_device(t)).collect()
    }

    pub(super) fn param_handles(&self) -> Vec<Tensor> {
        self.params.iter().map(|p| p.handle()).collect()
    }

    /// The model on one input, or a graph on its declared inputs.
    pub(super) fn forward_inputs(&self, inputs: &[Tensor]) -> Result<Tensor> {
        match (inputs, self.model.as_graph()) {
            ([x], _) => self.model.forward(x),
            (_, Some(g)) => g.forward_multi(inputs),
            (_, None) => Err(Error::Value(format!(
                "the model takes one input, the batch has {}",
                inputs.len()
            ))),
        }
    }

    /// `f` under the trainer's autocast (`amp`), or as it is without one.
    pub(super) fn autocast<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match self.opts.autocast {
            Some((dev, kind)) => {
                let _guard = AutocastGuard::new(dev, kind, true)?;
                f()
            }
            None => f(),
        }
    }

    pub(super) fn forward_loss(&self, inputs: &[Tensor], target: &Target) -> Result<Tensor> {
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
    pub(super) fn checks_nonfinite(&self) -> bool {
        self.opts.scaler.is_none() && self.opts.on_nonfinite != NonFinite::Off
    }

    /// Where collectives' small host values go (NCCL reduces only CUDA tensors).
    pub(super) fn param_device(&self) -> Device {
        self.params
            .first()
            .map_or(Device::Cpu, |p| p.handle().device())
    }

    /// The lr the schedule gives for the next update, if there is one.
    pub(super) fn scheduled_lr(&self, st: &LoopState) -> Result<Option<f64>> {
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
        NonFinite::Raise => Some("raising on a non-finite loss checks every loss on the host"),
        NonFinite::Skip if !graph_mode => Some(
            "skipping non-finite steps decides on the host in eager mode (graph mode skips on the device)",
        ),
        _ => None,
    }
}
