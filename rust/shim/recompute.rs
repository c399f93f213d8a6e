//! FFI for the shim's checkpoint Function (`ft_grad_checkpoint`): hands it a
//! Rust closure as a C callback plus an owned context, and collects outputs
//! through the shim's `ft_sink`.

use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use tch::Tensor;

use super::{check, Handle};
use crate::{Error, Result};

/// What a checkpointed call runs: inputs in, outputs out. It runs once in the
/// forward and again (grad enabled) in each backward, possibly on another
/// thread.
pub type RecomputeFn = dyn Fn(&[Tensor]) -> Result<Vec<Tensor>> + Send + Sync;

#[repr(C)]
struct Sink {
    _private: [u8; 0],
}

type Callback = unsafe extern "C" fn(*mut c_void, *mut Handle, usize, *mut Sink) -> i32;
type Drop = unsafe extern "C" fn(*mut c_void);

extern "C" {
    fn ft_sink_new() -> *mut Sink;
    fn ft_sink_free(s: *mut Sink);
    fn ft_sink_push(s: *mut Sink, t: Handle) -> i32;
    fn ft_sink_fail(s: *mut Sink, msg: *const c_char);
    fn ft_sink_len(s: *const Sink) -> usize;
    fn ft_sink_take(s: *mut Sink, i: usize) -> Handle;
    fn ft_grad_checkpoint(
        f: Callback,
        drop: Drop,
        ctx: *mut c_void,
        inputs: *mut Handle,
        n_inputs: usize,
        n_user: usize,
        preserve_rng: i32,
        out: *mut Sink,
    ) -> *mut c_char;
}

/// The context the shim owns: the closure, and the core error of the last
/// failed call so the forward's caller gets it back with its kind intact.
struct Ctx {
    f: Arc<RecomputeFn>,
    error: Mutex<Option<Error>>,
}

/// An owned sink, freed on drop.
struct OwnedSink(*mut Sink);

impl OwnedSink {
    fn new() -> Result<Self> {
        // SAFETY: plain allocation; null means out of memory.
        let s = unsafe { ft_sink_new() };
        if s.is_null() {
            return Err(Error::Torch("grad_checkpoint: out of memory".into()));
        }
        Ok(OwnedSink(s))
    }

    fn take_all(&self) -> Result<Vec<Tensor>> {
        // SAFETY: self.0 is a live sink; each take returns a new owned handle.
        let n = unsafe { ft_sink_len(self.0) };
        (0..n)
            .map(|i| {
                let h = unsafe { ft_sink_take(self.0, i) };
                if h.is_null() {
                    Err(Error::Torch("grad_checkpoint: out of memory".into()))
                } else {
                    Ok(unsafe { Tensor::from_ptr(h) })
                }
            })
            .collect()
    }
}

impl std::ops::Drop for OwnedSink {
    fn drop(&mut self) {
        // SAFETY: allocated by ft_sink_new, freed once.
        unsafe { ft_sink_free(self.0) }
    }
}

fn fail(sink: *mut Sink, msg: &str) -> i32 {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: sink is the live sink the shim passed; the shim copies msg.
    unsafe { ft_sink_fail(sink, c.as_ptr()) };
    1
}

unsafe extern "C" fn trampoline(
    ctx: *mut c_void,
    inputs: *mut Handle,
    n: usize,
    sink: *mut Sink,
) -> i32 {
    // SAFETY: ctx is the Box<Arc<Ctx>> leaked in `checkpoint`, alive until
    // `drop_ctx`; inputs holds n live tensor handles owned by the shim, which
    // we only shallow-clone.
    let ctx = &*(ctx as *const Arc<Ctx>);
    let xs: Vec<Tensor> = (0..n)
        .map(|i| Tensor::clone_from_ptr(*inputs.add(i)))
        .collect();
    match catch_unwind(AssertUnwindSafe(|| (ctx.f)(&xs))) {
        Ok(Ok(outs)) => {
            for o in &outs {
                if ft_sink_push(sink, o.as_ptr() as Handle) != 0 {
                    return fail(sink, "grad_checkpoint: out of memory");
                }
            }
            0
        }
        Ok(Err(e)) => {
            let msg = e.to_string();
            if let Ok(mut slot) = ctx.error.lock() {
                *slot = Some(e);
            }
            fail(sink, &msg)
        }
        Err(_) => fail(
            sink,
            "grad_checkpoint: the function panicked (a ferrotorch bug)",
        ),
    }
}

unsafe extern "C" fn drop_ctx(ctx: *mut c_void) {
    // SAFETY: the shim calls this exactly once with the pointer we leaked.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        drop(Box::from_raw(ctx as *mut Arc<Ctx>));
    }));
}

/// `f(inputs)` through the shim's checkpoint Function: no activations are
/// kept; backward reruns `f` under the forward's RNG (when `preserve_rng`)
/// and autocast state. `params` are the tensors `f` uses besides its inputs:
/// declaring them lets gradients reach them even when no input requires grad.
pub fn grad_checkpoint(
    f: Arc<RecomputeFn>,
    inputs: &[Tensor],
    params: &[Tensor],
    preserve_rng: bool,
) -> Result<Vec<Tensor>> {
    let ctx = Arc::new(Ctx {
        f,
        error: Mutex::new(None),
    });
    let out = OwnedSink::new()?;
    let mut hs: Vec<Handle> = inputs
        .iter()
        .chain(params)
        .map(|t| t.as_ptr() as Handle)
        .collect();
    let raw = Box::into_raw(Box::new(ctx.clone())) as *mut c_void;
    // SAFETY: the handles stay alive for the call (borrowed slices); the
    // shim takes ownership of `raw` and releases it through drop_ctx.
    let err = unsafe {
        ft_grad_checkpoint(
            trampoline,
            drop_ctx,
            raw,
            hs.as_mut_ptr(),
            hs.len(),
            inputs.len(),
            i32::from(preserve_rng),
            out.0,
        )
    };
    if let Err(e) = check("grad_checkpoint", err) {
        // The closure's own error keeps its kind (and a Python exception).
        let own = ctx.error.lock().ok().and_then(|mut s| s.take());
        return Err(own.unwrap_or(e));
    }
    out.take_all()
}
