//! DataLoader over in-memory tensors: fields share the first dimension,
//! batches are gathered with `index_select` from a per-epoch permutation
//! that depends only on (seed, epoch), so every epoch is reproducible.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::sync::atomic::{AtomicU64, Ordering};
use tch::{Device, Tensor};

use crate::tensor::SharedTensor;
use crate::{Error, Result};

/// A permutation of 0..n drawn from `SmallRng::seed_from_u64(seed)` (floDl's
/// generator), the same for the same (n, seed) everywhere.
pub fn permutation(n: usize, seed: u64) -> Vec<i64> {
    let mut idx: Vec<i64> = (0..n as i64).collect();
    idx.shuffle(&mut SmallRng::seed_from_u64(seed));
    idx
}

/// The next loader's generation id (ids are never reused in a process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub struct DataLoader {
    /// This loader's identity for caches keyed by loader (its address is
    /// not one: a new loader may be allocated where a dropped one lived).
    id: u64,
    fields: Vec<SharedTensor>,
    names: Vec<String>,
    len: usize,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
    device: Device,
    /// CUDA target: fields stay in pinned host memory and each batch is
    /// gathered there, then copied without blocking the host.
    staged: bool,
    /// Data-parallel (rank, world size): see [`DataLoader::shard`].
    shard: Option<(usize, usize)>,
}

/// Options of a DataLoader (floDl's defaults except drop_last, as torch).
#[derive(Clone, Debug)]
pub struct LoaderOptions {
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
    pub drop_last: bool,
    pub device: Device,
    pub names: Option<Vec<String>>,
}

impl DataLoader {
    pub fn new(fields: Vec<Tensor>, opts: LoaderOptions) -> Result<Self> {
        if fields.is_empty() {
            return Err(Error::Value("DataLoader: no tensors given".into()));
        }
        if opts.batch_size == 0 {
            return Err(Error::Value(
                "DataLoader: batch_size must be at least 1, got 0".into(),
            ));
        }
        let mut len = None;
        for (i, t) in fields.iter().enumerate() {
            let size = t.size();
            let Some(&n) = size.first() else {
                return Err(Error::Shape(format!("DataLoader: field {i} is a 0-dim tensor; fields need a first (sample) dimension")));
            };
            match len {
                None => len = Some(n),
                Some(m) if m != n => {
                    return Err(Error::Shape(format!(
                        "DataLoader: field {i} has {n} samples (shape {size:?}) but field 0 has {m}"
                    )))
                }
                _ => {}
            }
        }
        let len = len.unwrap_or(0) as usize;
        if len == 0 {
            return Err(Error::Value("DataLoader: the data set is empty".into()));
        }
        let names = match opts.names {
            Some(n) if n.len() != fields.len() => {
                return Err(Error::Value(format!(
                    "DataLoader: {} names given for {} tensors",
                    n.len(),
                    fields.len()
                )))
            }
            Some(n) => n,
            None => (0..fields.len()).map(|i| i.to_string()).collect(),
        };
        // CPU: fields are used in place (batches are gathered from them).
        // CUDA: fields are staged in pinned host memory; batches cross with
        // non-blocking copies, so loading overlaps with compute.
        let staged = opts.device.is_cuda();
        let fields = fields
            .into_iter()
            .map(|t| {
                let t = t.f_detach()?;
                let t = if staged {
                    t.f_to_device(Device::Cpu)?
                        .f_contiguous()?
                        .f_pin_memory(opts.device)?
                } else {
                    t.f_to_device(opts.device)?
                };
                Ok(SharedTensor::new(t))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DataLoader {
            id: next_id(),
            fields,
            names,
            len,
            batch_size: opts.batch_size,
            shuffle: opts.shuffle,
            seed: opts.seed,
            drop_last: opts.drop_last,
            device: opts.device,
            staged,
            shard: None,
        })
    }

    /// This rank's view for data-parallel training: each epoch's order (the
    /// same on every rank) is cut into global batches of `batch_size ×
    /// world` samples, and rank `rank` takes the `rank`-th slice of each, so
    /// N ranks together see what one process sees with the global batch.
    /// A last, partial global batch is split into near-equal contiguous
    /// slices when `drop_last` is off and it has at least `world` samples;
    /// otherwise it is dropped on every rank alike.
    pub fn shard(&self, rank: usize, world: usize) -> Result<DataLoader> {
        if world == 0 || rank >= world {
            return Err(Error::Value(format!(
                "DataLoader.shard: rank must be in 0..world_size, got rank {rank} of {world}"
            )));
        }
        let out = DataLoader {
            id: next_id(),
            fields: self
                .fields
                .iter()
                .map(|f| SharedTensor::new(f.handle()))
                .collect(),
            names: self.names.clone(),
            len: self.len,
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            seed: self.seed,
            drop_last: self.drop_last,
            device: self.device,
            staged: self.staged,
            shard: Some((rank, world)),
        };
        if out.num_batches() == 0 {
            return Err(Error::Value(format!(
                "DataLoader.shard: {} samples do not fill one global batch of {} x {world} ranks",
                self.len, self.batch_size
            )));
        }
        Ok(out)
    }

    /// (rank, world size) when this loader is a data-parallel shard.
    pub fn shard_of(&self) -> Option<(usize, usize)> {
        self.shard
    }

    /// First sample and sample count of batch `b` (for this rank).
    fn span(&self, b: usize) -> (usize, usize) {
        let bs = self.batch_size;
        match self.shard {
            None => (b * bs, bs.min(self.len - b * bs)),
            Some((r, w)) => {
                let global = bs * w;
                let start = b * global;
                let n = global.min(self.len - start);
                if n == global {
                    (start + r * bs, bs)
                } else {
                    let (base, extra) = (n / w, n % w);
                    (
                        start + r * base + r.min(extra),
                        base + usize::from(r < extra),
                    )
                }
            }
        }
    }

    /// This loader's generation id: unique in the process, for as long as it runs.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn num_fields(&self) -> usize {
        self.fields.len()
    }

    pub fn num_batches(&self) -> usize {
        match self.shard {
            None if self.drop_last => self.len / self.batch_size,
            None => self.len.div_ceil(self.batch_size),
            Some((_, w)) => {
                let global = self.batch_size * w;
                let full = self.len / global;
                let rem = self.len % global;
                full + usize::from(!self.drop_last && rem >= w)
            }
        }
    }

    /// The sample order of an epoch: shuffled with SmallRng(seed + epoch).
    pub fn order(&self, epoch: u64) -> Vec<i64> {
        if self.shuffle {
            permutation(self.len, self.seed.wrapping_add(epoch))
        } else {
            (0..self.len as i64).collect()
        }
    }

    /// The position of the field called `name`.
    pub fn field_index(&self, name: &str) -> Result<usize> {
        self.names.iter().position(|n| n == name).ok_or_else(|| {
            Error::Key(format!(
                "DataLoader has no field '{name}'; fields are {:?}",
                self.names
            ))
        })
    }

    /// The epoch's order as an index tensor where the fields live.
    pub fn order_tensor(&self, epoch: u64) -> Result<Tensor> {
        let t = Tensor::f_from_slice(&self.order(epoch))?;
        Ok(if self.staged {
            t
        } else {
            t.f_to_device(self.device)?
        })
    }

    /// Batch `b` of the epoch whose order is `order` (from `order_tensor`).
    pub fn batch(&self, order: &Tensor, b: usize) -> Result<Vec<Tensor>> {
        if b >= self.num_batches() {
            return Err(Error::Value(format!(
                "batch {b} is out of range ({} batches)",
                self.num_batches()
            )));
        }
        let (start, n) = self.span(b);
        let _guard = tch::no_grad_guard();
        let gathered: Vec<Tensor> = if !self.shuffle {
            self.fields
                .iter()
                .map(|f| Ok(f.handle().f_narrow(0, start as i64, n as i64)?))
                .collect::<Result<_>>()?
        } else {
            let idx = order.f_narrow(0, start as i64, n as i64)?;
            self.fields
                .iter()
                .map(|f| Ok(f.handle().f_index_select(0, &idx)?))
                .collect::<Result<_>>()?
        };
        if !self.staged {
            return Ok(gathered);
        }
        // Staged (CUDA): the batch is gathered in pinned host memory and
        // crosses with a non-blocking copy, so loading overlaps compute.
        gathered
            .into_iter()
            .map(|t| {
                let t = if t.f_is_pinned(self.device)? {
                    t
                } else {
                    t.f_pin_memory(self.device)?
                };
                Ok(t.f_to_device_(self.device, t.f_kind()?, true, false)?)
            })
            .collect()
    }

    /// An epoch's batches; the permutation is computed once.
    pub fn epoch(&self, epoch: u64) -> Result<Epoch<'_>> {
        Ok(Epoch {
            loader: self,
            order: self.order_tensor(epoch)?,
            next: 0,
        })
    }
}

/// Iterator over one epoch's batches, each a `Vec` with one tensor per field.
pub struct Epoch<'a> {
    loader: &'a DataLoader,
    order: Tensor,
    next: usize,
}

impl Epoch<'_> {
    pub fn batch(&self, b: usize) -> Result<Vec<Tensor>> {
        self.loader.batch(&self.order, b)
    }

    pub fn num_batches(&self) -> usize {
        self.loader.num_batches()
    }
}

impl Iterator for Epoch<'_> {
    type Item = Result<Vec<Tensor>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.loader.num_batches() {
            return None;
        }
        self.next += 1;
        Some(self.batch(self.next - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn loader(n: i64, bs: usize, shuffle: bool, drop_last: bool) -> DataLoader {
        let x = Tensor::arange(n, (Kind::Float, Device::Cpu));
        let opts = LoaderOptions {
            batch_size: bs,
            shuffle,
            seed: 42,
            drop_last,
            device: Device::Cpu,
            names: None,
        };
        DataLoader::new(vec![x], opts).expect("loader")
    }

    #[test]
    fn every_sample_once_per_epoch() {
        let l = loader(10, 3, true, false);
        let mut seen: Vec<i64> = Vec::new();
        for b in l.epoch(0).expect("epoch") {
            let b = b.expect("batch");
            seen.extend(
                Vec::<f32>::try_from(&b[0])
                    .expect("vec")
                    .iter()
                    .map(|v| *v as i64),
            );
        }
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn shuffle_reproducible_and_differs_per_epoch() {
        let l = loader(50, 5, true, false);
        assert_eq!(l.order(3), l.order(3));
        assert_ne!(l.order(0), l.order(1));
        assert_ne!(l.order(0), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn drop_last_both_ways() {
        assert_eq!(loader(10, 3, false, true).num_batches(), 3);
        assert_eq!(loader(10, 3, false, false).num_batches(), 4);
        let l = loader(10, 3, false, false);
        let last = l
            .epoch(0)
            .expect("epoch")
            .last()
            .expect("some")
            .expect("batch");
        assert_eq!(last[0].size(), vec![1]);
    }

    #[test]
    fn shards_cut_global_batches_and_cover_them() {
        let l = loader(22, 3, true, false);
        let shards: Vec<DataLoader> = (0..2).map(|r| l.shard(r, 2).expect("shard")).collect();
        // 22 = 3 full global batches of 6, then 4 split 2 + 2.
        assert_eq!(shards[0].num_batches(), 4);
        let mut seen: Vec<i64> = Vec::new();
        for b in 0..4 {
            let mut global: Vec<i64> = Vec::new();
            for s in &shards {
                let order = s.order_tensor(1).expect("order");
                let t = &s.batch(&order, b).expect("batch")[0];
                global.extend(
                    Vec::<f32>::try_from(t)
                        .expect("vec")
                        .iter()
                        .map(|v| *v as i64),
                );
            }
            // the ranks' slices, in rank order, are the one-process global batch
            let order = l.order(1);
            let lo = b * 6;
            let want: Vec<i64> = order[lo..(lo + 6).min(22)].to_vec();
            assert_eq!(global, want);
            seen.extend(global);
        }
        seen.sort();
        assert_eq!(seen, (0..22).collect::<Vec<_>>());
        assert!(l.shard(2, 2).is_err());
    }

    #[test]
    fn mismatched_fields_rejected() {
        let opts = LoaderOptions {
            batch_size: 2,
            shuffle: false,
            seed: 0,
            drop_last: false,
            device: Device::Cpu,
            names: None,
        };
        let a = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([5], (Kind::Float, Device::Cpu));
        let err = DataLoader::new(vec![a, b], opts).err().expect("error");
        assert!(err.to_string().contains("field 1 has 5 samples"), "{err}");
    }
}
