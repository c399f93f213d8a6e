//! Observation classes for `Graph`: `Reduce`, `Trend`, `TrendGroup`,
//! `Profile`, and argument helpers for the Graph methods in exec.rs.

use pyo3::prelude::*;

use pyo3::types::{PyDict, PyList, PyString};

use crate::graph::{Profile, Reduce, Trend, TrendGroup};
use crate::python::args::{count, extract};
use crate::python::errors::{raise, Exc};

/// How `Graph.collect_with` reduces a non-scalar tagged output.
#[pyclass(name = "Reduce", module = "ferrotorch._core", frozen, eq, eq_int)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PyReduce {
    #[pyo3(name = "MEAN")]
    Mean,
    #[pyo3(name = "SUM")]
    Sum,
    #[pyo3(name = "MAX")]
    Max,
    #[pyo3(name = "MIN")]
    Min,
    /// L2 norm over all elements.
    #[pyo3(name = "NORM")]
    Norm,
}

impl From<PyReduce> for Reduce {
    fn from(r: PyReduce) -> Self {
        match r {
            PyReduce::Mean => Reduce::Mean,
            PyReduce::Sum => Reduce::Sum,
            PyReduce::Max => Reduce::Max,
            PyReduce::Min => Reduce::Min,
            PyReduce::Norm => Reduce::Norm,
        }
    }
}

/// Tags (or paths): None -> [], a str -> [it], else a sequence of str.
pub fn tags_arg(ob: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Vec<String>> {
    let Some(ob) = ob else { return Ok(Vec::new()) };
    if ob.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(s) = ob.downcast::<PyString>() {
        return Ok(vec![s.extract::<String>()?]);
    }
    let bad = || {
        raise(
            Exc::InputType,
            format!(
                "{what}: expected a tag name or a list of tag names, got {}",
                ob.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ),
        )
    };
    ob.try_iter()
        .map_err(|_| bad())?
        .map(|t| t.and_then(|t| t.extract::<String>()).map_err(|_| bad()))
        .collect()
}

/// A float or a sequence of floats.
pub fn values_arg(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f64>> {
    if let Ok(v) = ob.extract::<f64>() {
        return Ok(vec![v]);
    }
    ob.extract::<Vec<f64>>().map_err(|_| {
        raise(
            Exc::InputType,
            format!("{what}: expected a number or a sequence of numbers"),
        )
    })
}

/// A metric's epoch history (one mean per flush) with floDl's queries.
#[pyclass(name = "Trend", module = "ferrotorch._core", frozen)]
pub struct PyTrend {
    pub inner: Trend,
}

#[pymethods]
impl PyTrend {
    /// Trend(values): a trend over any list of numbers.
    #[new]
    fn new(values: &Bound<'_, PyAny>) -> PyResult<Self> {
        let values = extract(values, "Trend()", "values", "a list of numbers")?;
        Ok(PyTrend {
            inner: Trend::new(values),
        })
    }

    fn values(&self) -> Vec<f64> {
        self.inner.values().to_vec()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The last n values (all of them when n exceeds the length).
    fn last(&self, n: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
        let n = count(n, "Trend.last()", "n")? as usize;
        Ok(self.inner.last(n).to_vec())
    }

    /// The most recent value, 0.0 when empty.
    fn latest(&self) -> f64 {
        self.inner.latest()
    }

    /// The mean, 0.0 when empty.
    fn mean(&self) -> f64 {
        self.inner.mean()
    }

    /// The minimum, +inf when empty.
    fn min(&self) -> f64 {
        self.inner.min()
    }

    /// The maximum, -inf when empty.
    fn max(&self) -> f64 {
        self.inner.max()
    }

    /// OLS slope over the last `window` values (0 = all); 0 below 2 points.
    #[pyo3(signature = (window = None), text_signature = "($self, window=0)")]
    fn slope(&self, window: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
        let window = window.map_or(Ok(0), |w| count(w, "Trend.slope()", "window"))? as usize;
        Ok(self.inner.slope(window))
    }

    /// slope(window) < 0.
    #[pyo3(signature = (window = None), text_signature = "($self, window=0)")]
    fn improving(&self, window: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let window = window.map_or(Ok(0), |w| count(w, "Trend.improving()", "window"))? as usize;
        Ok(self.inner.improving(window))
    }

    /// |slope(window)| < tol.
    fn stalled(&self, window: &Bound<'_, PyAny>, tol: f64) -> PyResult<bool> {
        let window = count(window, "Trend.stalled()", "window")? as usize;
        Ok(self.inner.stalled(window, tol))
    }

    /// Population variance of the window < tol (False below 2 points).
    fn converged(&self, window: &Bound<'_, PyAny>, tol: f64) -> PyResult<bool> {
        let window = count(window, "Trend.converged()", "window")? as usize;
        Ok(self.inner.converged(window, tol))
    }

    fn __repr__(&self) -> String {
        format!("Trend({:?})", self.inner.values())
    }
}

/// Several trends queried together; the all_* forms are False when empty.
#[pyclass(name = "TrendGroup", module = "ferrotorch._core", frozen)]
pub struct PyTrendGroup {
    pub inner: TrendGroup,
}

#[pymethods]
impl PyTrendGroup {
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    fn __getitem__(&self, i: isize) -> PyResult<PyTrend> {
        let n = self.inner.len() as isize;
        let k = if i < 0 { i + n } else { i };
        if k < 0 || k >= n {
            return Err(raise(
                Exc::OutOfRange,
                format!("TrendGroup index {i} out of range for {n} trends"),
            ));
        }
        Ok(PyTrend {
            inner: self.inner.0[k as usize].clone(),
        })
    }

    #[pyo3(signature = (window = None), text_signature = "($self, window=0)")]
    fn all_improving(&self, window: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let window =
            window.map_or(Ok(0), |w| count(w, "TrendGroup.all_improving()", "window"))? as usize;
        Ok(self.inner.all_improving(window))
    }

    #[pyo3(signature = (window = None), text_signature = "($self, window=0)")]
    fn any_improving(&self, window: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let window =
            window.map_or(Ok(0), |w| count(w, "TrendGroup.any_improving()", "window"))? as usize;
        Ok(self.inner.any_improving(window))
    }

    fn all_stalled(&self, window: &Bound<'_, PyAny>, tol: f64) -> PyResult<bool> {
        let window = count(window, "TrendGroup.all_stalled()", "window")? as usize;
        Ok(self.inner.all_stalled(window, tol))
    }

    fn any_stalled(&self, window: &Bound<'_, PyAny>, tol: f64) -> PyResult<bool> {
        let window = count(window, "TrendGroup.any_stalled()", "window")? as usize;
        Ok(self.inner.any_stalled(window, tol))
    }

    fn all_converged(&self, window: &Bound<'_, PyAny>, tol: f64) -> PyResult<bool> {
        let window = count(window, "TrendGroup.all_converged()", "window")? as usize;
        Ok(self.inner.all_converged(window, tol))
    }

    fn any_converged(&self, window: &Bound<'_, PyAny>, tol: f64) -> PyResult<bool> {
        let window = count(window, "TrendGroup.any_converged()", "window")? as usize;
        Ok(self.inner.any_converged(window, tol))
    }

    /// The mean of the slopes (0.0 when empty).
    #[pyo3(signature = (window = None), text_signature = "($self, window=0)")]
    fn mean_slope(&self, window: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
        let window =
            window.map_or(Ok(0), |w| count(w, "TrendGroup.mean_slope()", "window"))? as usize;
        Ok(self.inner.mean_slope(window))
    }

    #[pyo3(signature = (window = None), text_signature = "($self, window=0)")]
    fn slopes(&self, window: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<f64>> {
        let window = window.map_or(Ok(0), |w| count(w, "TrendGroup.slopes()", "window"))? as usize;
        Ok(self.inner.slopes(window))
    }

    fn __repr__(&self) -> String {
        let vs: Vec<String> = self
            .inner
            .0
            .iter()
            .map(|t| format!("{:?}", t.values()))
            .collect();
        format!("TrendGroup([{}])", vs.join(", "))
    }
}

/// Times of the last profiled forward (seconds).
#[pyclass(name = "Profile", module = "ferrotorch._core", frozen)]
pub struct PyProfile {
    pub inner: Profile,
}

#[pymethods]
impl PyProfile {
    /// Seconds for the whole forward.
    #[getter]
    fn total(&self) -> f64 {
        self.inner.total
    }

    /// One dict per node in execution order: id, tag ("" when untagged),
    /// seconds, level.
    #[getter]
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for n in &self.inner.nodes {
            let d = PyDict::new(py);
            d.set_item("id", &n.id)?;
            d.set_item("tag", &n.tag)?;
            d.set_item("seconds", n.duration)?;
            d.set_item("level", n.level)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// One dict per topological level: index, wall_clock, sum_nodes
    /// (seconds) and num_nodes.
    #[getter]
    fn levels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for l in &self.inner.levels {
            let d = PyDict::new(py);
            d.set_item("index", l.index)?;
            d.set_item("wall_clock", l.wall_clock)?;
            d.set_item("sum_nodes", l.sum_nodes)?;
            d.set_item("num_nodes", l.num_nodes)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Seconds of the node whose first tag is `tag`, or None.
    fn timing(&self, tag: &str) -> Option<f64> {
        self.inner.timing(tag)
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Profile(total={:.6}s, {} levels, {} nodes)",
            self.inner.total,
            self.inner.levels.len(),
            self.inner.nodes.len()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyReduce>()?;
    m.add_class::<PyTrend>()?;
    m.add_class::<PyTrendGroup>()?;
    m.add_class::<PyProfile>()?;
    Ok(())
}
