//! Safe wrappers over rust/shim/cuda_graph.cpp: a CUDA graph with its own
//! memory pool, and the side stream warm-up and capture run on. Without CUDA
//! (or in a build without the CUDA headers) every call is an error naming
//! the device; nothing here panics.

use std::ffi::{c_char, c_int, c_void};

use super::check;
use crate::{Error, Result};

extern "C" {
    fn ft_cuda_graph_supported() -> c_int;
    fn ft_cuda_device_count(out: *mut c_int) -> *mut c_char;
    fn ft_cuda_synchronize(device: c_int) -> *mut c_char;
    fn ft_cuda_side_stream_begin(device: c_int, out: *mut *mut c_void) -> *mut c_char;
    fn ft_cuda_side_stream_end(side: *mut c_void) -> *mut c_char;
    fn ft_cuda_graph_new(device: c_int, out: *mut *mut c_void) -> *mut c_char;
    fn ft_cuda_graph_free(graph: *mut c_void);
    fn ft_cuda_graph_capture_begin(graph: *mut c_void, device: c_int) -> *mut c_char;
    fn ft_cuda_graph_capture_end(graph: *mut c_void) -> *mut c_char;
    fn ft_cuda_graph_replay(graph: *mut c_void) -> *mut c_char;
}

/// True when this build compiled the CUDA graph entry points.
pub fn built_with_cuda_graphs() -> bool {
    // SAFETY: no arguments, no exceptions.
    unsafe { ft_cuda_graph_supported() != 0 }
}

/// CUDA devices visible (0 without CUDA).
pub fn device_count() -> usize {
    let mut n: c_int = 0;
    // SAFETY: valid out-pointer; the shim catches every exception.
    match check("cuda_device_count", unsafe { ft_cuda_device_count(&mut n) }) {
        Ok(()) => n.max(0) as usize,
        Err(_) => 0,
    }
}

fn device_arg(device: usize) -> Result<c_int> {
    c_int::try_from(device)
        .map_err(|_| Error::Device(format!("CUDA graphs: cuda:{device} is not a device index")))
}

/// Device errors from the shim become `Error::Device`.
fn device_err(e: Error) -> Error {
    match e {
        Error::Torch(m) => Error::Device(m),
        other => other,
    }
}

/// Waits for every queued kernel on `cuda:device`.
pub fn synchronize(device: usize) -> Result<()> {
    let d = device_arg(device)?;
    // SAFETY: plain value; the shim catches every exception.
    check("cuda_synchronize", unsafe { ft_cuda_synchronize(d) }).map_err(device_err)
}

/// A side stream made current on this thread until dropped (then waited
/// for, and the previous stream restored). Work queued before it finishes
/// first.
pub struct SideStream {
    ptr: *mut c_void,
}

impl SideStream {
    pub fn begin(device: usize) -> Result<Self> {
        let d = device_arg(device)?;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid out-pointer; the shim catches every exception.
        check("cuda_side_stream", unsafe {
            ft_cuda_side_stream_begin(d, &mut ptr)
        })
        .map_err(device_err)?;
        Ok(SideStream { ptr })
    }
}

impl Drop for SideStream {
    fn drop(&mut self) {
        // SAFETY: allocated by ft_cuda_side_stream_begin, ended once. A
        // failing wait leaves the error to the next CUDA call to report.
        let err = unsafe { ft_cuda_side_stream_end(self.ptr) };
        let _ = check("cuda_side_stream", err);
    }
}

/// One captured CUDA graph (`at::cuda::CUDAGraph`) and its private pool.
pub struct CudaGraph {
    ptr: *mut c_void,
    device: usize,
}

// SAFETY: a CUDAGraph is a handle to driver objects usable from any thread;
// the engine replays one graph at a time under its lock.
unsafe impl Send for CudaGraph {}
unsafe impl Sync for CudaGraph {}

impl CudaGraph {
    /// Captures what `body` queues on the current (side) stream of
    /// `cuda:device`. A failing body still ends the capture (and the graph
    /// is dropped), so the stream is never left capturing.
    pub fn capture(device: usize, body: impl FnOnce() -> Result<()>) -> Result<Self> {
        let d = device_arg(device)?;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid out-pointer.
        check("cuda_graph", unsafe { ft_cuda_graph_new(d, &mut ptr) }).map_err(device_err)?;
        let g = CudaGraph { ptr, device };
        // SAFETY: a live graph.
        check("cuda_graph.capture_begin", unsafe {
            ft_cuda_graph_capture_begin(g.ptr, d)
        })
        .map_err(device_err)?;
        let ran = body();
        // SAFETY: a live graph that is capturing.
        let ended = check("cuda_graph.capture_end", unsafe {
            ft_cuda_graph_capture_end(g.ptr)
        });
        ran?;
        ended.map_err(|e| {
            Error::Device(format!(
                "{e} (an op in the step is not capturable: it synchronises with the host or \
                 allocates outside the graph's pool)"
            ))
        })?;
        Ok(g)
    }

    /// Replays the captured kernels on the current stream.
    pub fn replay(&self) -> Result<()> {
        // SAFETY: a live, instantiated graph.
        check("cuda_graph.replay", unsafe {
            ft_cuda_graph_replay(self.ptr)
        })
        .map_err(device_err)
    }

    pub fn device(&self) -> usize {
        self.device
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: allocated by ft_cuda_graph_new, freed once.
        unsafe { ft_cuda_graph_free(self.ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_cuda_every_call_names_the_device() {
        if device_count() > 0 {
            return; // a GPU host: the CUDA tests cover it
        }
        let e = SideStream::begin(0).err().map(|e| e.to_string());
        let msg = e.unwrap_or_default();
        assert!(msg.contains("cuda:0"), "{msg}");
        let e = CudaGraph::capture(1, || Ok(()))
            .err()
            .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("cuda:1"));
        assert!(synchronize(0).is_err());
    }
}
