//! Small tensor helpers shared by the core: a `Sync` handle and checks that
//! produce messages naming the argument and its shape or dtype.

use std::ops::Deref;
use std::sync::{Arc, Mutex, Weak};

use tch::{Kind, Tensor};

use crate::{Error, Result};

/// A tensor handle that may be shared between threads, and rebound: when a
/// library puts a new tensor where a module or optimizer had this one
/// (accelerate, `load_state_dict(assign=True)`, a new `nn.Parameter` set by
/// hand), [`rebind`] points every live handle on the old tensor at the new
/// one, so one copy of each parameter is what every holder computes with.
///
/// `tch::Tensor` is `Send` but not `Sync`. An `at::Tensor` handle is an
/// intrusive pointer with an atomic refcount; reading it from several threads
/// is what PyTorch itself does for module parameters. In-place math on the
/// data is serialised by the caller (the optimizer's mutex, the GIL); a
/// rebind happens from Python, between steps.
pub struct SharedTensor(Arc<Tensor>);

// SAFETY: see the type's doc: only the handle is shared, never a `&mut`.
unsafe impl Sync for SharedTensor {}
unsafe impl Send for SharedTensor {}

struct Live(Weak<Tensor>);
// SAFETY: the registry only compares handles and reassigns them under its lock (see `rebind`).
unsafe impl Send for Live {}

/// Every SharedTensor alive (weakly), for `rebind`.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

impl SharedTensor {
    pub fn new(t: Tensor) -> Self {
        // The Arc is shared between threads on the terms of the type's doc
        // (Send/Sync are implemented for SharedTensor, not derived from Tensor).
        #[allow(clippy::arc_with_non_send_sync)]
        let cell = Arc::new(t);
        if let Ok(mut live) = LIVE.lock() {
            if live.len() >= 64 && live.len().is_power_of_two() {
                live.retain(|w| w.0.strong_count() > 0); // amortised pruning
            }
            live.push(Live(Arc::downgrade(&cell)));
        }
        SharedTensor(cell)
    }
    /// A new handle on the same tensor (same storage, same grad), or on its
    /// substitute inside [`crate::substitute::with_substitutes`].
    pub fn handle(&self) -> Tensor {
        (**self).shallow_clone()
    }

    /// The tensor this handle reads as on this thread now, if substituted.
    pub fn substitute(&self) -> Option<Tensor> {
        crate::substitute::lookup(&self.0).map(Tensor::shallow_clone)
    }
}

impl Deref for SharedTensor {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        crate::substitute::lookup(&self.0).unwrap_or(&*self.0)
    }
}

/// Points every live [`SharedTensor`] on `old` (modules, graphs, optimizer
/// groups) at `new` instead; returns how many followed. The shapes must
/// agree, so a module's computation stays valid.
pub fn rebind(old: &Tensor, new: &Tensor) -> Result<usize> {
    if !old.defined() || !new.defined() {
        return Err(Error::Value("rebind: an undefined tensor".into()));
    }
    if old.size() != new.size() {
        return Err(Error::Shape(format!(
            "cannot replace a tensor of shape {} with one of shape {}",
            shape_str(old),
            shape_str(new)
        )));
    }
    let live = LIVE
        .lock()
        .map_err(|_| Error::Internal("tensor registry poisoned".into()))?;
    let mut n = 0;
    for w in live.iter() {
        if let Some(t) = w.0.upgrade() {
            if crate::shim::is_same(&t, old) {
                crate::shim::assign(&t, new);
                n += 1;
            }
        }
    }
    // A captured CUDA graph needs no signal: its key hashes each
    // parameter's data pointer, which a rebind changes.
    Ok(n)
}

/// `[2, 3]`-style shape text for messages.
pub fn shape_str(t: &Tensor) -> String {
    format!("{:?}", t.size())
}

/// The dtype name as torch prints it (`float32`, `int64`, ...).
pub fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::Uint8 => "uint8",
        Kind::Int8 => "int8",
        Kind::Int16 => "int16",
        Kind::Int => "int32",
        Kind::Int64 => "int64",
        Kind::Half => "float16",
        Kind::Float => "float32",
        Kind::Double => "float64",
        Kind::BFloat16 => "bfloat16",
        Kind::Bool => "bool",
        Kind::ComplexFloat => "complex64",
        Kind::ComplexDouble => "complex128",
        _ => "other",
    }
}

/// The tensor's dtype, or an error when it has none we know.
pub fn kind_of(t: &Tensor, what: &str) -> Result<Kind> {
    t.f_kind()
        .map_err(|e| Error::DType(format!("{what}: unsupported dtype ({e})")))
}

pub fn is_float(k: Kind) -> bool {
    matches!(k, Kind::Half | Kind::Float | Kind::Double | Kind::BFloat16)
}

/// Requires a floating-point tensor; `what` names it in the message.
pub fn require_float(t: &Tensor, what: &str) -> Result<Kind> {
    let k = kind_of(t, what)?;
    if !is_float(k) {
        return Err(Error::DType(format!(
            "{what}: expected a floating-point tensor, got {}",
            kind_str(k)
        )));
    }
    Ok(k)
}

/// Groups items by key, keeping first-seen key order (buckets of tensors by
/// device or (device, dtype) for the multi-tensor kernels).
pub fn group_by<K: PartialEq, T>(items: impl IntoIterator<Item = (K, T)>) -> Vec<(K, Vec<T>)> {
    let mut groups: Vec<(K, Vec<T>)> = Vec::new();
    for (k, t) in items {
        match groups.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, v)) => v.push(t),
            None => groups.push((k, vec![t])),
        }
    }
    groups
}

/// The gradient of `t`, if one has been accumulated.
pub fn grad_of(t: &Tensor) -> Option<Tensor> {
    let g = t.f_grad().ok()?;
    g.defined().then_some(g)
}

/// A new tensor with its own storage holding `t`'s values (no autograd link).
pub fn deep_copy(t: &Tensor) -> Result<Tensor> {
    let mut out = t.f_empty_like()?;
    out.f_copy_(&t.f_detach()?)?;
    Ok(out)
}
