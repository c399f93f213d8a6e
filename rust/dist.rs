//! Data-parallel training over a torch.distributed process group (c10d:
//! gloo on CPU, NCCL on GPU), which Python creates (torchrun) and the engine
//! uses by name, with the GIL released. No communication layer of our own.

use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use crate::shim::dist::RawGroup;
use crate::tensor::group_by;
use crate::Result;

/// Elements per all-reduce bucket: large enough to amortise a collective's
/// latency, small enough not to double peak memory for big models.
const BUCKET_ELEMS: i64 = 1 << 24;

/// A torch.distributed group, known by the name c10d registered it under.
/// It is looked up for each collective rather than held: torch owns the
/// group's lifetime (destroy_process_group, interpreter exit), and a
/// reference kept here would outlive it.
pub struct ProcessGroup {
    name: String,
    rank: usize,
    size: usize,
}

impl ProcessGroup {
    /// The group torch.distributed registered under `name` (e.g. the
    /// default group's `group_name`).
    pub fn resolve(name: &str) -> Result<Arc<Self>> {
        let raw = RawGroup::resolve(name)?;
        Ok(Arc::new(ProcessGroup {
            name: name.to_string(),
            rank: raw.rank,
            size: raw.size,
        }))
    }

    fn raw(&self) -> Result<RawGroup> {
        RawGroup::resolve(&self.name)
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn all_reduce_sum_(&self, t: &Tensor) -> Result<()> {
        self.raw()?.all_reduce_sum_(t)
    }

    pub fn broadcast_(&self, t: &Tensor, root: usize) -> Result<()> {
        self.raw()?.broadcast_(t, root)
    }

    /// Every tensor replaced by its mean over the ranks, in place: tensors
    /// of one (device, dtype) are flattened into buckets, one collective
    /// per bucket (coalesced), then copied back.
    pub fn all_reduce_mean_(&self, tensors: &[Tensor]) -> Result<()> {
        let n = self.size() as f64;
        let raw = self.raw()?;
        let keyed = tensors
            .iter()
            .map(|t| Ok(((t.device(), t.f_kind()?), t)))
            .collect::<Result<Vec<_>>>()?;
        for (_, group) in group_by(keyed) {
            let mut start = 0;
            while start < group.len() {
                let mut end = start;
                let mut elems = 0;
                while end < group.len()
                    && (end == start || elems + group[end].numel() as i64 <= BUCKET_ELEMS)
                {
                    elems += group[end].numel() as i64;
                    end += 1;
                }
                let part = &group[start..end];
                let flat: Vec<Tensor> = part
                    .iter()
                    .map(|t| t.f_reshape([-1]))
                    .collect::<std::result::Result<_, _>>()?;
                let bucket = Tensor::f_cat(&flat, 0)?;
                raw.all_reduce_sum_(&bucket)?;
                let bucket = bucket.f_div_scalar(n)?;
                let mut off = 0;
                for t in part {
                    let k = t.numel() as i64;
                    let mut dst = t.shallow_clone();
                    dst.f_copy_(&bucket.f_narrow(0, off, k)?.f_view(t.size().as_slice())?)?;
                    off += k;
                }
                start = end;
            }
        }
        Ok(())
    }

    /// Sums small host values across ranks (one collective, on `device`:
    /// NCCL only reduces CUDA tensors).
    pub fn sum_values(&self, values: &[f64], device: Device) -> Result<Vec<f64>> {
        let t = Tensor::f_from_slice(values)?
            .f_to_kind(Kind::Double)?
            .f_to_device(device)?;
        self.raw()?.all_reduce_sum_(&t)?;
        Ok(Vec::<f64>::try_from(&t.f_to_device(Device::Cpu)?)?)
    }
}
