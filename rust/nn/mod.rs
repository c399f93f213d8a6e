//! Modules: the `Module` trait, parameters, layers, activations and init.

mod activation;
mod add_parameter;
mod attention;
mod bilinear;
mod conv;
mod dropout;
mod embedding;
pub mod init;
mod layernorm;
mod linear;
mod norm;
mod pooling;
mod rnn;
mod shape;
mod unroll;

pub use activation::{
    Activation, Elu, Gelu, GeluApprox, LeakyRelu, LogSoftmax, PRelu, Softmax, Softplus,
};
pub use add_parameter::AddParameter;
pub use attention::{flodl_names, MultiheadAttention};
pub use bilinear::Bilinear;
pub use conv::{Conv, ConvOptions};
pub use dropout::{Dropout, DropoutKind};
pub use embedding::{BagMode, Embedding, EmbeddingBag};
pub use layernorm::LayerNorm;
pub use linear::Linear;
pub use norm::{BatchNorm, GroupNorm, InstanceNorm, RmsNorm};
pub use pooling::{AdaptivePool2d, AvgPool, MaxPool};
pub use rnn::{GruCell, LstmCell, Rnn, RnnKind};
pub use shape::{
    Flatten, Fold, Pad2d, PadMode, PixelShuffle, Select, Unfold, Upsample, UpsampleMode, Window,
};
pub use unroll::{Unroll, UnrollCell};

use std::sync::atomic::{AtomicBool, Ordering};

use tch::{Kind, Tensor};

use crate::tensor::{kind_str, require_float, shape_str, SharedTensor};
use crate::{Error, Result};

/// A named parameter: a new handle on the module's tensor (same storage, same
/// `.grad`), so optimizers and Python see exactly what the module uses.
pub struct Parameter {
    pub name: String,
    pub tensor: Tensor,
}

/// A building block of a graph. Implementations are cheap to share (`Arc`)
/// and use interior mutability for the little state they have.
pub trait Module: Send + Sync {
    /// floDl's module name (`linear`, `gelu`, ...): the prefix of node ids.
    fn name(&self) -> &str;
    /// Runs the module on one input.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
    /// Trainable parameters with their raw names (`weight`, `bias`).
    fn parameters(&self) -> Vec<Parameter> {
        Vec::new()
    }
    /// Non-trainable state (running statistics) with raw names.
    fn buffers(&self) -> Vec<Parameter> {
        Vec::new()
    }
    /// Switches training behaviour (dropout, batch statistics). Fallible
    /// because a Python node's `train()` may raise.
    fn set_training(&self, _on: bool) -> Result<()> {
        Ok(())
    }
    /// The training mode of a module that has one (dropout, batch norm).
    fn training_mode(&self) -> Option<bool> {
        None
    }
    /// Detaches carried state from the autograd graph (recurrent state, refs).
    fn detach_state(&self) {}
    /// Called once after each optimizer step (floDl's `end_step`).
    fn end_step(&self) {
        self.detach_state()
    }
    /// Human-readable summary used in messages (`Linear(4 -> 2)`).
    fn describe(&self) -> String {
        self.name().to_string()
    }
    /// True for floDl's `NamedInputModule`s: they take tagged tensors
    /// (`.using(...)`) besides the stream, through `forward_named`.
    fn accepts_refs(&self) -> bool {
        false
    }
    /// Forward with named extra inputs (tag -> tensor); only called when
    /// `accepts_refs()` and at least one ref is wired.
    fn forward_named(&self, x: &Tensor, refs: &[(String, Tensor)]) -> Result<Tensor> {
        let _ = (x, refs);
        Err(crate::Error::Graph(format!(
            "{} does not take named inputs (using)",
            self.describe()
        )))
    }
    /// Clears per-sequence state (a loop calls it on its body before iterating).
    fn reset(&self) {}
    /// Child modules, for recursive walks (training mode, reset, state).
    fn sub_modules(&self) -> Vec<std::sync::Arc<dyn Module>> {
        Vec::new()
    }
    /// Why a CUDA graph cannot capture this module's forward (host-side
    /// control, Python), or None; children are walked by
    /// `graph::capture_blocker`.
    fn capture_blocker(&self) -> Option<String> {
        None
    }
    /// The graph behind this module, when it is one (nesting, hashes, trees).
    fn as_graph(&self) -> Option<&crate::graph::Graph> {
        None
    }
    /// The same, as a shared handle (a child graph handed back to a caller).
    fn into_graph(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<crate::graph::Graph>> {
        None
    }
    /// The structural hash folded into a parent's hash after `G`: a nested
    /// graph's own, or (for a map node) its body's.
    fn nested_hash(&self) -> Option<String> {
        self.as_graph().map(|g| g.structural_hash())
    }
}

/// The training flag many modules carry.
#[derive(Debug)]
pub struct TrainFlag(AtomicBool);

impl Default for TrainFlag {
    fn default() -> Self {
        TrainFlag(AtomicBool::new(true))
    }
}

impl TrainFlag {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed)
    }
}

/// Identity: passes its input through (floDl name `identity`).
#[derive(Default)]
pub struct Identity;

impl Module for Identity {
    fn name(&self) -> &str {
        "identity"
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.shallow_clone())
    }
}

/// A `Parameter` entry for a tensor the module owns.
pub(crate) fn param(name: &str, t: &SharedTensor) -> Parameter {
    Parameter {
        name: name.to_string(),
        tensor: t.handle(),
    }
}

/// Requires a float input with one of the allowed ranks; `layout` describes
/// the expected shape in the message (`[N, C, H, W]`).
pub(crate) fn check_input(
    m: &dyn Module,
    x: &Tensor,
    ranks: &[usize],
    layout: &str,
) -> Result<Vec<i64>> {
    require_float(x, &format!("{} input", m.describe()))?;
    let size = x.size();
    if !ranks.contains(&size.len()) {
        let r: Vec<String> = ranks.iter().map(|r| format!("{r}-D")).collect();
        return Err(Error::Shape(format!(
            "{}: expected a {} input {layout}, got shape {}",
            m.describe(),
            r.join(" or "),
            shape_str(x)
        )));
    }
    Ok(size)
}

/// Under autocast, libtorch casts operands itself: mixed dtypes are expected.
pub(crate) fn autocast_active(x: &Tensor) -> bool {
    let dev = if x.device().is_cuda() {
        crate::amp::AutocastDevice::Cuda
    } else {
        crate::amp::AutocastDevice::Cpu
    };
    crate::amp::is_autocast_enabled(dev).unwrap_or(false)
}

/// Requires the input's dtype to equal the parameters' (cast the module
/// with `cast` to run it in another precision).
pub(crate) fn check_kind(m: &dyn Module, x: &Tensor, w: &Tensor) -> Result<()> {
    let (xk, wk) = (x.f_kind()?, w.f_kind()?);
    if xk != wk && !autocast_active(x) {
        return Err(Error::DType(format!(
            "{}: input is {} but the parameters are {}",
            m.describe(),
            kind_str(xk),
            kind_str(wk)
        )));
    }
    Ok(())
}

/// Requires the size of dimension `dim` (the channel or feature dimension).
pub(crate) fn check_dim(
    m: &dyn Module,
    x: &Tensor,
    dim: usize,
    want: i64,
    what: &str,
) -> Result<()> {
    let size = x.size();
    if size.get(dim) != Some(&want) {
        return Err(Error::Shape(format!(
            "{}: expected {want} {what} at dimension {dim}, got shape {}",
            m.describe(),
            shape_str(x)
        )));
    }
    Ok(())
}

/// Converts a module's floating parameters and buffers to `kind` in place
/// (same handles, like torch's `Module.double()`); their grads are dropped.
pub fn cast(m: &dyn Module, kind: Kind) -> Result<()> {
    for p in m.parameters().into_iter().chain(m.buffers()) {
        let mut t = p.tensor;
        if crate::tensor::is_float(t.f_kind()?) && t.f_kind()? != kind {
            crate::shim::grads_set_to_none(&[&t])?;
            let data = t.f_detach()?.f_to_kind(kind)?;
            t.f_set_data(&data)?;
        }
    }
    Ok(())
}

/// Moves a module's parameters and buffers to `device` in place (same
/// handles, torch's `Module.to(device)`); a graph's carried state is cleared.
pub fn to_device(m: &dyn Module, device: tch::Device) -> Result<()> {
    for p in m.parameters().into_iter().chain(m.buffers()) {
        let mut t = p.tensor;
        if t.device() != device {
            crate::shim::grads_set_to_none(&[&t])?;
            let data = t.f_detach()?.f_to_device(device)?;
            t.f_set_data(&data)?;
        }
    }
    if let Some(g) = m.as_graph() {
        g.reset_state();
    }
    Ok(())
}

/// Positive-size check for constructor arguments.
pub(crate) fn positive(what: &str, name: &str, v: i64) -> Result<()> {
    if v <= 0 {
        return Err(Error::Value(format!(
            "{what}: {name} must be positive, got {v}"
        )));
    }
    Ok(())
}
