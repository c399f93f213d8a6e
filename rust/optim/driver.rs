//! The machinery every optimizer shares: groups, lazily created per-parameter
//! state, (device, dtype) buckets for the multi-tensor kernels, learning-rate
//! control and state dicts in torch.optim's layout. An algorithm only says
//! what its state is and how one bucket steps (`Algorithm`).

use tch::{Device, Kind, Tensor};

use super::group::{grads_to_none, ParamGroup};
use super::hyper::{HValue, Hyper};
use super::{Impl, Optimizer, StateDict};
use crate::tensor::{deep_copy, grad_of, group_by};
use crate::{Error, Result};

/// Per-parameter state slots, in the order of `Algorithm::state_names`;
/// `None` for a slot the configuration does not use (e.g. no momentum).
pub type State = Vec<Option<Tensor>>;

/// Parameters of one group that share device and dtype and have gradients.
pub struct Bucket<'a> {
    pub params: Vec<Tensor>,
    pub grads: Vec<Tensor>,
    pub states: Vec<&'a mut State>,
}

impl Bucket<'_> {
    /// Handles on state slot `k` of every parameter (error if unset).
    pub fn slot(&self, k: usize, name: &str) -> Result<Vec<Tensor>> {
        self.states
            .iter()
            .map(|s| {
                s.get(k)
                    .and_then(|t| t.as_ref())
                    .map(|t| t.shallow_clone())
                    .ok_or_else(|| Error::Internal(format!("optimizer state '{name}' missing")))
            })
            .collect()
    }

    /// Host values of a scalar slot (step counts: CPU tensors, no device sync
    /// except on the fused path, which never reads them).
    pub fn scalars(&self, k: usize, name: &str) -> Result<Vec<f64>> {
        self.slot(k, name)?
            .iter()
            .map(|t| Ok(t.f_double_value(&[])?))
            .collect()
    }
}

/// New handles on the same tensors (tch's Tensor is not Clone).
pub fn handles(v: &[Tensor]) -> Vec<Tensor> {
    v.iter().map(|t| t.shallow_clone()).collect()
}

/// Borrowed views for the `_foreach_*` wrappers.
pub fn refs(v: &[Tensor]) -> Vec<&Tensor> {
    v.iter().collect()
}

/// Device tensors handed to fused kernels: the AMP scale and found-inf
/// (unscale + skip on inf, on device) and, on the capturable path, the lr.
#[derive(Clone, Copy, Default)]
pub struct Amp<'a> {
    pub grad_scale: Option<&'a Tensor>,
    pub found_inf: Option<&'a Tensor>,
    /// The group's lr as a 0-dim tensor on the bucket's device (capturable).
    pub lr: Option<&'a Tensor>,
}

/// The distinct tensors of `steps`: on the fused path parameters of a bucket
/// may share one step counter (see `share_steps`), bumped once.
fn distinct(steps: &[Tensor]) -> Vec<&Tensor> {
    let mut out: Vec<&Tensor> = Vec::new();
    for s in steps {
        if !out.iter().any(|o| crate::shim::is_same(o, s)) {
            out.push(s);
        }
    }
    out
}

/// `steps += 1`, once per distinct counter: one op when they are shared,
/// a direct write when they are CPU scalars (the usual CPU case).
pub fn bump_steps(steps: &[Tensor]) -> Result<()> {
    let steps = distinct(steps);
    let host = steps.iter().all(|t| {
        t.device() == Device::Cpu
            && t.numel() == 1
            && matches!(t.f_kind(), Ok(Kind::Float | Kind::Double))
    });
    if host {
        crate::shim::cpu_scalars_add_(&steps, 1.0)
    } else {
        crate::shim::foreach_add_scalar_(&steps, 1.0)
    }
}

/// After a fused AMP step: `steps -= found_inf`, so a step the kernel skipped
/// leaves the counters where they were (torch's `_foreach_sub_`), on device.
pub fn undo_skipped_step(steps: &[Tensor], found_inf: Option<&Tensor>) -> Result<()> {
    let Some(fi) = found_inf else { return Ok(()) };
    let steps = distinct(steps);
    let fis: Vec<&Tensor> = steps.iter().map(|_| fi).collect();
    crate::shim::foreach_add_list_(&steps, &fis, -1.0)
}

/// One optimization algorithm (Adam, SGD, ...).
pub trait Algorithm: Send + 'static {
    fn name(&self) -> &'static str;
    /// Every hyperparameter with its default, under torch's key names.
    fn defaults(&self) -> Hyper;
    fn validate(&self, h: &Hyper) -> Result<()>;
    /// State slot names as torch.optim stores them.
    fn state_names(&self) -> &'static [&'static str];
    /// Slots that are scalars (step counters) rather than parameter-shaped.
    fn scalar_slots(&self) -> &'static [&'static str] {
        &["step"]
    }
    fn has_fused(&self) -> bool {
        false
    }
    fn has_foreach(&self) -> bool {
        true
    }
    fn init_state(&self, p: &Tensor, h: &Hyper, imp: Impl) -> Result<State>;
    fn step(&self, h: &Hyper, b: &mut Bucket, imp: Impl, amp: Amp) -> Result<()>;
}

/// Where torch keeps a parameter's step counter for this implementation.
fn step_device(p: &Tensor, imp: Impl) -> Device {
    if imp == Impl::Fused {
        p.device()
    } else {
        Device::Cpu
    }
}

/// Step counters live where torch keeps them: on the parameter's device for
/// fused kernels, on the CPU otherwise (read without a device sync).
pub fn step_tensor(p: &Tensor, imp: Impl) -> Result<Tensor> {
    let dev = step_device(p, imp);
    Ok(Tensor::f_zeros([], (Kind::Float, dev))?)
}

pub struct Optim<A: Algorithm> {
    algo: A,
    defaults: Hyper,
    groups: Vec<ParamGroup>,
    state: Vec<Vec<Option<State>>>,
    imp: Impl,
    /// Capturable: each group's lr lives in one device tensor per device
    /// (`lr_tensors[group]`), written in place when the lr changes, so a
    /// captured CUDA graph reads the current value.
    capturable: bool,
    lr_tensors: Vec<Vec<(Device, Tensor)>>,
    /// Bumped by every change a captured step cannot see (see
    /// `Optimizer::capture_generation`).
    generation: u64,
}

/// The dtype of a device lr tensor: what the fused kernels read without a
/// conversion (CUDA kernels take a float pointer; the CPU ones read a
/// double, so float64 keeps the scalar path's numerics exactly).
fn lr_kind(d: Device) -> Kind {
    if d == Device::Cpu {
        Kind::Double
    } else {
        Kind::Float
    }
}

impl<A: Algorithm> Optim<A> {
    /// `defaults_override` replaces the algorithm's defaults (the constructor
    /// arguments); each group's own keys then override those.
    pub fn new(
        algo: A,
        defaults_override: Hyper,
        groups: Vec<ParamGroup>,
        imp: Option<Impl>,
    ) -> Result<Self> {
        let who = algo.name();
        let defaults = Hyper::merged(&algo.defaults(), &defaults_override, who)?;
        let imp = match imp {
            None => {
                if algo.has_fused() {
                    Impl::Fused
                } else {
                    Impl::Foreach
                }
            }
            Some(Impl::Fused) if !algo.has_fused() => {
                return Err(Error::Value(format!(
                    "{who}: no fused kernel exists; use 'foreach' or 'reference'"
                )))
            }
            Some(Impl::Foreach) if !algo.has_foreach() => {
                return Err(Error::Value(format!(
                    "{who}: no foreach implementation; use 'reference'"
                )))
            }
            Some(i) => i,
        };
        let mut o = Optim {
            algo,
            defaults,
            groups: Vec::new(),
            state: Vec::new(),
            imp,
            capturable: false,
            lr_tensors: Vec::new(),
            generation: 0,
        };
        if groups.is_empty() || groups.iter().all(|g| g.params.is_empty()) {
            return Err(Error::Value(format!(
                "{who}: optimizer got an empty parameter list"
            )));
        }
        for g in groups {
            o.add_group(g)?;
        }
        Ok(o)
    }

    pub fn algorithm(&self) -> &A {
        &self.algo
    }

    fn add_group(&mut self, g: ParamGroup) -> Result<()> {
        let hyper = Hyper::merged(&self.defaults, &g.hyper, self.algo.name())?;
        self.algo.validate(&hyper)?;
        // A tensor in two groups would be stepped twice: torch rejects it too.
        for p in &g.params {
            for (gi, other) in self.groups.iter().enumerate() {
                if other
                    .params
                    .iter()
                    .any(|q| crate::shim::is_same(&q.handle(), &p.handle()))
                {
                    return Err(Error::Value(format!(
                        "{}: some parameters appear in more than one parameter group (group {gi})",
                        self.algo.name()
                    )));
                }
            }
        }
        self.state.push((0..g.params.len()).map(|_| None).collect());
        self.lr_tensors.push(Vec::new());
        self.generation += 1;
        self.groups.push(ParamGroup {
            params: g.params,
            hyper,
        });
        Ok(())
    }

    /// The per-parameter state of parameter `i` of group `g`, by slot name.
    pub fn param_state(&self, g: usize, i: usize) -> Option<Vec<(&'static str, Tensor)>> {
        let st = self.state.get(g)?.get(i)?.as_ref()?;
        Some(
            self.algo
                .state_names()
                .iter()
                .zip(st.iter())
                .filter_map(|(n, t)| t.as_ref().map(|t| (*n, t.shallow_clone())))
                .collect(),
        )
    }

    /// Group `gi`'s device lr tensor on `d`, created on first use.
    fn lr_tensor(&mut self, gi: usize, d: Device) -> Result<Tensor> {
        if let Some((_, t)) = self.lr_tensors[gi].iter().find(|(dev, _)| *dev == d) {
            return Ok(t.shallow_clone());
        }
        let lr = self.groups[gi].hyper.f("lr")?;
        let t = Tensor::f_full([], lr, (lr_kind(d), d))?;
        self.lr_tensors[gi].push((d, t.shallow_clone()));
        Ok(t)
    }

    /// Writes `lr` into group `gi`'s device tensors (a tiny kernel each, no
    /// host sync, no re-capture).
    fn write_lr(&self, gi: usize, lr: f64) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for (_, t) in &self.lr_tensors[gi] {
            let mut t = t.shallow_clone();
            let _ = t.f_fill_(lr)?;
        }
        Ok(())
    }

    fn run(&mut self, amp: Amp) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let imp = self.imp;
        for gi in 0..self.groups.len() {
            let group = &self.groups[gi];
            // Collect parameters with gradients, creating state on first use.
            let mut keyed: Vec<((Device, Kind), (usize, Tensor))> = Vec::new();
            let mut fresh = Vec::new();
            for (i, p) in group.params.iter().enumerate() {
                let p = &p.handle();
                let Some(g) = grad_of(p) else { continue };
                if self.state[gi][i].is_none() {
                    self.state[gi][i] = Some(self.algo.init_state(p, &group.hyper, imp)?);
                    fresh.push(i);
                }
                keyed.push(((p.device(), p.f_kind()?), (i, g)));
            }
            if imp == Impl::Fused {
                let names = self.algo.state_names();
                if fresh.len() > 1 {
                    share_steps(names, group, &mut self.state[gi], &fresh)?;
                }
                if keyed.len() < group.params.len() {
                    let mut stepping = vec![false; group.params.len()];
                    keyed.iter().for_each(|(_, (i, _))| stepping[*i] = true);
                    if unshare_idle_steps(names, &mut self.state[gi], &stepping)? {
                        // New counter tensors: a captured step holds the old.
                        self.generation += 1;
                    }
                }
            }
            let lr_ts: Vec<(Device, Tensor)> = if self.capturable {
                let devs: Vec<Device> = keyed.iter().map(|((d, _), _)| *d).collect();
                devs.into_iter()
                    .map(|d| Ok((d, self.lr_tensor(gi, d)?)))
                    .collect::<Result<_>>()?
            } else {
                Vec::new()
            };
            let group = &self.groups[gi];
            for (key, members) in group_by(keyed) {
                // Membership by mask: O(n) per bucket, not O(n²).
                let mut member = vec![false; group.params.len()];
                let mut params = Vec::new();
                let mut grads = Vec::new();
                for (i, g) in members {
                    member[i] = true;
                    params.push(group.params[i].handle());
                    grads.push(g);
                }
                let states: Vec<&mut State> = self.state[gi]
                    .iter_mut()
                    .zip(&member)
                    .filter(|(_, m)| **m)
                    .filter_map(|(s, _)| s.as_mut())
                    .collect();
                let mut bucket = Bucket {
                    params,
                    grads,
                    states,
                };
                // The AMP tensors live on the scaler's device; kernels want
                // them on the bucket's (a no-op when they are already there).
                let on_dev = |t: Option<&Tensor>| t.map(|t| t.f_to_device(key.0)).transpose();
                let (gs, fi) = (on_dev(amp.grad_scale)?, on_dev(amp.found_inf)?);
                let amp = Amp {
                    grad_scale: gs.as_ref(),
                    found_inf: fi.as_ref(),
                    lr: lr_ts.iter().find(|(d, _)| *d == key.0).map(|(_, t)| t),
                };
                self.algo.step(&group.hyper, &mut bucket, imp, amp)?;
            }
        }
        Ok(())
    }
}

/// The fused kernels only read the step counters, and parameters of one
/// (device, dtype) bucket that start together count the same steps: one
/// counter per bucket instead of one per parameter saves a `_foreach_add_`
/// over N scalars (N add/copy/empty ops on the CPU) every step. State dicts
/// still get one copy each.
///
/// A counter is shared only within a bucket: the driver bumps each bucket's
/// distinct counters once per step (`bump_steps`), so a counter shared by two
/// buckets (say float32 and bfloat16 parameters of one group) would count
/// every step twice. And it stays shared only while its parameters step
/// together: `unshare_idle_steps` gives a parameter that has no gradient on
/// a step its own copy before its neighbours' counter moves on.
fn share_steps(
    names: &[&str],
    group: &ParamGroup,
    state: &mut [Option<State>],
    members: &[usize],
) -> Result<()> {
    let Some(k) = names.iter().position(|n| *n == "step") else {
        return Ok(());
    };
    let mut firsts: Vec<((Device, Kind), Tensor, f64)> = Vec::new();
    for &i in members {
        let p = &group.params[i].handle();
        let key = (p.device(), p.f_kind()?);
        let Some(Some(t)) = state[i].as_ref().and_then(|s| s.get(k)) else {
            continue;
        };
        let v = t.f_double_value(&[])?;
        match firsts.iter().find(|(kk, _, fv)| *kk == key && *fv == v) {
            Some((_, shared, _)) => {
                if let Some(st) = state[i].as_mut() {
                    st[k] = Some(shared.shallow_clone());
                }
            }
            None => firsts.push((key, t.shallow_clone(), v)),
        }
    }
    Ok(())
}

/// Before a fused step: a parameter that does not step now (no gradient)
/// but shares its step counter with one that does gets a private copy, so
/// its count stays where torch's per-parameter counter would. True when a
/// counter was split. O(n): counters are compared by their storage.
fn unshare_idle_steps(
    names: &[&str],
    state: &mut [Option<State>],
    stepping: &[bool],
) -> Result<bool> {
    let Some(k) = names.iter().position(|n| *n == "step") else {
        return Ok(false);
    };
    let counter = |st: &Option<State>| -> Option<usize> {
        st.as_ref()?.get(k)?.as_ref().map(|t| t.data_ptr() as usize)
    };
    let live: std::collections::HashSet<usize> = state
        .iter()
        .zip(stepping)
        .filter(|(_, on)| **on)
        .filter_map(|(st, _)| counter(st))
        .collect();
    let mut split = false;
    for (st, on) in state.iter_mut().zip(stepping) {
        if *on || !counter(st).is_some_and(|ptr| live.contains(&ptr)) {
            continue;
        }
        if let Some(Some(t)) = st.as_mut().and_then(|s| s.get_mut(k)) {
            *t = deep_copy(t)?;
            split = true;
        }
    }
    Ok(split)
}

impl<A: Algorithm> Optimizer for Optim<A> {
    fn name(&self) -> &str {
        self.algo.name()
    }

    fn step(&mut self) -> Result<()> {
        self.run(Amp::default())
    }

    fn step_amp(&mut self, grad_scale: Option<&Tensor>, found_inf: Option<&Tensor>) -> Result<()> {
        if self.imp != Impl::Fused {
            return Err(Error::Value(format!(
                "{}: only fused optimizers take the AMP scale in the kernel",
                self.algo.name()
            )));
        }
        self.run(Amp {
            grad_scale,
            found_inf,
            lr: None,
        })
    }

    fn implementation(&self) -> Impl {
        self.imp
    }

    fn zero_grad(&mut self) -> Result<()> {
        for g in &self.groups {
            grads_to_none(&g.params)?;
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.groups
            .first()
            .and_then(|g| g.hyper.f("lr").ok())
            .unwrap_or(0.0)
    }

    fn set_lr(&mut self, lr: f64) -> Result<()> {
        for i in 0..self.groups.len() {
            self.set_group_hyper(i, "lr", HValue::F(lr))?;
        }
        Ok(())
    }

    fn num_groups(&self) -> usize {
        self.groups.len()
    }

    fn group_hyper(&self, i: usize) -> Result<Hyper> {
        self.groups.get(i).map(|g| g.hyper.clone()).ok_or_else(|| {
            Error::Value(format!(
                "group index {i} is out of range ({} groups)",
                self.groups.len()
            ))
        })
    }

    fn set_group_hyper(&mut self, i: usize, key: &str, v: HValue) -> Result<()> {
        let n = self.groups.len();
        let who = self.algo.name();
        let g = self.groups.get_mut(i).ok_or_else(|| {
            Error::Value(format!(
                "{who}: group index {i} is out of range ({n} groups)"
            ))
        })?;
        let mut one = Hyper::default();
        one.set(key, v);
        let h = Hyper::merged(&g.hyper, &one, who)?;
        self.algo.validate(&h)?;
        g.hyper = h;
        match (key, v) {
            // The one hyperparameter a captured step reads from a tensor.
            ("lr", HValue::F(lr)) if self.capturable => self.write_lr(i, lr)?,
            ("lr", _) if !self.capturable => {}
            _ => self.generation += 1,
        }
        Ok(())
    }

    fn group_params(&self, i: usize) -> Vec<Tensor> {
        self.groups
            .get(i)
            .map(|g| g.params.iter().map(|p| p.handle()).collect())
            .unwrap_or_default()
    }

    fn add_param_group(&mut self, g: ParamGroup) -> Result<()> {
        self.add_group(g)
    }

    fn state_dict(&self) -> StateDict {
        let mut groups = Vec::new();
        let mut state = Vec::new();
        let mut idx = 0usize;
        for (gi, g) in self.groups.iter().enumerate() {
            let ids: Vec<usize> = (idx..idx + g.params.len()).collect();
            for (i, st) in self.state[gi].iter().enumerate() {
                if let Some(st) = st {
                    let scalars = self.algo.scalar_slots();
                    // Step counters may be shared by a bucket: export copies.
                    let named = self
                        .algo
                        .state_names()
                        .iter()
                        .zip(st.iter())
                        .filter_map(|(n, t)| {
                            let t = t.as_ref()?;
                            let t = if scalars.contains(n) {
                                deep_copy(t).unwrap_or_else(|_| t.shallow_clone())
                            } else {
                                t.shallow_clone()
                            };
                            Some((n.to_string(), t))
                        })
                        .collect();
                    state.push((idx + i, named));
                }
            }
            idx += g.params.len();
            groups.push((g.hyper.clone(), ids));
        }
        StateDict { groups, state }
    }

    fn load_state_dict(&mut self, sd: StateDict) -> Result<()> {
        let who = self.algo.name();
        if sd.groups.len() != self.groups.len() {
            return Err(Error::Value(format!(
                "{who}: state dict has {} parameter groups, the optimizer has {}",
                sd.groups.len(),
                self.groups.len()
            )));
        }
        let mut flat: Vec<(usize, usize)> = Vec::new(); // global id -> (group, index)
        let mut id_of: std::collections::HashMap<usize, (usize, usize)> =
            std::collections::HashMap::new();
        let mut hypers = Vec::new();
        for (gi, ((h, ids), g)) in sd.groups.iter().zip(&self.groups).enumerate() {
            if ids.len() != g.params.len() {
                return Err(Error::Value(format!(
                    "{who}: group {gi} of the state dict has {} parameters, the optimizer's has {}",
                    ids.len(),
                    g.params.len()
                )));
            }
            for (i, id) in ids.iter().enumerate() {
                id_of.insert(*id, (gi, i));
                flat.push((gi, i));
            }
            let merged = Hyper::merged(&g.hyper, h, who)?;
            self.algo.validate(&merged)?;
            hypers.push(merged);
        }
        let names = self.algo.state_names();
        let scalars = self.algo.scalar_slots();
        let mut new_state: Vec<Vec<Option<State>>> = self
            .groups
            .iter()
            .map(|g| (0..g.params.len()).map(|_| None).collect())
            .collect();
        for (id, entries) in &sd.state {
            let &(gi, i) = id_of.get(id).ok_or_else(|| {
                Error::Value(format!(
                    "{who}: state for parameter id {id}, which no group lists"
                ))
            })?;
            let p = &self.groups[gi].params[i].handle();
            let mut st: State = names.iter().map(|_| None).collect();
            for (name, t) in entries {
                let k = names.iter().position(|n| n == name).ok_or_else(|| {
                    Error::Value(format!(
                        "{who}: unknown state '{name}' for parameter {id}; expected {names:?}"
                    ))
                })?;
                let t = if scalars.contains(&name.as_str()) {
                    if t.numel() != 1 {
                        return Err(Error::Shape(format!(
                            "{who}: state '{name}' of parameter {id} must be a scalar, got shape {:?}",
                            t.size()
                        )));
                    }
                    deep_copy(
                        &t.f_to_kind(Kind::Float)?
                            .f_reshape([])?
                            .f_to_device(step_device(p, self.imp))?,
                    )?
                } else {
                    if t.size() != p.size() {
                        return Err(Error::Shape(format!(
                            "{who}: state '{name}' of parameter {id} has shape {:?}, the parameter {:?}",
                            t.size(),
                            p.size()
                        )));
                    }
                    deep_copy(&t.f_to_device(p.device())?.f_to_kind(p.f_kind()?)?)?
                };
                st[k] = Some(t);
            }
            new_state[gi][i] = Some(st);
        }
        if self.imp == Impl::Fused {
            for (gi, g) in self.groups.iter().enumerate() {
                let members: Vec<usize> = (0..g.params.len()).collect();
                share_steps(names, g, &mut new_state[gi], &members)?;
            }
        }
        // Everything validated: only now touch the optimizer.
        for (g, h) in self.groups.iter_mut().zip(hypers) {
            g.hyper = h;
        }
        self.state = new_state;
        for gi in 0..self.groups.len() {
            let lr = self.groups[gi].hyper.f("lr")?;
            self.write_lr(gi, lr)?;
        }
        self.generation += 1;
        Ok(())
    }

    fn set_capturable(&mut self, on: bool) -> Result<()> {
        if on && self.imp != Impl::Fused {
            return Err(Error::Value(format!(
                "{}: only the fused implementation has a capturable path (this one is '{}')",
                self.algo.name(),
                self.imp.name()
            )));
        }
        if on != self.capturable {
            self.capturable = on;
            self.lr_tensors.iter_mut().for_each(Vec::clear);
            self.generation += 1;
        }
        Ok(())
    }

    fn capturable(&self) -> bool {
        self.capturable
    }

    fn capture_generation(&self) -> u64 {
        self.generation
    }
}
