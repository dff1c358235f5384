// A CPU emulation of the CUDA execution model, enough to check kernels.cu's indexing,
// reductions and launch-shape assumptions on a machine without a GPU: blocks run one after
// another, the threads of a block run as real threads, so __syncthreads and warp shuffles keep
// their semantics (a barrier per block, and per warp). __shared__ becomes static storage, which
// is per block since blocks run one at a time. Compiled with -DTESSERA_CUDA_EMU, which makes
// kernels.cu use software f16 conversions instead of PTX. Not a timing model.
#include <pthread.h>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <functional>
#include <thread>
struct dim3e { unsigned x=1,y=1,z=1; };
static thread_local dim3e threadIdx, blockIdx;
static dim3e gridDim, blockDim;
static float emu_dyn_shared[16384];
static pthread_barrier_t block_bar;
static pthread_barrier_t warp_bar[32];
static float warp_slots[32][32];
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() pthread_barrier_wait(&block_bar)
static inline float __int_as_float(unsigned v){ float f; memcpy(&f,&v,4); return f; }
static inline float __shfl_xor_sync(unsigned, float v, int o){
  int t = threadIdx.x, w = t/32, l = t%32;
  warp_slots[w][l] = v; pthread_barrier_wait(&warp_bar[w]);
  float r = warp_slots[w][l^o]; pthread_barrier_wait(&warp_bar[w]); return r;
}
// Runs kernel `k` over a grid of gx x gy blocks of bx threads (bx a multiple of 32).
static void launch(unsigned gx, unsigned gy, unsigned bx, const std::function<void()>& k){
  gridDim.x=gx; gridDim.y=gy; blockDim.x=bx;
  pthread_barrier_init(&block_bar, nullptr, bx);
  for (unsigned w=0; w<bx/32; ++w) pthread_barrier_init(&warp_bar[w], nullptr, 32);
  for (unsigned by=0; by<gy; ++by) for (unsigned b=0; b<gx; ++b) {
    std::vector<std::thread> ts;
    for (unsigned t=0; t<bx; ++t) ts.emplace_back([=]{ blockIdx.x=b; blockIdx.y=by; threadIdx.x=t; k(); });
    for (auto& th: ts) th.join();
  }
  pthread_barrier_destroy(&block_bar);
  for (unsigned w=0; w<bx/32; ++w) pthread_barrier_destroy(&warp_bar[w]);
}
