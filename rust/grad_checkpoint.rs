//! Gradient (activation) checkpointing: run a function without keeping its
//! intermediate activations and recompute them in backward, trading compute
//! for memory. The autograd Function lives in the shim
//! (`shim::recompute`); this file builds the closures for modules, module
//! chains (`checkpoint_sequential`, as torch's) and graph nodes.
//!
//! Not to be confused with `checkpoint/`, the model files.

use std::sync::Arc;

use tch::Tensor;

use crate::nn::Module;
use crate::shim::recompute::RecomputeFn;
use crate::{Error, Result};

pub use crate::shim::recompute::grad_checkpoint;

fn param_tensors(ms: &[Arc<dyn Module>]) -> Vec<Tensor> {
    ms.iter()
        .flat_map(|m| m.parameters())
        .map(|p| p.tensor)
        .collect()
}

/// A module's forward on `xs`: a graph takes all its inputs, any other
/// module exactly one.
fn run_module(m: &dyn Module, xs: &[Tensor]) -> Result<Tensor> {
    match (m.as_graph(), xs) {
        (Some(g), _) => g.forward_multi(xs),
        (None, [x]) => m.forward(x),
        (None, _) => Err(Error::Value(format!(
            "grad_checkpoint: {} takes 1 input, got {}",
            m.describe(),
            xs.len()
        ))),
    }
}

/// `m(xs)` checkpointed; gradients also reach m's parameters.
pub fn checkpoint_module(m: Arc<dyn Module>, xs: &[Tensor], preserve_rng: bool) -> Result<Tensor> {
    let params = param_tensors(std::slice::from_ref(&m));
    let f: Arc<RecomputeFn> = Arc::new(move |xs: &[Tensor]| Ok(vec![run_module(&*m, xs)?]));
    single(grad_checkpoint(f, xs, &params, preserve_rng)?)
}

fn single(mut outs: Vec<Tensor>) -> Result<Tensor> {
    match (outs.pop(), outs.is_empty()) {
        (Some(t), true) => Ok(t),
        _ => Err(Error::Internal(
            "grad_checkpoint: expected exactly one output".into(),
        )),
    }
}

/// A graph node's module on its stream and refs, checkpointed (the builder's
/// `.checkpoint()` mark): the refs are inputs of the recompute too.
pub fn checkpoint_node(
    m: &Arc<dyn Module>,
    x: &Tensor,
    refs: &[(String, Tensor)],
) -> Result<Tensor> {
    let names: Vec<String> = refs.iter().map(|(n, _)| n.clone()).collect();
    let module = m.clone();
    let f: Arc<RecomputeFn> = Arc::new(move |xs: &[Tensor]| {
        let out = if names.is_empty() {
            module.forward(&xs[0])?
        } else {
            let r: Vec<(String, Tensor)> = names
                .iter()
                .cloned()
                .zip(xs[1..].iter().map(Tensor::shallow_clone))
                .collect();
            module.forward_named(&xs[0], &r)?
        };
        Ok(vec![out])
    });
    let inputs: Vec<Tensor> = std::iter::once(x.shallow_clone())
        .chain(refs.iter().map(|(_, t)| t.shallow_clone()))
        .collect();
    let params = param_tensors(std::slice::from_ref(m));
    single(grad_checkpoint(f, &inputs, &params, true)?)
}

/// torch's `checkpoint_sequential`: `modules` run in order, split into
/// `segments` chunks of `len / segments` modules; every chunk but the last
/// is checkpointed, and the last (with the remainder) runs normally.
pub fn checkpoint_sequential(
    modules: &[Arc<dyn Module>],
    segments: usize,
    x: &Tensor,
    preserve_rng: bool,
) -> Result<Tensor> {
    if segments < 1 {
        return Err(Error::Value(format!(
            "grad_checkpoint_sequential: segments must be at least 1, got {segments}"
        )));
    }
    if modules.is_empty() {
        return Err(Error::Value(
            "grad_checkpoint_sequential: modules is empty".into(),
        ));
    }
    if segments > modules.len() {
        return Err(Error::Value(format!(
            "grad_checkpoint_sequential: segments ({segments}) must not exceed the number of \
             modules ({})",
            modules.len()
        )));
    }
    let size = modules.len() / segments;
    let mut x = x.shallow_clone();
    for s in 0..segments - 1 {
        let chunk: Vec<Arc<dyn Module>> = modules[s * size..(s + 1) * size].to_vec();
        let params = param_tensors(&chunk);
        let f: Arc<RecomputeFn> = Arc::new(move |xs: &[Tensor]| {
            let mut y = xs[0].shallow_clone();
            for m in &chunk {
                y = m.forward(&y)?;
            }
            Ok(vec![y])
        });
        x = single(grad_checkpoint(f, &[x], &params, preserve_rng)?)?;
    }
    for m in &modules[(segments - 1) * size..] {
        x = m.forward(&x)?;
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::FlowBuilder;
    use crate::nn::{Activation, Linear};
    use tch::{Device, Kind};

    fn lin() -> Arc<dyn Module> {
        Arc::new(Linear::new(4, 4, true, Device::Cpu).expect("linear"))
    }

    fn grads(ms: &[Arc<dyn Module>]) -> Vec<Tensor> {
        param_tensors(ms).iter().map(|p| p.grad().copy()).collect()
    }

    fn zero(ms: &[Arc<dyn Module>]) {
        for p in param_tensors(ms) {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    #[test]
    fn sequential_equals_the_plain_chain_with_parameter_grads_only() {
        let ms: Vec<Arc<dyn Module>> = vec![lin(), Arc::new(Activation::Tanh), lin(), lin()];
        let x = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
        let mut plain = x.shallow_clone();
        for m in &ms {
            plain = m.forward(&plain).expect("forward");
        }
        plain.sum(Kind::Float).backward();
        let want = grads(&ms);
        zero(&ms);
        let ours = checkpoint_sequential(&ms, 2, &x, true).expect("checkpointed");
        assert!(ours.equal(&plain));
        ours.sum(Kind::Float).backward();
        for (a, b) in grads(&ms).iter().zip(&want) {
            assert!(a.equal(b));
        }
    }

    #[test]
    fn sequential_rejects_bad_segments() {
        let x = Tensor::zeros([1, 4], (Kind::Float, Device::Cpu));
        for (segments, needle) in [(0, "at least 1"), (3, "must not exceed")] {
            let e = checkpoint_sequential(&[lin(), lin()], segments, &x, true)
                .expect_err("bad segments")
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn builder_mark_changes_neither_hash_nor_names() {
        let build = |mark: bool| {
            let mut b = FlowBuilder::from_module(lin());
            b.also(lin());
            if mark {
                b.checkpoint();
            }
            b.through(lin()).build().expect("build")
        };
        let (g, h) = (build(false), build(true));
        assert_eq!(g.structural_hash(), h.structural_hash());
        let names = |g: &crate::graph::Graph| -> Vec<String> {
            g.named_parameters().into_iter().map(|p| p.name).collect()
        };
        assert_eq!(names(&g), names(&h));
        assert!(h.nodes().iter().filter(|n| n.checkpoint).count() == 1);
    }
}
