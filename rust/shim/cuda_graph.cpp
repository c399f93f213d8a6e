// Whole-step CUDA graphs (rust/shim/cuda_graph.rs): at::cuda::CUDAGraph with
// its own private memory pool, a side stream for warm-up and capture, and
// the default CUDA generator registered so dropout's philox seed/offset
// advance on every replay as torch's graph-safe RNG does.
//
// Built with FT_CUDA_GRAPH=1 only when the CUDA headers (cuda_runtime.h and
// crt/host_config.h) were found at build time; otherwise every entry point
// returns an error saying so. Every entry point catches every C++ exception.
#include <ATen/ATen.h>

#include <string>

#include "guard.h"

#if FT_CUDA_GRAPH
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

#if FT_CUDA_GRAPH
// A device that CUDA can run on, or a c10::Error naming the device.
void check_device(int device) {
  int n = static_cast<int>(c10::cuda::device_count());
  TORCH_CHECK(n > 0, "CUDA graphs need a CUDA device; CUDA is not available on this machine (cuda:",
              device, ")");
  TORCH_CHECK(device >= 0 && device < n, "CUDA graphs: cuda:", device, " does not exist (",
              n, " device(s))");
}

// The side stream that warm-up and capture run on (capture is illegal on
// the legacy default stream); the previous current stream is restored on end.
struct SideStream {
  c10::cuda::CUDAStreamGuard guard;
  explicit SideStream(c10::cuda::CUDAStream s) : guard(s) {}
};
#else
[[noreturn]] void unsupported(int device) {
  TORCH_CHECK(false, "CUDA graphs on cuda:", device,
              ": this ferrotorch build has no CUDA graph support (the CUDA headers were "
              "missing when it was built)");
}
#endif

}  // namespace

extern "C" {

int ft_cuda_graph_supported() { return FT_CUDA_GRAPH ? 1 : 0; }

// Number of CUDA devices (0 without CUDA or without graph support).
char *ft_cuda_device_count(int *out) {
#if FT_CUDA_GRAPH
  FT_GUARD(*out = static_cast<int>(c10::cuda::device_count()))
#else
  FT_GUARD(*out = 0)
#endif
}

// Waits for all work on the device (capture boundaries only).
char *ft_cuda_synchronize(int device) {
#if FT_CUDA_GRAPH
  FT_GUARD({
    check_device(device);
    c10::cuda::CUDAGuard g(static_cast<c10::DeviceIndex>(device));
    c10::cuda::device_synchronize();
  })
#else
  FT_GUARD(unsupported(device))
#endif
}

// Makes a fresh pool stream of `device` current until ft_cuda_side_stream_end;
// pending work on the device finishes first, so the side stream sees it.
char *ft_cuda_side_stream_begin(int device, void **out) {
#if FT_CUDA_GRAPH
  FT_GUARD({
    check_device(device);
    auto dev = static_cast<c10::DeviceIndex>(device);
    c10::cuda::CUDAGuard g(dev);
    c10::cuda::device_synchronize();
    *out = new SideStream(c10::cuda::getStreamFromPool(false, dev));
  })
#else
  FT_GUARD(unsupported(device))
#endif
}

// Waits for the side stream, then restores the previous current stream.
char *ft_cuda_side_stream_end(void *side) {
#if FT_CUDA_GRAPH
  FT_GUARD({
    auto *s = static_cast<SideStream *>(side);
    if (s != nullptr) {
      s->guard.current_stream().synchronize();
      delete s;
    }
  })
#else
  FT_GUARD((void)side)
#endif
}

char *ft_cuda_graph_new(int device, void **out) {
#if FT_CUDA_GRAPH
  FT_GUARD({
    check_device(device);
    c10::cuda::CUDAGuard g(static_cast<c10::DeviceIndex>(device));
    *out = new at::cuda::CUDAGraph();
  })
#else
  FT_GUARD(unsupported(device))
#endif
}

void ft_cuda_graph_free(void *graph) {
#if FT_CUDA_GRAPH
  try {
    delete static_cast<at::cuda::CUDAGraph *>(graph);
  } catch (...) {
    // A destructor that fails leaves the pool to the allocator; nothing to report.
  }
#else
  (void)graph;
#endif
}

// Starts capturing on the current (side) stream into the graph's own
// private pool. The device's default generator is registered so that RNG
// ops read their seed/offset from device tensors the replay advances.
char *ft_cuda_graph_capture_begin(void *graph, int device) {
#if FT_CUDA_GRAPH
  FT_GUARD({
    check_device(device);
    auto *g = static_cast<at::cuda::CUDAGraph *>(graph);
    g->register_generator_state(
        at::cuda::detail::getDefaultCUDAGenerator(static_cast<c10::DeviceIndex>(device)));
    g->capture_begin();
  })
#else
  FT_GUARD(unsupported(device))
#endif
}

// Ends the capture and instantiates the graph.
char *ft_cuda_graph_capture_end(void *graph) {
#if FT_CUDA_GRAPH
  FT_GUARD(static_cast<at::cuda::CUDAGraph *>(graph)->capture_end())
#else
  FT_GUARD(unsupported(-1))
#endif
}

char *ft_cuda_graph_replay(void *graph) {
#if FT_CUDA_GRAPH
  FT_GUARD(static_cast<at::cuda::CUDAGraph *>(graph)->replay())
#else
  FT_GUARD(unsupported(-1))
#endif
}

}  // extern "C"
