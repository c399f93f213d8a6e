//! Safe wrappers over rust/shim/dist.cpp: a c10d process group looked up by
//! the name torch.distributed registered it under, and two collectives.

use std::ffi::{c_char, c_int, c_void, CString};

use tch::Tensor;

use super::{check, Handle};
use crate::{Error, Result};

extern "C" {
    fn ft_pg_resolve(
        name: *const c_char,
        out: *mut *mut c_void,
        rank: *mut c_int,
        size: *mut c_int,
    ) -> *mut c_char;
    fn ft_pg_free(pg: *mut c_void);
    fn ft_pg_allreduce_sum(pg: *mut c_void, t: Handle) -> *mut c_char;
    fn ft_pg_broadcast(pg: *mut c_void, t: Handle, root: c_int) -> *mut c_char;
}

/// An owned reference to a c10d `ProcessGroup` (freed on drop).
pub struct RawGroup {
    ptr: *mut c_void,
    pub rank: usize,
    pub size: usize,
}

// SAFETY: c10d process groups are made to be used from any thread; the
// engine issues one collective at a time per group.
unsafe impl Send for RawGroup {}
unsafe impl Sync for RawGroup {}

impl RawGroup {
    pub fn resolve(name: &str) -> Result<Self> {
        let c = CString::new(name)
            .map_err(|_| Error::Value(format!("process group name {name:?} has a NUL byte")))?;
        let (mut ptr, mut rank, mut size) = (std::ptr::null_mut(), 0, 0);
        // SAFETY: valid out-pointers; the shim catches every C++ exception.
        check("resolve_process_group", unsafe {
            ft_pg_resolve(c.as_ptr(), &mut ptr, &mut rank, &mut size)
        })?;
        Ok(RawGroup {
            ptr,
            rank: rank.max(0) as usize,
            size: size.max(1) as usize,
        })
    }

    /// `t` summed over the group, in place (blocks until done).
    pub fn all_reduce_sum_(&self, t: &Tensor) -> Result<()> {
        // SAFETY: a live group and tensor.
        check("all_reduce", unsafe {
            ft_pg_allreduce_sum(self.ptr, t.as_ptr() as Handle)
        })
    }

    /// `t` replaced by rank `root`'s, in place (blocks until done).
    pub fn broadcast_(&self, t: &Tensor, root: usize) -> Result<()> {
        // SAFETY: a live group and tensor.
        check("broadcast", unsafe {
            ft_pg_broadcast(self.ptr, t.as_ptr() as Handle, root as c_int)
        })
    }
}

impl Drop for RawGroup {
    fn drop(&mut self) {
        // SAFETY: allocated by ft_pg_resolve, freed once.
        unsafe { ft_pg_free(self.ptr) }
    }
}
