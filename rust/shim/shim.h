// C entry points for ATen ops that tch does not expose: multi-tensor
// (_foreach_*), fused optimizer kernels and AMP helpers. Tensors are
// `at::Tensor*` handles, the same pointers tch's Tensor wraps. Each function
// returns NULL on success or a malloc'd error message (free with ft_free_error).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
typedef at::Tensor *ft_tensor;
#else
typedef void *ft_tensor;
#endif

void ft_free_error(char *err);

char *ft_grads_set_to_none(ft_tensor *self, size_t n);
int ft_is_same(ft_tensor a, ft_tensor b);
// *dst = *src: dst becomes another handle on src's tensor (undefined if src is).
void ft_assign(ft_tensor dst, ft_tensor src);
/* The tensor's device as torch prints it ("cpu", "cuda:0", "meta"), written
 * NUL-terminated into buf (truncated to cap - 1 bytes). */
void ft_device_str(ft_tensor t, char *buf, size_t cap);

char *ft_vector_norm(ft_tensor self, double ord, ft_tensor *out);

char *ft_foreach_norm(ft_tensor *self, size_t n, double ord, ft_tensor *out);
char *ft_foreach_mul_scalar_(ft_tensor *self, size_t n, double scalar);
char *ft_foreach_mul_tensor_(ft_tensor *self, size_t n, ft_tensor other);
char *ft_foreach_add_scalar_(ft_tensor *self, size_t n, double scalar);
char *ft_foreach_add_list_(ft_tensor *self, ft_tensor *other, size_t n, double alpha);
char *ft_foreach_addcmul_(ft_tensor *self, ft_tensor *t1, ft_tensor *t2, size_t n, double value);
char *ft_foreach_addcdiv_(ft_tensor *self, ft_tensor *t1, ft_tensor *t2, size_t n, double value);
char *ft_foreach_lerp_(ft_tensor *self, ft_tensor *ends, size_t n, double weight);
char *ft_foreach_sqrt(ft_tensor *self, size_t n, ft_tensor *out);
char *ft_foreach_div_scalar_(ft_tensor *self, size_t n, double scalar);
char *ft_foreach_div_list_(ft_tensor *self, ft_tensor *other, size_t n);
char *ft_foreach_zero_(ft_tensor *self, size_t n);
char *ft_foreach_div_scalarlist_(ft_tensor *self, size_t n, const double *scalars);
char *ft_foreach_mul_scalarlist_(ft_tensor *self, size_t n, const double *scalars);
char *ft_foreach_add_scalarlist_(ft_tensor *self, size_t n, const double *scalars);
char *ft_foreach_addcdiv_scalarlist_(ft_tensor *self, ft_tensor *t1, ft_tensor *t2, size_t n,
                                     const double *scalars);
char *ft_foreach_maximum_(ft_tensor *self, ft_tensor *other, size_t n);
char *ft_foreach_mul_list_(ft_tensor *self, ft_tensor *other, size_t n);
char *ft_foreach_abs(ft_tensor *self, size_t n, ft_tensor *out);
char *ft_foreach_add_list(ft_tensor *self, ft_tensor *other, size_t n, double alpha, ft_tensor *out);
char *ft_foreach_addcmul(ft_tensor *self, ft_tensor *t1, ft_tensor *t2, size_t n, double value,
                         ft_tensor *out);
char *ft_foreach_sqrt_(ft_tensor *self, size_t n);
char *ft_foreach_reciprocal_(ft_tensor *self, size_t n);
char *ft_foreach_mul_scalar(ft_tensor *self, size_t n, double scalar, ft_tensor *out);
char *ft_foreach_neg(ft_tensor *self, size_t n, ft_tensor *out);

/* The fused kernels take lr as a double, or (lr_t non-null: the capturable
 * path) as a tensor on the parameters' device that a captured graph reads. */
char *ft_fused_adam_(int decoupled, ft_tensor *params, ft_tensor *grads, ft_tensor *exp_avgs,
                     ft_tensor *exp_avg_sqs, ft_tensor *max_exp_avg_sqs, size_t n_max,
                     ft_tensor *state_steps, size_t n, double lr, double beta1, double beta2,
                     double weight_decay, double eps, int amsgrad, int maximize,
                     ft_tensor grad_scale, ft_tensor found_inf, ft_tensor lr_t);
char *ft_fused_sgd_(ft_tensor *params, ft_tensor *grads, ft_tensor *momentum_buffers,
                    size_t n_buf, size_t n, double weight_decay, double momentum, double lr,
                    double dampening, int nesterov, int maximize, int is_first_step,
                    ft_tensor grad_scale, ft_tensor found_inf, ft_tensor lr_t);
char *ft_fused_adagrad_(ft_tensor *params, ft_tensor *grads, ft_tensor *state_sums,
                        ft_tensor *state_steps, size_t n, double lr, double lr_decay,
                        double weight_decay, double eps, int maximize, ft_tensor grad_scale,
                        ft_tensor found_inf, ft_tensor lr_t);

char *ft_amp_foreach_non_finite_check_and_unscale_(ft_tensor *grads, size_t n,
                                                   ft_tensor found_inf, ft_tensor inv_scale);
char *ft_cpu_any_nonfinite(ft_tensor *ts, size_t n, int32_t *out);
char *ft_cpu_scalars_add_(ft_tensor *ts, size_t n, double v);
char *ft_amp_update_scale_(ft_tensor scale, ft_tensor growth_tracker, ft_tensor found_inf,
                           double growth_factor, double backoff_factor, int64_t growth_interval);

char *ft_foreach_clamp_min_(ft_tensor *self, size_t n, double scalar);
char *ft_foreach_clamp_max_(ft_tensor *self, size_t n, double scalar);

char *ft_autocast_get(int device_type, int *enabled, int *dtype);
char *ft_autocast_set(int device_type, int enabled, int dtype);
char *ft_autocast_increment_nesting(int *depth);
char *ft_autocast_decrement_nesting(int *depth);
char *ft_autocast_clear_cache(void);

char *ft_elu(ft_tensor self, double alpha, ft_tensor *out);
char *ft_leaky_relu(ft_tensor self, double slope, ft_tensor *out);
// at::linear(x, weight, bias); bias may be NULL. 2-D plain CPU input with a
// bias: one autograd node (linear.cpp) instead of addmm's and t's.
char *ft_linear(ft_tensor x, ft_tensor weight, ft_tensor bias, ft_tensor *out);
char *ft_softplus(ft_tensor self, double beta, double threshold, ft_tensor *out);

/* c10d (dist.cpp): a torch.distributed process group by registered name. */
char *ft_pg_resolve(const char *name, void **out, int *rank, int *size);
void ft_pg_free(void *pg);
/* In-place sum over the group, waiting for completion. */
char *ft_pg_allreduce_sum(void *pg, ft_tensor t);
char *ft_pg_broadcast(void *pg, ft_tensor t, int root);

/* Gradient checkpointing. A sink collects the tensors a callback returns
 * (ft_sink_push copies the handle) or its error (ft_sink_fail). */
typedef struct ft_sink ft_sink;
ft_sink *ft_sink_new(void);
void ft_sink_free(ft_sink *s);
int ft_sink_push(ft_sink *s, ft_tensor t);
void ft_sink_fail(ft_sink *s, const char *msg);
size_t ft_sink_len(const ft_sink *s);
/* A new handle on the i-th tensor (NULL if out of range or out of memory). */
ft_tensor ft_sink_take(ft_sink *s, size_t i);
/* Runs the user's function on n inputs, pushing its outputs into sink;
 * returns 0 on success, non-zero after ft_sink_fail. */
typedef int (*ft_recompute_fn)(void *ctx, ft_tensor *inputs, size_t n, ft_sink *sink);
typedef void (*ft_drop_fn)(void *ctx);
/* out = fn(inputs[:n_user]) without keeping activations; backward recomputes
 * them. inputs[n_user:] are the parameters fn uses (gradients flow to them).
 * Takes ownership of ctx: drop(ctx) runs once, when nothing needs fn any more
 * (at once on failure or when nothing requires grad, else when the autograd
 * graph is freed). */
char *ft_grad_checkpoint(ft_recompute_fn fn, ft_drop_fn drop, void *ctx, ft_tensor *inputs,
                         size_t n_inputs, size_t n_user, int preserve_rng, ft_sink *out);

#ifdef __cplusplus
}
#endif
