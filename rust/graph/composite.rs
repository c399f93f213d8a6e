//! Composite nodes as modules: loops, soft gates, hard switches and maps.
//! Each owns its sub-modules; parameters come from them (floDl names the
//! composites' own module "module", except map, which takes its body's).

use std::collections::HashSet;
use std::sync::Arc;

use tch::{Kind, Tensor};

use crate::nn::{Module, Parameter, TrainFlag};
use crate::tensor::shape_str;
use crate::{Error, Result};

/// Each sub-module once, in order: a module passed twice (the same expert in
/// two slots) owns its parameters once, as floDl's pointer dedup does; the
/// structural hash and checkpoint names depend on it.
fn unique<'a>(ms: &[&'a Arc<dyn Module>]) -> Vec<&'a Arc<dyn Module>> {
    let mut seen = HashSet::new();
    ms.iter()
        .copied()
        .filter(|m| seen.insert(Arc::as_ptr(m) as *const () as usize))
        .collect()
}

fn params_of(ms: &[&Arc<dyn Module>]) -> Vec<Parameter> {
    unique(ms).iter().flat_map(|m| m.parameters()).collect()
}

fn buffers_of(ms: &[&Arc<dyn Module>]) -> Vec<Parameter> {
    unique(ms).iter().flat_map(|m| m.buffers()).collect()
}

fn call(m: &Arc<dyn Module>, x: &Tensor, refs: &[(String, Tensor)]) -> Result<Tensor> {
    if refs.is_empty() {
        m.forward(x)
    } else {
        m.forward_named(x, refs)
    }
}

/// The first element of a condition's output, read on the host.
fn first_value(t: &Tensor, what: &str) -> Result<f64> {
    if t.numel() == 0 {
        return Err(Error::Shape(format!("{what} returned an empty tensor")));
    }
    Ok(t.f_flatten(0, -1)?.f_double_value(&[0])?)
}

/// How a loop decides to stop.
#[derive(Clone)]
pub enum LoopKind {
    /// Exactly n iterations.
    ForN(usize),
    /// Check before each iteration; halt when cond's first element > 0.
    While(Arc<dyn Module>, usize),
    /// Body first, then check (skipped after the last allowed iteration).
    Until(Arc<dyn Module>, usize),
}

pub struct LoopModule {
    pub body: Arc<dyn Module>,
    pub kind: LoopKind,
    training: TrainFlag,
}

impl LoopModule {
    pub fn new(body: Arc<dyn Module>, kind: LoopKind) -> Result<Self> {
        match &kind {
            LoopKind::ForN(0) => {
                return Err(Error::Graph(
                    "for_n: the iteration count must be at least 1".into(),
                ))
            }
            LoopKind::While(_, 0) | LoopKind::Until(_, 0) => {
                return Err(Error::Graph("loop: max_iter must be at least 1".into()))
            }
            _ => {}
        }
        Ok(LoopModule {
            body,
            kind,
            training: TrainFlag::default(),
        })
    }

    fn cond(&self) -> Option<&Arc<dyn Module>> {
        match &self.kind {
            LoopKind::While(c, _) | LoopKind::Until(c, _) => Some(c),
            LoopKind::ForN(_) => None,
        }
    }

    fn run(&self, x: &Tensor, refs: &[(String, Tensor)]) -> Result<Tensor> {
        self.body.reset();
        let mut state = x.shallow_clone();
        match &self.kind {
            LoopKind::ForN(n) => {
                for _ in 0..*n {
                    state = call(&self.body, &state, refs)?;
                }
            }
            LoopKind::While(c, max) => {
                for _ in 0..*max {
                    if first_value(&c.forward(&state)?, "while_cond")? > 0.0 {
                        break;
                    }
                    state = call(&self.body, &state, refs)?;
                }
            }
            LoopKind::Until(c, max) => {
                for i in 0..*max {
                    state = call(&self.body, &state, refs)?;
                    if i + 1 < *max && first_value(&c.forward(&state)?, "until_cond")? > 0.0 {
                        break;
                    }
                }
            }
        }
        Ok(state)
    }
}

impl Module for LoopModule {
    fn name(&self) -> &str {
        "module"
    }
    fn describe(&self) -> String {
        format!("loop over {}", self.body.describe())
    }
    fn capture_blocker(&self) -> Option<String> {
        match self.kind {
            LoopKind::ForN(_) => None,
            LoopKind::While(..) => Some("while_cond reads the condition on the host".into()),
            LoopKind::Until(..) => Some("until_cond reads the condition on the host".into()),
        }
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, &[])
    }
    fn accepts_refs(&self) -> bool {
        self.body.accepts_refs()
    }
    fn forward_named(&self, x: &Tensor, refs: &[(String, Tensor)]) -> Result<Tensor> {
        self.run(x, refs)
    }
    fn parameters(&self) -> Vec<Parameter> {
        let mut ms = vec![&self.body];
        ms.extend(self.cond());
        params_of(&ms)
    }
    fn buffers(&self) -> Vec<Parameter> {
        let mut ms = vec![&self.body];
        ms.extend(self.cond());
        buffers_of(&ms)
    }
    fn set_training(&self, on: bool) -> Result<()> {
        self.training.set(on);
        self.body.set_training(on)?;
        if let Some(c) = self.cond() {
            c.set_training(on)?;
        }
        Ok(())
    }
    fn sub_modules(&self) -> Vec<Arc<dyn Module>> {
        let mut v = vec![self.body.clone()];
        v.extend(self.cond().cloned());
        v
    }
}

/// The Module impl the routed composites (gate, switch) share: refs go to
/// the router; parameters, buffers and training mode cover router + branches.
macro_rules! routed_module {
    ($ty:ident, $branches:ident, $kind:literal, $noun:literal) => {
        impl $ty {
            fn all(&self) -> Vec<&Arc<dyn Module>> {
                std::iter::once(&self.router)
                    .chain(self.$branches.iter())
                    .collect()
            }
        }

        impl Module for $ty {
            fn name(&self) -> &str {
                "module"
            }
            fn describe(&self) -> String {
                format!("{} over {} {}", $kind, self.$branches.len(), $noun)
            }
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                self.run(x, &[])
            }
            fn accepts_refs(&self) -> bool {
                self.router.accepts_refs()
            }
            fn forward_named(&self, x: &Tensor, refs: &[(String, Tensor)]) -> Result<Tensor> {
                self.run(x, refs)
            }
            fn parameters(&self) -> Vec<Parameter> {
                params_of(&self.all())
            }
            fn buffers(&self) -> Vec<Parameter> {
                buffers_of(&self.all())
            }
            fn set_training(&self, on: bool) -> Result<()> {
                for m in self.all() {
                    m.set_training(on)?;
                }
                Ok(())
            }
            fn sub_modules(&self) -> Vec<Arc<dyn Module>> {
                self.all().into_iter().cloned().collect()
            }
            fn capture_blocker(&self) -> Option<String> {
                $ty::host_control()
            }
        }
    };
}

/// Soft routing: every expert runs; the output is their sum weighted by the
/// router's output w [.., n]: sum(stack(experts, -1) * w.unsqueeze(-2), -1).
pub struct GateModule {
    pub router: Arc<dyn Module>,
    pub experts: Vec<Arc<dyn Module>>,
}

impl GateModule {
    fn run(&self, x: &Tensor, refs: &[(String, Tensor)]) -> Result<Tensor> {
        let w = call(&self.router, x, refs)?;
        let outs = self
            .experts
            .iter()
            .map(|e| e.forward(x))
            .collect::<Result<Vec<_>>>()?;
        let n = self.experts.len() as i64;
        if w.size().last() != Some(&n) {
            return Err(Error::Shape(format!(
                "gate: the router must output [..., {n}] weights for {n} experts, got {}",
                shape_str(&w)
            )));
        }
        let stacked = Tensor::f_stack(&outs, -1)?;
        Ok(stacked
            .f_mul(&w.f_unsqueeze(-2)?)?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?)
    }
}

impl GateModule {
    /// Soft routing runs every expert: nothing is decided on the host.
    fn host_control() -> Option<String> {
        None
    }
}

routed_module!(GateModule, experts, "gate", "experts");

/// Hard routing: the router's first output element picks one branch for the
/// whole batch; only that branch runs (not differentiable w.r.t. the router).
pub struct SwitchModule {
    pub router: Arc<dyn Module>,
    pub branches: Vec<Arc<dyn Module>>,
}

impl SwitchModule {
    fn run(&self, x: &Tensor, refs: &[(String, Tensor)]) -> Result<Tensor> {
        let r = call(&self.router, x, refs)?;
        let v = first_value(&r, "switch router")?;
        let n = self.branches.len();
        if v.is_nan() || v < 0.0 || v as usize >= n {
            return Err(Error::Value(format!(
                "switch: the router chose branch {v}, but there are {n} branches"
            )));
        }
        self.branches[v as usize].forward(x)
    }
}

routed_module!(SwitchModule, branches, "switch", "branches");

impl SwitchModule {
    /// The branch is picked by a host read of the router's output.
    fn host_control() -> Option<String> {
        Some("switch reads the router's choice on the host".into())
    }
}

/// How a map applies its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapMode {
    /// Each row (narrow(0, i, 1)) separately, results concatenated on dim 0.
    Each,
    /// The whole batch at once.
    Batched,
    /// [B, D] -> [B·n, D/n] rows -> body -> [B, out·n].
    Slices { n: i64, batched: bool },
}

pub struct MapModule {
    pub body: Arc<dyn Module>,
    pub mode: MapMode,
}

impl MapModule {
    fn each(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.size().first().copied().unwrap_or(0);
        if n == 0 {
            return Ok(x.shallow_clone());
        }
        let outs = (0..n)
            .map(|i| self.body.forward(&x.f_narrow(0, i, 1)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_cat(&outs, 0)?)
    }
}

impl Module for MapModule {
    fn name(&self) -> &str {
        self.body.name()
    }
    /// floDl's map node holds the body itself, so a graph body's hash is
    /// folded in as for a nested graph node.
    fn nested_hash(&self) -> Option<String> {
        self.body.nested_hash()
    }
    fn describe(&self) -> String {
        format!("map over {}", self.body.describe())
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.mode {
            MapMode::Each => self.each(x),
            MapMode::Batched => self.body.forward(x),
            MapMode::Slices { n, batched } => {
                let s = x.size();
                if s.len() < 2 || s[s.len() - 1] % n != 0 {
                    return Err(Error::Shape(format!(
                        "map.slices({n}): the input must be at least 2-D with a last dimension divisible by {n}, got {}",
                        shape_str(x)
                    )));
                }
                let (b, d) = (s[0], s[s.len() - 1]);
                let rows = x.f_reshape([b * n, d / n])?;
                let out = if batched {
                    self.body.forward(&rows)?
                } else {
                    self.each(&rows)?
                };
                Ok(out.f_reshape([b, -1])?)
            }
        }
    }
    fn parameters(&self) -> Vec<Parameter> {
        self.body.parameters()
    }
    fn buffers(&self) -> Vec<Parameter> {
        self.body.buffers()
    }
    fn set_training(&self, on: bool) -> Result<()> {
        self.body.set_training(on)
    }
    fn sub_modules(&self) -> Vec<Arc<dyn Module>> {
        vec![self.body.clone()]
    }
}
