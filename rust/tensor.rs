//! Small tensor helpers shared by the core: a `Sync` handle and checks that
//! produce messages naming the argument and its shape or dtype.
//!
//! Shape accessors: tch's `size()`, `dim()`, `numel()` and `device()` have
//! no fallible form; they fail (panic) only on an undefined tensor (and
//! `size()` on a nested tensor). The core calls them only on defined tensors:
//! every tensor it computes with is an op's result, a parameter, or an input
//! the binding unpacked from a `torch.Tensor` (always defined); the one
//! source of undefined tensors, a missing gradient, goes through [`grad_of`].
//! (A nested tensor from Python is not refused at the boundary yet; its
//! panic becomes `InternalError` there.) `kind()` and `*_value()` can
//! fail on defined tensors (dtypes tch does not know, several elements), so
//! the core uses their `f_*` forms ([`kind_of`]).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tch::{Kind, Tensor};

use crate::{Error, Result};

/// A tensor handle that may be shared between threads, and rebound: when a
/// library puts a new tensor where a module or optimizer had this one
/// (accelerate, `load_state_dict(assign=True)`, a new `nn.Parameter` set by
/// hand), [`rebind`] points every live handle on the old tensor at the new
/// one, so one copy of each parameter is what every holder computes with.
///
/// `Send + Sync` by construction: the handle sits behind a mutex, held only
/// to clone it ([`SharedTensor::handle`]) or to replace it ([`rebind`]), so a
/// reader on one thread and a rebind on another never race on the C++
/// handle. What readers do with their clones (in-place math on the shared
/// storage) is ordered by the caller, as in torch: the engine's step runs on
/// one thread, the optimizer's state behind its own mutex.
pub struct SharedTensor(Arc<Mutex<Tensor>>);

/// Every SharedTensor alive (weakly), for `rebind`.
static LIVE: Mutex<Vec<Weak<Mutex<Tensor>>>> = Mutex::new(Vec::new());

/// A tensor's lock; nothing panics while one is held (handle clones and
/// assignments), so a poisoned lock still holds a valid handle.
fn lock(t: &Mutex<Tensor>) -> MutexGuard<'_, Tensor> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SharedTensor {
    pub fn new(t: Tensor) -> Self {
        let cell = Arc::new(Mutex::new(t));
        if let Ok(mut live) = LIVE.lock() {
            if live.len() >= 64 && live.len().is_power_of_two() {
                live.retain(|w| w.strong_count() > 0); // amortised pruning
            }
            live.push(Arc::downgrade(&cell));
        }
        SharedTensor(cell)
    }

    /// A new handle on the tensor to compute with (same storage, same grad):
    /// its substitute inside a [`crate::substitute::Substitutes::scope`] on
    /// this thread, else the held tensor.
    pub fn handle(&self) -> Tensor {
        let own = lock(&self.0);
        crate::substitute::lookup(&own).unwrap_or_else(|| own.shallow_clone())
    }

    /// The held tensor itself, ignoring substitutes (identity, rebinding).
    pub fn own(&self) -> Tensor {
        lock(&self.0).shallow_clone()
    }

    /// The tensor this handle reads as on this thread now, if substituted.
    pub fn substitute(&self) -> Option<Tensor> {
        crate::substitute::lookup(&lock(&self.0))
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
        if let Some(cell) = w.upgrade() {
            let mut t = lock(&cell);
            if crate::shim::is_same(&t, old) {
                *t = new.shallow_clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebind_from_another_thread_is_seen_by_later_reads() {
        let old = Tensor::from_slice(&[1.0f32, 1.0]);
        let w = SharedTensor::new(old.shallow_clone());
        let new = Tensor::from_slice(&[3.0f32, 4.0]);
        let (o, n) = (old.shallow_clone(), new.shallow_clone());
        let n = std::thread::spawn(move || rebind(&o, &n).expect("rebind"))
            .join()
            .expect("thread");
        assert!(n >= 1);
        let s = w.handle().f_sum(Kind::Float).expect("sum");
        assert_eq!(s.f_double_value(&[]).expect("value"), 7.0);
    }
}
