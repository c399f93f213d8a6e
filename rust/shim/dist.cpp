// c10d collectives for the training engine: a process group that Python's
// torch.distributed created is looked up by its registered name, then used
// from Rust with the GIL released. Every entry point catches every C++
// exception (a timed-out or failed peer surfaces as an error message).
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/GroupRegistry.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>

#include <vector>

#include "guard.h"
#include "shim.h"

using Group = c10::intrusive_ptr<c10d::ProcessGroup>;

extern "C" {

char *ft_pg_resolve(const char *name, void **out, int *rank, int *size) {
  FT_GUARD({
    Group g = c10d::resolve_process_group(std::string(name));
    *rank = g->getRank();
    *size = g->getSize();
    *out = new Group(std::move(g));
  })
}

void ft_pg_free(void *pg) { delete static_cast<Group *>(pg); }

char *ft_pg_allreduce_sum(void *pg, ft_tensor t) {
  FT_GUARD({
    std::vector<at::Tensor> v{*t};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    (*static_cast<Group *>(pg))->allreduce(v, opts)->wait();
  })
}

char *ft_pg_broadcast(void *pg, ft_tensor t, int root) {
  FT_GUARD({
    std::vector<at::Tensor> v{*t};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    (*static_cast<Group *>(pg))->broadcast(v, opts)->wait();
  })
}

}  // extern "C"
