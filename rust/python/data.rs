//! DataLoader class over `crate::data`.

use std::sync::Arc;

use pyo3::prelude::*;

use pyo3::types::{PyDict, PyList, PyTuple};
use tch::Tensor;

use super::args::{count, extract};
use super::errors::{raise, Exc, IntoPyResult};
use super::tensor::{tensor_arg, to_py};
use crate::data::{DataLoader, LoaderOptions};

/// DataLoader(data, batch_size, shuffle=True, seed=42, drop_last=False,
/// names=None): batches over in-memory tensors. `data` is a tensor, a
/// tuple/list of tensors (or numpy arrays) with equal first dimensions, or a
/// dict of named fields. Epoch e's order depends only on (seed, e).
#[pyclass(name = "DataLoader", module = "ferrotorch._core", frozen)]
pub struct PyDataLoader {
    pub inner: Arc<DataLoader>,
    /// The epoch the next `iter(loader)` yields (torch reshuffles per iter).
    next_epoch: std::sync::atomic::AtomicU64,
}

fn fields(data: &Bound<'_, PyAny>) -> PyResult<(Vec<Tensor>, Option<Vec<String>>)> {
    // A data set (ferrotorch.data.Mnist, ...) hands over its resident tensors
    // as a tuple or dict through `__ferrotorch_fields__()`.
    let handed;
    let data = if data.hasattr("__ferrotorch_fields__")? {
        handed = data.call_method0("__ferrotorch_fields__")?;
        &handed
    } else {
        data
    };
    if let Ok(d) = data.downcast::<PyDict>() {
        let mut ts = Vec::new();
        let mut names = Vec::new();
        for (k, v) in d.iter() {
            let name: String = k.extract()?;
            ts.push(tensor_arg(&v, &format!("data['{name}']"))?);
            names.push(name);
        }
        return Ok((ts, Some(names)));
    }
    if data.is_instance_of::<PyTuple>() || data.is_instance_of::<PyList>() {
        let mut ts = Vec::new();
        for (i, v) in data.try_iter()?.enumerate() {
            ts.push(tensor_arg(&v?, &format!("data[{i}]"))?);
        }
        return Ok((ts, None));
    }
    Ok((vec![tensor_arg(data, "data")?], None))
}

#[pymethods]
impl PyDataLoader {
    #[new]
    #[pyo3(signature = (data, batch_size, shuffle = true, seed = None, drop_last = false, device = None, names = None),
           text_signature = "(data, batch_size, shuffle=True, seed=42, drop_last=False, device=None, names=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        data: &Bound<'_, PyAny>,
        batch_size: &Bound<'_, PyAny>,
        shuffle: bool,
        seed: Option<&Bound<'_, PyAny>>,
        drop_last: bool,
        device: Option<&str>,
        names: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        const W: &str = "DataLoader()";
        let batch_size: i64 = extract(batch_size, W, "batch_size", "an integer")?;
        let seed = seed.map_or(Ok(42), |s| count(s, W, "seed"))?;
        let names = match names.filter(|n| !n.is_none()) {
            Some(n) => Some(extract::<Vec<String>>(n, W, "names", "a list of str")?),
            None => None,
        };
        if batch_size <= 0 {
            return Err(raise(
                Exc::Config,
                format!("DataLoader: batch_size must be at least 1, got {batch_size}"),
            ));
        }
        let (ts, dict_names) = fields(data)?;
        let device = super::nn::device_arg(device)?;
        let opts = LoaderOptions {
            batch_size: batch_size as usize,
            shuffle,
            seed,
            drop_last,
            device,
            names: names.or(dict_names),
        };
        Ok(PyDataLoader {
            inner: Arc::new(DataLoader::new(ts, opts).py()?),
            next_epoch: 0.into(),
        })
    }

    /// Batches per epoch, as torch's DataLoader (`num_samples` gives the
    /// sample count).
    fn __len__(&self) -> usize {
        self.inner.num_batches()
    }

    /// Number of samples.
    #[getter]
    fn num_samples(&self) -> usize {
        self.inner.len()
    }

    /// Where batches arrive ("cpu", "cuda:0").
    #[getter]
    fn device(&self) -> String {
        match self.inner.device() {
            tch::Device::Cuda(i) => format!("cuda:{i}"),
            _ => "cpu".into(),
        }
    }

    #[getter]
    fn num_batches(&self) -> usize {
        self.inner.num_batches()
    }

    #[getter]
    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }

    #[getter]
    fn names(&self) -> Vec<String> {
        self.inner.names().to_vec()
    }

    /// This rank's view for data-parallel training: global batches of
    /// `batch_size × world_size` from each epoch's shared order, slice
    /// `rank` of each.
    fn shard(&self, rank: &Bound<'_, PyAny>, world_size: &Bound<'_, PyAny>) -> PyResult<Self> {
        const W: &str = "DataLoader.shard()";
        let rank = count(rank, W, "rank")? as usize;
        let world_size = count(world_size, W, "world_size")? as usize;
        Ok(PyDataLoader {
            inner: Arc::new(self.inner.shard(rank, world_size).py()?),
            next_epoch: self
                .next_epoch
                .load(std::sync::atomic::Ordering::Relaxed)
                .into(),
        })
    }

    /// (rank, world_size) of a shard, else None.
    #[getter]
    fn shard_of(&self) -> Option<(usize, usize)> {
        self.inner.shard_of()
    }

    /// The position of the field called `name` (TagError if unknown).
    fn field_index(&self, name: &str) -> PyResult<usize> {
        self.inner.field_index(name).py()
    }

    /// The batches of epoch `epoch` (reproducible: same epoch, same order).
    fn epoch(&self, epoch: &Bound<'_, PyAny>) -> PyResult<PyEpoch> {
        self.epoch_of(count(epoch, "DataLoader.epoch()", "epoch")?)
    }

    /// Iterates the next epoch: each `iter(loader)` advances the epoch.
    fn __iter__(&self) -> PyResult<PyEpoch> {
        let e = self
            .next_epoch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.epoch_of(e)
    }
}

impl PyDataLoader {
    fn epoch_of(&self, epoch: u64) -> PyResult<PyEpoch> {
        Ok(PyEpoch {
            loader: self.inner.clone(),
            order: crate::tensor::SharedTensor::new(self.inner.order_tensor(epoch).py()?),
            next: 0.into(),
        })
    }
}

/// One epoch's batches; each item is a tuple with one tensor per field.
#[pyclass(name = "Epoch", module = "ferrotorch._core", frozen)]
pub struct PyEpoch {
    loader: Arc<DataLoader>,
    order: crate::tensor::SharedTensor,
    next: std::sync::atomic::AtomicUsize,
}

#[pymethods]
impl PyEpoch {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyObject>> {
        let b = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if b >= self.loader.num_batches() {
            return Ok(None);
        }
        let batch = self.loader.batch(&self.order.handle(), b).py()?;
        let items = batch
            .iter()
            .map(|t| to_py(py, t))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Some(PyTuple::new(py, items)?.into_any().unbind()))
    }

    fn __len__(&self) -> usize {
        self.loader.num_batches()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDataLoader>()?;
    m.add_class::<PyEpoch>()?;
    Ok(())
}
