//! A run over a loader: from the engine's own position (epoch, batch) it
//! gathers each batch from the epoch's order and steps it, until the
//! epoch's data runs out or a limit is hit (the GIL comes back between
//! runs, for reports, checkpoints and Ctrl-C).

use tch::Tensor;

use super::engine::Engine;
use super::loss_fn::Target;
use super::position::{StepReport, UpdateReport};
use super::update::lock;
use crate::data::DataLoader;
use crate::tensor::SharedTensor;
use crate::{Error, Result};

/// Where a run of batches over a loader stops (besides the epoch's end).
#[derive(Clone, Debug, Default)]
pub struct RunLimits {
    /// Batches at most in this call (the GIL comes back between calls).
    pub max_batches: usize,
    /// Stop once this many optimizer steps have been taken in total.
    pub until_step: Option<u64>,
    /// Stop right after any step whose number is a multiple of one of these
    /// (where `log_every`/`checkpoint_every` have work to do).
    pub every: Vec<u64>,
}

impl RunLimits {
    fn stops_after(&self, step: u64) -> bool {
        self.until_step.is_some_and(|u| step >= u)
            || self.every.iter().any(|&e| e > 0 && step % e == 0)
    }
}

/// The outcome of [`Engine::run_loader`].
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub updates: Vec<UpdateReport>,
    pub batches: usize,
    /// Every batch of the epoch has been consumed (call `end_epoch`).
    pub epoch_done: bool,
}

/// Which epoch order the engine holds: the loader's identity (its
/// generation id, never its address: a new loader may be allocated where a
/// dropped one lived) and the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderKey {
    loader: u64,
    epoch: u64,
}

impl OrderKey {
    pub fn of(loader: &DataLoader, epoch: u64) -> Self {
        OrderKey {
            loader: loader.id(),
            epoch,
        }
    }
}

impl Engine {
    fn epoch_order(&self, loader: &DataLoader, epoch: u64) -> Result<Tensor> {
        let key = OrderKey::of(loader, epoch);
        let mut cache = lock(&self.order, "trainer")?;
        if let Some((k, t)) = cache.as_ref() {
            if *k == key {
                return Ok(t.handle());
            }
        }
        let t = loader.order_tensor(epoch)?;
        *cache = Some((key, SharedTensor::new(t.shallow_clone())));
        Ok(t)
    }

    /// Trains on `loader` from the current position (epoch, batch) until
    /// the epoch's batches are consumed or a limit is hit. Fields are
    /// (inputs..., target).
    pub fn run_loader(&self, loader: &DataLoader, limits: &RunLimits) -> Result<RunReport> {
        if loader.num_fields() < 2 {
            return Err(Error::Value(format!(
                "run over a loader: the loader must yield (input, ..., target), it has {} field(s)",
                loader.num_fields()
            )));
        }
        self.run_batches(loader, limits, |mut batch| {
            let y = batch
                .pop()
                .ok_or_else(|| Error::Value("empty batch".into()))?;
            Ok(self.step_lazy(&batch, &Target::Tensor(y), true)?.1)
        })
    }

    /// [`Engine::run_loader`] for a model the caller runs itself (see
    /// [`Engine::model_step_lazy`]): `forward` gets each batch's fields.
    pub fn run_loader_with<O>(
        &self,
        loader: &DataLoader,
        limits: &RunLimits,
        forward: impl Fn(Vec<Tensor>) -> Result<O>,
        loss: impl Fn(O) -> Result<Tensor>,
    ) -> Result<RunReport> {
        self.run_batches(loader, limits, |batch| {
            Ok(self.model_step_lazy(|| forward(batch), &loss, true)?.1)
        })
    }

    /// The loop of a run over `loader`: `step` trains one batch.
    fn run_batches(
        &self,
        loader: &DataLoader,
        limits: &RunLimits,
        mut step: impl FnMut(Vec<Tensor>) -> Result<StepReport>,
    ) -> Result<RunReport> {
        self.model.set_training(true)?;
        let n = loader.num_batches() as u64;
        let epoch = self.position()?.epoch;
        let order = self.epoch_order(loader, epoch)?;
        let mut out = RunReport::default();
        loop {
            let b = self.position()?.batch;
            if b >= n {
                out.epoch_done = true;
                break;
            }
            if out.batches >= limits.max_batches {
                break;
            }
            let r = step(loader.batch(&order, b as usize)?)?;
            out.batches += 1;
            if r.update.is_some_and(|u| limits.stops_after(u.step)) {
                break;
            }
        }
        // With batched reads: one transfer for the whole run's losses.
        out.updates = self.take_updates()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::LoaderOptions;
    use tch::{Device, Kind};

    fn loader(seed: u64) -> DataLoader {
        let x = Tensor::arange(64, (Kind::Float, Device::Cpu));
        let opts = LoaderOptions {
            batch_size: 8,
            shuffle: true,
            seed,
            drop_last: false,
            device: Device::Cpu,
            names: None,
        };
        DataLoader::new(vec![x], opts).expect("loader")
    }

    #[test]
    fn a_loader_where_a_dropped_one_lived_has_its_own_order_key() {
        // The allocator hands a freed block of the same size straight back,
        // so these boxes share an address; their keys must still differ.
        let mut keys = Vec::new();
        for seed in [1, 2, 3] {
            let l = Box::new(loader(seed));
            keys.push(OrderKey::of(&l, 0));
        }
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[1], keys[2]);
        assert_ne!(keys[0], keys[2]);
        // The same loader keeps its key; another epoch is another key.
        let l = loader(1);
        assert_eq!(OrderKey::of(&l, 3), OrderKey::of(&l, 3));
        assert_ne!(OrderKey::of(&l, 3), OrderKey::of(&l, 4));
        // A shard is a loader of its own.
        let s = l.shard(0, 2).expect("shard");
        assert_ne!(OrderKey::of(&l, 0), OrderKey::of(&s, 0));
    }
}
