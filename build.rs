//! Compiles the C++ shim (rust/shim/shim.cpp) against the headers of the torch
//! that the build's Python imports, the same torch torch-sys links against
//! (LIBTORCH_USE_PYTORCH=1), and sets the link flags the extension needs.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const PROBE: &str = r"
import os, sysconfig, torch
from torch.utils import cpp_extension
print('ABI', int(torch._C._GLIBCXX_USE_CXX11_ABI))
for p in cpp_extension.include_paths():
    print('INC', p)
for p in cpp_extension.library_paths():
    print('LIB', p)
print('PYLIB', sysconfig.get_config_var('LIBDIR') or '')
print('PYLDLIB', sysconfig.get_config_var('LDLIBRARY') or '')
try:
    import nvidia
    for p in nvidia.__path__:
        print('CUDAINC', os.path.join(p, 'cu13', 'include'))
        print('CUDALIB', os.path.join(p, 'cu13', 'lib'))
except ImportError:
    pass
";

fn python() -> PathBuf {
    for var in ["PYO3_PYTHON", "PYTHON_SYS_EXECUTABLE"] {
        println!("cargo:rerun-if-env-changed={var}");
        if let Ok(p) = env::var(var) {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("python3")
}

fn main() {
    println!("cargo:rerun-if-changed=rust/shim/shim.cpp");
    println!("cargo:rerun-if-changed=rust/shim/dist.cpp");
    println!("cargo:rerun-if-changed=rust/shim/linear.cpp");
    println!("cargo:rerun-if-changed=rust/shim/plain.h");
    println!("cargo:rerun-if-changed=rust/shim/guard.h");
    println!("cargo:rerun-if-changed=rust/shim/shim.h");
    println!("cargo:rerun-if-changed=rust/shim/cuda_graph.cpp");
    println!("cargo:rerun-if-env-changed=PYTHONPATH");
    println!("cargo:rerun-if-env-changed=PATH");

    let py = python();
    let out = Command::new(&py)
        .arg("-c")
        .arg(PROBE)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {py:?} to locate torch: {e}"));
    if !out.status.success() {
        panic!(
            "{py:?} could not import torch; activate the venv that has torch==2.11.0:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (mut abi, mut incs, mut libs) = ("1".to_string(), Vec::new(), Vec::new());
    let (mut pylib, mut pyldlib) = (String::new(), String::new());
    let (mut cuda_incs, mut cuda_libs) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(' ') {
            match k {
                "ABI" => abi = v.trim().to_string(),
                "INC" => incs.push(PathBuf::from(v.trim())),
                "LIB" => libs.push(PathBuf::from(v.trim())),
                "PYLIB" => pylib = v.trim().to_string(),
                "PYLDLIB" => pyldlib = v.trim().to_string(),
                "CUDAINC" => cuda_incs.push(PathBuf::from(v.trim())),
                "CUDALIB" => cuda_libs.push(PathBuf::from(v.trim())),
                _ => {}
            }
        }
    }

    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .includes(&incs)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("rust/shim/shim.cpp")
        .file("rust/shim/dist.cpp")
        .file("rust/shim/linear.cpp")
        .compile("ferrotorch_shim");

    let has_cuda = libs.iter().any(|d| d.join("libtorch_cuda.so").exists());
    let cudart = cuda_libs
        .iter()
        .find(|d| d.join("libcudart.so.13").exists())
        .cloned();
    cuda_graph_shim(&incs, &cuda_incs, &abi, has_cuda && cudart.is_some());
    for d in &libs {
        println!("cargo:rustc-link-search=native={}", d.display());
    }
    // Keep libtorch_cuda.so as a NEEDED entry even though no symbol of ours
    // references it: without it CUDA kernels are never registered.
    // (`-l` modifiers for this are nightly-only, so pass the flags in order.)
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    if has_cuda {
        println!("cargo:rustc-link-arg-cdylib=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg-cdylib=-ltorch_cuda");
        println!("cargo:rustc-link-arg-cdylib=-Wl,--as-needed");
    }
    // The wheel relies on `import torch` having loaded torch's libraries (found
    // by soname). Executables built without the `python` feature (cargo test,
    // criterion benches) have no Python: give them rpaths, and libpython
    // because libtorch_python.so (tch's python-extension) needs its symbols.
    // The wheel must not link libpython: that would pin one CPython (abi3).
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_PYTHON");
    if env::var_os("CARGO_FEATURE_PYTHON").is_none() {
        let mut rpaths: Vec<String> = libs.iter().map(|d| d.display().to_string()).collect();
        rpaths.extend(cudart.iter().map(|d| d.display().to_string()));
        if !pylib.is_empty() && pyldlib.ends_with(".so") {
            let name = pyldlib.trim_start_matches("lib").trim_end_matches(".so");
            println!("cargo:rustc-link-search=native={pylib}");
            println!("cargo:rustc-link-lib=dylib={name}");
            rpaths.push(pylib);
        }
        for r in &rpaths {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{r}");
        }
    }
}

/// Compiles rust/shim/cuda_graph.cpp: with the CUDA graph code when the CUDA
/// headers are complete (cuda_runtime.h from the pip CUDA runtime, and
/// crt/host_config.h from `nvidia-cuda-crt`) and libtorch_cuda and libcudart
/// are there; else as stubs that report the missing support. The real code
/// links c10_cuda and cudart.
fn cuda_graph_shim(incs: &[PathBuf], cuda_incs: &[PathBuf], abi: &str, libs_ok: bool) {
    let has = |rel: &str| cuda_incs.iter().any(|d| d.join(rel).exists());
    let enabled = libs_ok && has("cuda_runtime.h") && has("crt/host_config.h");
    if !enabled {
        println!(
            "cargo:warning=CUDA graphs disabled in this build (needs libtorch_cuda, libcudart.so.13, \
             cuda_runtime.h and crt/host_config.h from nvidia-cuda-crt)"
        );
    }
    let mut b = cc::Build::new();
    b.cpp(true)
        .pic(true)
        .warnings(false)
        .includes(incs)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .define("FT_CUDA_GRAPH", if enabled { "1" } else { "0" });
    if enabled {
        b.includes(cuda_incs.iter().filter(|d| d.exists()));
    }
    b.file("rust/shim/cuda_graph.cpp")
        .compile("ferrotorch_cuda_graph");
    if enabled {
        for d in cuda_incs {
            let lib = d.with_file_name("lib");
            if lib.join("libcudart.so.13").exists() {
                println!("cargo:rustc-link-search=native={}", lib.display());
            }
        }
        // By soname: the copy torch loaded is reused at run time.
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-lc10_cuda");
        println!("cargo:rustc-link-arg=-l:libcudart.so.13");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
