//! CUDA graph mode: the engine's whole step (forward + loss, backward,
//! GradScaler unscale/found-inf, clipping, the fused optimizer with lr and
//! step counters on the device, the scaler update) captured once per input
//! shape and replayed. Decisions live in `graph_cache.rs`; CUDA behind a
//! [`Capturer`] so they are testable without a GPU.

use std::sync::{Arc, Mutex};

use tch::{Device, Kind, Tensor};

use super::graph_cache::{CaptureKey, GraphCache, GraphMode, Plan, ShapeKey};
use super::loss_fn::{LossFn, Target};
use super::options::{NonFinite, TrainerOptions};
use super::update::{clip, lock};
use crate::amp::{all_params, unscale_grads};
use crate::nn::Module;
use crate::optim::Optimizer;
use crate::shim::cuda_graph::{self, CudaGraph, SideStream};
use crate::tensor::deep_copy;
use crate::{Error, Result};

/// A replayable captured step.
pub trait StepGraph: Send + Sync {
    fn replay(&self) -> Result<()>;
}

impl StepGraph for CudaGraph {
    fn replay(&self) -> Result<()> {
        CudaGraph::replay(self)
    }
}

/// Captures steps: CUDA graphs in production; tests substitute their own.
pub trait Capturer: Send + Sync {
    /// Makes the warm-up/capture side stream current while the guard lives.
    fn side_stream(&self) -> Result<Option<SideStream>>;
    /// Records what `body` queues into a graph (nothing runs yet).
    fn capture(&self, body: &mut dyn FnMut() -> Result<()>) -> Result<Box<dyn StepGraph>>;
    /// True for [`Emulated`]: a replay runs the step's code instead.
    fn emulated(&self) -> bool {
        false
    }
}

/// `GraphMode::Emulate`: no CUDA; the engine runs the captured step's code
/// over the static buffers at each "replay".
pub struct Emulated;

struct NoGraph;

impl StepGraph for NoGraph {
    fn replay(&self) -> Result<()> {
        Ok(())
    }
}

impl Capturer for Emulated {
    fn side_stream(&self) -> Result<Option<SideStream>> {
        Ok(None)
    }

    fn capture(&self, _body: &mut dyn FnMut() -> Result<()>) -> Result<Box<dyn StepGraph>> {
        Ok(Box::new(NoGraph))
    }

    fn emulated(&self) -> bool {
        true
    }
}

/// A device as torch prints it.
fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
    }
}

/// The real one: `at::cuda::CUDAGraph` on `cuda:device`.
pub struct CudaCapturer {
    pub device: usize,
}

impl Capturer for CudaCapturer {
    fn side_stream(&self) -> Result<Option<SideStream>> {
        SideStream::begin(self.device).map(Some)
    }

    fn capture(&self, body: &mut dyn FnMut() -> Result<()>) -> Result<Box<dyn StepGraph>> {
        Ok(Box::new(CudaGraph::capture(self.device, body)?))
    }
}

/// One shape's graph and the static tensors it reads and writes.
pub struct Captured {
    graph: Box<dyn StepGraph>,
    inputs: Vec<Tensor>,
    target: Tensor,
    /// The batch loss, and 1 where the step was skipped on device.
    loss: Tensor,
    flag: Tensor,
}

/// Graph mode's state inside the engine.
pub struct GraphRuntime {
    pub mode: GraphMode,
    capturer: Option<Box<dyn Capturer>>,
    /// Why steps run eagerly (None: graph mode is active).
    pub blocker: Option<Blocker>,
    cache: Mutex<GraphCache<Captured>>,
    /// Bumped by `invalidate` (load_state, moves): part of the capture key.
    generation: Mutex<u64>,
    /// "auto" only: a capture that failed (an op the analysis could not
    /// see synchronises with the host); later steps run eagerly.
    failed: Mutex<Option<Blocker>>,
}

/// Why a trainer's steps cannot be captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// The graph node (or piece of the trainer) that prevents capture.
    pub node: String,
    pub reason: String,
    /// True when the user should hear about it ("auto" on a CUDA device).
    pub warn: bool,
}

/// Graph mode's counters, for `Trainer.cuda_graph_status()`.
#[derive(Clone, Debug, Default)]
pub struct GraphStatus {
    pub mode: &'static str,
    pub active: bool,
    pub blocker: Option<Blocker>,
    pub key: u64,
    pub graphs: usize,
    pub captures: u64,
    pub replays: u64,
    pub invalidations: u64,
}

/// The first thing that keeps the engine's step out of a CUDA graph,
/// besides the device: the model's nodes, the loss, the options, the
/// optimizer. (node, reason).
pub fn step_blocker(
    model: &dyn Module,
    loss: &LossFn,
    opts: &TrainerOptions,
    optimizer: &Mutex<dyn Optimizer>,
) -> Result<Option<(String, String)>> {
    if let Some(b) = crate::graph::capture_blocker(model) {
        return Ok(Some(b));
    }
    if let LossFn::Custom(_) = loss {
        return Ok(Some((
            "loss".into(),
            "a loss callback runs on the host".into(),
        )));
    }
    if opts.grad_accumulation > 1 {
        return Ok(Some((
            "grad_accumulation".into(),
            format!(
                "{} micro-batches per update are not captured as one step",
                opts.grad_accumulation
            ),
        )));
    }
    if opts.process_group.is_some() {
        return Ok(Some((
            "process_group".into(),
            "collectives run outside the graph".into(),
        )));
    }
    let mut opt = lock(optimizer, "optimizer")?;
    if let Err(e) = opt.set_capturable(true) {
        return Ok(Some(("optimizer".into(), e.to_string())));
    }
    opt.set_capturable(false)?;
    Ok(None)
}

impl GraphRuntime {
    /// Decides whether steps on `device` can be captured. `On` turns every
    /// blocker into an error naming it; `Auto` runs eagerly (warning on a
    /// CUDA device, silently elsewhere); `Emulate` runs on any device.
    pub fn new(mode: GraphMode, device: Device, blocker: Option<(String, String)>) -> Result<Self> {
        let device_blocker = match device {
            _ if mode == GraphMode::Emulate => None,
            Device::Cuda(i) if !cuda_graph::built_with_cuda_graphs() => Some((
                format!("cuda:{i}"),
                "this ferrotorch build has no CUDA graph support (the CUDA headers were missing \
                 when it was built)"
                    .to_string(),
            )),
            Device::Cuda(i) if i >= cuda_graph::device_count() => Some((
                format!("cuda:{i}"),
                "CUDA is not available on this machine".to_string(),
            )),
            Device::Cuda(_) => None,
            other => Some((
                device_name(other),
                "CUDA graphs need a CUDA device".to_string(),
            )),
        };
        let on_cuda = matches!(device, Device::Cuda(_));
        let b = device_blocker.clone().or(blocker);
        if matches!(mode, GraphMode::On | GraphMode::Emulate) {
            if let Some((node, reason)) = &b {
                let e = if device_blocker.is_some() {
                    format!("CUDA graph capture: the trainer runs on {node}: {reason}")
                } else {
                    format!("CUDA graph capture: '{node}' prevents capture: {reason}")
                };
                return Err(if device_blocker.is_some() {
                    Error::Device(e)
                } else {
                    Error::Value(e)
                });
            }
        }
        let blocker = match mode {
            GraphMode::Off => Some(Blocker {
                node: String::new(),
                reason: "CUDA graphs are off".into(),
                warn: false,
            }),
            _ => b.map(|(node, reason)| Blocker {
                node,
                reason,
                warn: mode == GraphMode::Auto && on_cuda,
            }),
        };
        let capturer: Option<Box<dyn Capturer>> = match (&blocker, device) {
            (Some(_), _) => None,
            (None, _) if mode == GraphMode::Emulate => Some(Box::new(Emulated)),
            (None, Device::Cuda(i)) => Some(Box::new(CudaCapturer { device: i })),
            (None, _) => None,
        };
        Ok(GraphRuntime {
            mode,
            capturer,
            blocker,
            cache: Mutex::new(GraphCache::default()),
            generation: Mutex::new(0),
            failed: Mutex::new(None),
        })
    }

    /// "auto": a capture failed, so this trainer stays eager from now on
    /// (`cuda_graph_status` reports why). Other modes keep the error.
    pub fn give_up(&self, e: &Error) -> Result<bool> {
        if self.mode != GraphMode::Auto {
            return Ok(false);
        }
        *lock(&self.failed, "trainer")? = Some(Blocker {
            node: "capture".into(),
            reason: format!("the capture failed: {e}"),
            warn: true,
        });
        lock(&self.cache, "trainer")?.clear();
        Ok(true)
    }

    pub fn active(&self) -> bool {
        self.blocker.is_none()
            && self.capturer.is_some()
            && self.failed.lock().is_ok_and(|f| f.is_none())
    }

    /// Drops every graph: the next steps warm up and capture again.
    pub fn invalidate(&self) -> Result<()> {
        *lock(&self.generation, "trainer")? += 1;
        lock(&self.cache, "trainer")?.clear();
        Ok(())
    }

    pub fn key(&self, params: &[Tensor], opt: &dyn Optimizer) -> Result<CaptureKey> {
        let gen = *lock(&self.generation, "trainer")?;
        Ok(CaptureKey::of(params, opt.capture_generation(), gen))
    }

    pub fn status(&self, key: CaptureKey) -> Result<GraphStatus> {
        let c = lock(&self.cache, "trainer")?;
        Ok(GraphStatus {
            mode: self.mode.name(),
            active: self.active(),
            blocker: self
                .blocker
                .clone()
                .or_else(|| lock(&self.failed, "trainer").ok().and_then(|f| f.clone())),
            key: key.0,
            graphs: c.count(),
            captures: c.captures,
            replays: c.replays,
            invalidations: c.invalidations,
        })
    }
}

/// What the engine lends the graph step.
pub struct StepParts<'a> {
    pub model: &'a Arc<dyn Module>,
    pub optimizer: &'a Mutex<dyn Optimizer>,
    pub opts: &'a TrainerOptions,
    pub params: &'a [Tensor],
    /// Forward + loss on (inputs, target).
    pub forward_loss: &'a dyn Fn(&[Tensor], &Target) -> Result<Tensor>,
}

impl GraphRuntime {
    /// The plan for this batch (warm-up steps are the engine's eager ones).
    pub fn plan(&self, parts: &StepParts, batch: &[&Tensor]) -> Result<(Plan, ShapeKey)> {
        let opt = lock(parts.optimizer, "optimizer")?;
        let key = self.key(parts.params, &*opt)?;
        drop(opt);
        let shape = ShapeKey::of(batch);
        let plan = lock(&self.cache, "trainer")?.plan(key, &shape);
        Ok((plan, shape))
    }

    /// Runs one eager warm-up step (`eager`) on the side stream; forward-ref
    /// state is pinned afterwards so the capture reads fixed buffers.
    pub fn warm_up<T>(
        &self,
        parts: &StepParts,
        shape: &ShapeKey,
        eager: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let out = {
            let _side = self.capturer()?.side_stream()?;
            let out = eager()?;
            crate::graph::pin_state(parts.model.as_ref())?;
            out
        };
        lock(&self.cache, "trainer")?.warmed(shape);
        Ok(out)
    }

    fn capturer(&self) -> Result<&dyn Capturer> {
        self.capturer
            .as_deref()
            .ok_or_else(|| Error::Internal("CUDA graph mode is not active".into()))
    }

    /// Captures (when `plan` says so) and replays one step on (xs, y), both
    /// already on the device. The lr for this step must already be set.
    /// Returns [loss, skip flag] on the device, unread.
    pub fn run(
        &self,
        parts: &StepParts,
        plan: Plan,
        shape: ShapeKey,
        xs: &[Tensor],
        y: &Tensor,
    ) -> Result<Tensor> {
        let mut cache = lock(&self.cache, "trainer")?;
        if plan == Plan::Capture {
            let captured = {
                let _side = self.capturer()?.side_stream()?;
                self.capture(parts, xs, y)?
            };
            cache.insert(shape.clone(), captured);
        } else {
            let c = cache.get(&shape).ok_or_else(|| {
                Error::Internal("CUDA graph mode: no graph for this shape".into())
            })?;
            let _g = tch::no_grad_guard();
            for (s, x) in c.inputs.iter().zip(xs) {
                s.shallow_clone().f_copy_(x)?;
            }
            c.target.shallow_clone().f_copy_(y)?;
        }
        let c = cache
            .get(&shape)
            .ok_or_else(|| Error::Internal("CUDA graph mode: no graph for this shape".into()))?;
        if self.capturer()?.emulated() {
            captured_step(parts, &c.inputs, &c.target, &c.loss, &c.flag)?;
        } else {
            c.graph.replay()?;
        }
        // A fresh [loss, flag] (the static outputs are overwritten by the
        // next replay); the engine reads it now or with later steps.
        let both = Tensor::f_stack(&[c.loss.shallow_clone(), c.flag.shallow_clone()], 0)?;
        cache.replays += 1;
        Ok(both)
    }

    /// Static buffers for this shape, and the captured step over them.
    fn capture(&self, parts: &StepParts, xs: &[Tensor], y: &Tensor) -> Result<Captured> {
        let inputs = xs.iter().map(deep_copy).collect::<Result<Vec<_>>>()?;
        let target = deep_copy(y)?;
        let dev = y.device();
        let loss = Tensor::f_zeros([], (Kind::Float, dev))?;
        let flag = Tensor::f_zeros([], (Kind::Float, dev))?;
        let graph = self
            .capturer()?
            .capture(&mut || captured_step(parts, &inputs, &target, &loss, &flag))?;
        Ok(Captured {
            graph,
            inputs,
            target,
            loss,
            flag,
        })
    }
}

/// The step as captured: no host reads anywhere. The non-finite check
/// (without a GradScaler) folds into a device found-inf that the fused
/// kernel skips on, as the scaler's does.
fn captured_step(
    parts: &StepParts,
    inputs: &[Tensor],
    target: &Tensor,
    loss_out: &Tensor,
    flag_out: &Tensor,
) -> Result<()> {
    let opts = parts.opts;
    let mut opt = lock(parts.optimizer, "optimizer")?;
    opt.zero_grad()?;
    drop(opt);
    let loss = (parts.forward_loss)(inputs, &Target::Tensor(target.shallow_clone()))?;
    {
        let _g = tch::no_grad_guard();
        loss_out
            .shallow_clone()
            .f_copy_(&loss.f_detach()?.f_to_kind(Kind::Float)?.f_reshape([])?)?;
    }
    let back = match &opts.scaler {
        Some((scaler, _)) => lock(scaler, "GradScaler")?.scale(&loss)?,
        None => loss.shallow_clone(),
    };
    back.f_backward()?;
    let mut opt = lock(parts.optimizer, "optimizer")?;
    let clipping = opts.clip_grad_norm.is_some() || opts.clip_grad_value.is_some();
    let _g = tch::no_grad_guard();
    match &opts.scaler {
        Some((scaler, key)) => {
            let mut sc = lock(scaler, "GradScaler")?;
            if clipping {
                sc.unscale_(*key, &all_params(&*opt))?;
            }
            clip(parts.params, opts)?;
            sc.step(*key, &mut *opt)?;
            if let Some(f) = sc.last_found_inf() {
                flag_out.shallow_clone().f_copy_(&f.f_reshape([])?)?;
            }
            sc.update()?;
        }
        None if opts.on_nonfinite != NonFinite::Off => {
            let dev = loss_out.device();
            let one = Tensor::f_ones([], (Kind::Float, dev))?;
            let found = Tensor::f_zeros([], (Kind::Float, dev))?;
            let mut flag = loss_out
                .f_isfinite()?
                .f_logical_not()?
                .f_to_kind(Kind::Float)?;
            for (_, f) in unscale_grads(parts.params, &one, &found, true)? {
                flag = flag.f_add(&f.f_to_device(dev)?)?;
            }
            // The kernels skip on found_inf == 1 exactly, and a skipped
            // step's counters are undone by subtracting it: 0 or 1 only.
            let flag = flag.f_gt(0.0)?.f_to_kind(Kind::Float)?;
            clip(parts.params, opts)?;
            opt.step_amp(None, Some(&flag))?;
            flag_out.shallow_clone().f_copy_(&flag)?;
        }
        None => {
            clip(parts.params, opts)?;
            opt.step()?;
        }
    }
    drop(opt);
    crate::graph::pin_state(parts.model.as_ref())
}
