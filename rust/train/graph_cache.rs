//! CUDA graph mode's decisions, apart from CUDA: which shape warms up,
//! captures or replays, and when every graph goes stale. Pure logic, unit
//! tested with a mock capturer.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use tch::{Device, Tensor};

use crate::{Error, Result};

/// Eager steps of a shape before it is captured: torch warms up 3
/// iterations on a side stream (lazy state, cuBLAS workspaces, AccumulateGrad
/// streams) before `torch.cuda.graph`.
pub const WARMUP_STEPS: u64 = 3;

/// `Trainer(cuda_graph=...)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GraphMode {
    /// Never capture.
    #[default]
    Off,
    /// Capture on CUDA when the step allows it; else eager (one warning
    /// naming the blocker on CUDA; silent on the CPU).
    Auto,
    /// Capture or raise.
    On,
    /// The capture path's logic on any device, for tests: "capture" records
    /// nothing and each "replay" runs the captured step's code eagerly over
    /// the static buffers, so it can be compared with eager mode on the CPU.
    Emulate,
}

impl GraphMode {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "off" => Ok(GraphMode::Off),
            "auto" => Ok(GraphMode::Auto),
            "on" => Ok(GraphMode::On),
            "_emulate" => Ok(GraphMode::Emulate),
            _ => Err(Error::Value(format!(
                "cuda_graph must be 'auto', True or False, got '{name}'"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GraphMode::Off => "off",
            GraphMode::Auto => "auto",
            GraphMode::On => "on",
            GraphMode::Emulate => "_emulate",
        }
    }
}

/// The shapes and dtypes of one batch (inputs, then target): one graph each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShapeKey(Vec<(Vec<i64>, String)>);

impl ShapeKey {
    pub fn of(tensors: &[&Tensor]) -> Self {
        ShapeKey(
            tensors
                .iter()
                .map(|t| (t.size(), format!("{:?}", t.f_kind().ok())))
                .collect(),
        )
    }
}

/// Everything a captured step baked in: parameter storage, dtype, device
/// and trainability, the optimizer's capture generation and the trainer's
/// own (bumped by load_state and moves). A different value means every
/// graph is stale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CaptureKey(pub u64);

impl CaptureKey {
    pub fn of(params: &[Tensor], optimizer_generation: u64, trainer_generation: u64) -> Self {
        let mut h = DefaultHasher::new();
        for p in params {
            (p.data_ptr() as usize).hash(&mut h);
            p.size().hash(&mut h);
            format!("{:?}", p.f_kind().ok()).hash(&mut h);
            device_code(p.device()).hash(&mut h);
            p.requires_grad().hash(&mut h);
        }
        optimizer_generation.hash(&mut h);
        trainer_generation.hash(&mut h);
        CaptureKey(h.finish())
    }
}

fn device_code(d: Device) -> i64 {
    match d {
        Device::Cpu => -1,
        Device::Cuda(i) => i as i64,
        Device::Mps => -2,
        Device::Vulkan => -3,
    }
}

/// What the next step of a shape does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// An eager step on the side stream (the shape is not yet warm).
    WarmUp,
    /// Capture now, then replay.
    Capture,
    /// Copy the batch into the static buffers and replay.
    Replay,
}

/// Per-shape warm-up counts and captured graphs, valid for one key.
pub struct GraphCache<G> {
    key: Option<CaptureKey>,
    warm: HashMap<ShapeKey, u64>,
    graphs: HashMap<ShapeKey, G>,
    pub captures: u64,
    pub replays: u64,
    /// Times a key change dropped the graphs (re-capture follows).
    pub invalidations: u64,
}

impl<G> Default for GraphCache<G> {
    fn default() -> Self {
        GraphCache {
            key: None,
            warm: HashMap::new(),
            graphs: HashMap::new(),
            captures: 0,
            replays: 0,
            invalidations: 0,
        }
    }
}

impl<G> GraphCache<G> {
    /// The plan for a batch of `shape` under `key`; a new key first drops
    /// every graph and warm-up count.
    pub fn plan(&mut self, key: CaptureKey, shape: &ShapeKey) -> Plan {
        if self.key != Some(key) {
            if !self.graphs.is_empty() {
                self.invalidations += 1;
            }
            self.graphs.clear();
            self.warm.clear();
            self.key = Some(key);
        }
        if self.graphs.contains_key(shape) {
            Plan::Replay
        } else if self.warm.get(shape).copied().unwrap_or(0) >= WARMUP_STEPS {
            Plan::Capture
        } else {
            Plan::WarmUp
        }
    }

    /// Counts one eager warm-up step of `shape`.
    pub fn warmed(&mut self, shape: &ShapeKey) {
        *self.warm.entry(shape.clone()).or_default() += 1;
    }

    pub fn insert(&mut self, shape: ShapeKey, g: G) {
        self.captures += 1;
        self.graphs.insert(shape, g);
    }

    pub fn get(&self, shape: &ShapeKey) -> Option<&G> {
        self.graphs.get(shape)
    }

    /// Drops every graph (the next steps warm up and capture again).
    pub fn clear(&mut self) {
        self.key = None;
        self.graphs.clear();
        self.warm.clear();
    }

    /// Graphs held (one per shape).
    pub fn count(&self) -> usize {
        self.graphs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// Stands in for a captured graph: counts its replays.
    #[derive(Default)]
    struct MockGraph {
        replays: std::cell::Cell<u64>,
    }

    /// Drives the cache as the engine does, with a mock "capture".
    fn run(cache: &mut GraphCache<MockGraph>, key: CaptureKey, shape: &ShapeKey) -> Plan {
        let plan = cache.plan(key, shape);
        match plan {
            Plan::WarmUp => cache.warmed(shape),
            Plan::Capture => cache.insert(shape.clone(), MockGraph::default()),
            Plan::Replay => {}
        }
        if plan != Plan::WarmUp {
            let g = cache.get(shape).expect("captured");
            g.replays.set(g.replays.get() + 1);
            cache.replays += 1;
        }
        plan
    }

    fn shape(b: i64) -> ShapeKey {
        let x = Tensor::zeros([b, 4], (Kind::Float, Device::Cpu));
        let y = Tensor::zeros([b, 2], (Kind::Float, Device::Cpu));
        ShapeKey::of(&[&x, &y])
    }

    #[test]
    fn warms_up_captures_once_then_replays() {
        let mut c = GraphCache::default();
        let (k, s) = (CaptureKey(1), shape(8));
        let plans: Vec<Plan> = (0..6).map(|_| run(&mut c, k, &s)).collect();
        assert_eq!(
            plans,
            [
                Plan::WarmUp,
                Plan::WarmUp,
                Plan::WarmUp,
                Plan::Capture,
                Plan::Replay,
                Plan::Replay
            ]
        );
        assert_eq!((c.captures, c.replays, c.count()), (1, 3, 1));
        assert_eq!(c.get(&s).map(|g| g.replays.get()), Some(3));
    }

    #[test]
    fn a_short_last_batch_gets_its_own_graph_and_keeps_the_main_one() {
        let mut c = GraphCache::default();
        let (k, full, short) = (CaptureKey(7), shape(8), shape(3));
        for _ in 0..4 {
            run(&mut c, k, &full);
        }
        // Each epoch ends with one short batch: it warms up over 3 epochs.
        for epoch in 0..5 {
            assert_eq!(run(&mut c, k, &full), Plan::Replay, "epoch {epoch}");
            let p = run(&mut c, k, &short);
            assert_eq!(p == Plan::WarmUp, epoch < 3, "epoch {epoch}: {p:?}");
        }
        assert_eq!((c.captures, c.count(), c.invalidations), (2, 2, 0));
    }

    #[test]
    fn a_new_key_drops_every_graph_and_recaptures() {
        let mut c = GraphCache::default();
        let s = shape(8);
        for _ in 0..5 {
            run(&mut c, CaptureKey(1), &s);
        }
        assert_eq!(run(&mut c, CaptureKey(2), &s), Plan::WarmUp);
        assert_eq!((c.count(), c.invalidations), (0, 1));
        for _ in 0..2 {
            run(&mut c, CaptureKey(2), &s);
        }
        assert_eq!(run(&mut c, CaptureKey(2), &s), Plan::Capture);
        assert_eq!(c.captures, 2);
        c.clear();
        assert_eq!(run(&mut c, CaptureKey(2), &s), Plan::WarmUp);
    }

    #[test]
    fn the_key_follows_storage_dtype_trainability_and_generations() {
        let p = Tensor::zeros([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let base = CaptureKey::of(&[p.shallow_clone()], 0, 0);
        assert_eq!(base, CaptureKey::of(&[p.shallow_clone()], 0, 0));
        let frozen = p.detach();
        assert_ne!(base, CaptureKey::of(&[frozen], 0, 0), "freeze");
        let moved = p.to_kind(Kind::Double);
        assert_ne!(base, CaptureKey::of(&[moved], 0, 0), "dtype/storage");
        assert_ne!(
            base,
            CaptureKey::of(&[p.shallow_clone()], 1, 0),
            "optimizer"
        );
        assert_ne!(base, CaptureKey::of(&[p.shallow_clone()], 0, 1), "trainer");
    }

    #[test]
    fn mode_names() {
        for m in [
            GraphMode::Off,
            GraphMode::Auto,
            GraphMode::On,
            GraphMode::Emulate,
        ] {
            assert_eq!(GraphMode::from_name(m.name()).ok(), Some(m));
        }
        assert!(GraphMode::from_name("yes").is_err());
    }
}
