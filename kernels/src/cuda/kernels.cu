// tessera's CUDA kernels, compiled at run time by NVRTC for the device's own architecture
// (kernels/src/cuda/mod.rs). Self-contained: no CUDA headers, so the same text compiles with
// any NVRTC from the pip wheels or a toolkit. f16 conversions use PTX `cvt` directly.
//
// Conventions:
// - Every index that can exceed 2^31 (row * stride, element counts) is `long long`.
// - Grids are 1-D grid-stride loops or have their y dimension clamped to 65535 by the host,
//   with the kernel looping over y (launch.rs computes the shapes; gridDim.y/z <= 65535).
// - Activations and outputs are token-major: row t of a [rows, cols] matrix at t * cols.
// - Quantized blocks are read as bytes (Q4_0: 18 bytes {f16 d; u8 qs[16]}, Q8_0: 34 bytes
//   {f16 d; i8 qs[32]}); both sizes are even, so the f16 scale is 2-byte aligned.

#define QK 32
#define Q4_0_BYTES 18
#define Q8_0_BYTES 34
#define WARP 32
#define NEG_INF (__int_as_float(0xff800000))

typedef unsigned short f16_bits;

#ifndef TESSERA_CUDA_EMU
__device__ __forceinline__ float h2f(f16_bits h) {
    float f;
    asm("{ cvt.f32.f16 %0, %1; }" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ f16_bits f2h(float f) {
    f16_bits h;
    asm("{ cvt.rn.f16.f32 %0, %1; }" : "=h"(h) : "f"(f));
    return h;
}
#else
// The CPU emulation of the execution model (emu/emu.h, test engine/tests/cuda_emu.rs).
__device__ __forceinline__ float h2f(f16_bits h) { _Float16 x; memcpy(&x, &h, 2); return (float)x; }
__device__ __forceinline__ f16_bits f2h(float f) { _Float16 x = (_Float16)f; f16_bits h; memcpy(&h, &x, 2); return h; }
#endif

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide sum/max for blockDim.x a multiple of 32 and at most 1024. `red` holds 32 floats.
__device__ float block_sum(float v, float* red) {
    v = warp_sum(v);
    const int lane = threadIdx.x % WARP, w = threadIdx.x / WARP;
    __syncthreads();
    if (lane == 0) red[w] = v;
    __syncthreads();
    const int nw = blockDim.x / WARP;
    v = lane < nw ? red[lane] : 0.0f;
    return warp_sum(v);
}

__device__ float block_max(float v, float* red) {
    v = warp_max(v);
    const int lane = threadIdx.x % WARP, w = threadIdx.x / WARP;
    __syncthreads();
    if (lane == 0) red[w] = v;
    __syncthreads();
    const int nw = blockDim.x / WARP;
    v = lane < nw ? red[lane] : NEG_INF;
    return warp_max(v);
}

// ---------------------------------------------------------------------------------------------
// GET_ROWS: dst[i, c] = dequant(src[ids[i], c]). The host validated every id against the row
// count before the launch; the kernel trusts them (as llama.cpp's does), so an unvalidated id
// is exactly the illegal-address fault the fault tests inject.

__device__ __forceinline__ float load_f32(const unsigned char* row, long long c) {
    return ((const float*)row)[c];
}
__device__ __forceinline__ float load_f16(const unsigned char* row, long long c) {
    return h2f(((const f16_bits*)row)[c]);
}
__device__ __forceinline__ float load_q8_0(const unsigned char* row, long long c) {
    const unsigned char* b = row + (c / QK) * Q8_0_BYTES;
    const float d = h2f(*(const f16_bits*)b);
    return d * (float)((const signed char*)(b + 2))[c % QK];
}
__device__ __forceinline__ float load_q4_0(const unsigned char* row, long long c) {
    const unsigned char* b = row + (c / QK) * Q4_0_BYTES;
    const float d = h2f(*(const f16_bits*)b);
    const int j = (int)(c % QK);
    const unsigned char q = b[2 + (j % 16)];
    const int v = j < 16 ? (q & 15) : (q >> 4);
    return d * (float)(v - 8);
}

template <float (*LOAD)(const unsigned char*, long long)>
__device__ void get_rows(const unsigned char* src, const int* ids, float* dst, long long n_ids,
                         long long ncols, long long row_bytes) {
    const long long total = n_ids * ncols;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long r = i / ncols, c = i % ncols;
        const long long id = ids[r];
        dst[i] = LOAD(src + id * row_bytes, c);
    }
}

extern "C" __global__ void get_rows_f32(const unsigned char* src, const int* ids, float* dst,
                                        long long n_ids, long long ncols, long long row_bytes) {
    get_rows<load_f32>(src, ids, dst, n_ids, ncols, row_bytes);
}
extern "C" __global__ void get_rows_f16(const unsigned char* src, const int* ids, float* dst,
                                        long long n_ids, long long ncols, long long row_bytes) {
    get_rows<load_f16>(src, ids, dst, n_ids, ncols, row_bytes);
}
extern "C" __global__ void get_rows_q8_0(const unsigned char* src, const int* ids, float* dst,
                                         long long n_ids, long long ncols, long long row_bytes) {
    get_rows<load_q8_0>(src, ids, dst, n_ids, ncols, row_bytes);
}
extern "C" __global__ void get_rows_q4_0(const unsigned char* src, const int* ids, float* dst,
                                         long long n_ids, long long ncols, long long row_bytes) {
    get_rows<load_q4_0>(src, ids, dst, n_ids, ncols, row_bytes);
}

// ---------------------------------------------------------------------------------------------
// Activations to Q8_0, as the CPU path and llama.cpp do before a quantized matmul: one warp
// per block of 32; d = amax/127 stored as f16, q = round(x / d) (half away from zero).
extern "C" __global__ void quantize_q8_0(const float* x, unsigned char* out, long long n_blocks) {
    const int lane = threadIdx.x % WARP;
    const long long warps = (long long)gridDim.x * (blockDim.x / WARP);
    for (long long b = (long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
         b < n_blocks; b += warps) {
        const float v = x[b * QK + lane];
        const float amax = warp_max(fabsf(v));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        unsigned char* o = out + b * Q8_0_BYTES;
        ((signed char*)(o + 2))[lane] = (signed char)roundf(v * id);
        if (lane == 0) *(f16_bits*)o = f2h(d);
    }
}

// ---------------------------------------------------------------------------------------------
// Matmul out[t, n] = dot(W row n, activation row t), W = N rows of K.
// One warp per weight row; each warp serves a tile of up to MM_TOKENS tokens so a weight block
// is read once per tile (GEMV is the 1-token case of the same kernel). Lanes stride over the
// K/32 blocks and the warp reduces at the end.
// A faster version would stage weight tiles in shared memory, use __dp4a / mma.sync on the
// int8 products, and keep the Q8_0 activations of a token tile in shared memory.
#define MM_TOKENS 8
#define MM_WARPS 4

__device__ __forceinline__ int q4_0_isum(const unsigned char* wb, const unsigned char* ab) {
    const signed char* aq = (const signed char*)(ab + 2);
    int s = 0;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
        const unsigned char q = wb[2 + j];
        s += ((int)(q & 15) - 8) * (int)aq[j] + ((int)(q >> 4) - 8) * (int)aq[j + 16];
    }
    return s;
}

__device__ __forceinline__ int q8_0_isum(const unsigned char* wb, const unsigned char* ab) {
    const signed char* wq = (const signed char*)(wb + 2);
    const signed char* aq = (const signed char*)(ab + 2);
    int s = 0;
#pragma unroll
    for (int j = 0; j < QK; ++j) s += (int)wq[j] * (int)aq[j];
    return s;
}

// Quantized weights times Q8_0 activations (`act`: M rows of K/32 blocks).
template <int WBYTES, int (*ISUM)(const unsigned char*, const unsigned char*)>
__device__ void mul_mat_q(const unsigned char* w, const unsigned char* act, float* out,
                          long long N, long long K, long long M) {
    const int lane = threadIdx.x % WARP;
    const long long n = (long long)blockIdx.x * MM_WARPS + threadIdx.x / WARP;
    if (n >= N) return;
    const long long nb = K / QK;
    const long long n_tiles = (M + MM_TOKENS - 1) / MM_TOKENS;
    const unsigned char* wrow = w + n * nb * WBYTES;
    for (long long tile = blockIdx.y; tile < n_tiles; tile += gridDim.y) {
        const long long t0 = tile * MM_TOKENS;
        const int nt = (int)(M - t0 < MM_TOKENS ? M - t0 : MM_TOKENS);
        float acc[MM_TOKENS];
#pragma unroll
        for (int t = 0; t < MM_TOKENS; ++t) acc[t] = 0.0f;
        for (long long b = lane; b < nb; b += WARP) {
            const unsigned char* wb = wrow + b * WBYTES;
            const float dw = h2f(*(const f16_bits*)wb);
#pragma unroll
            for (int t = 0; t < MM_TOKENS; ++t) {
                if (t < nt) {
                    const unsigned char* ab = act + ((t0 + t) * nb + b) * Q8_0_BYTES;
                    const float da = h2f(*(const f16_bits*)ab);
                    acc[t] += dw * da * (float)ISUM(wb, ab);
                }
            }
        }
#pragma unroll
        for (int t = 0; t < MM_TOKENS; ++t) {
            const float s = warp_sum(acc[t]);
            if (lane == 0 && t < nt) out[(t0 + t) * N + n] = s;
        }
    }
}

// f16 and f32 weights times f32 activations; with f16 weights the activations are rounded to
// f16 first, as the CPU path does, and products accumulate in f32.
template <bool HALF>
__device__ void mul_mat_f(const unsigned char* w, const float* x, float* out, long long N,
                          long long K, long long M) {
    const int lane = threadIdx.x % WARP;
    const long long n = (long long)blockIdx.x * MM_WARPS + threadIdx.x / WARP;
    if (n >= N) return;
    const long long n_tiles = (M + MM_TOKENS - 1) / MM_TOKENS;
    for (long long tile = blockIdx.y; tile < n_tiles; tile += gridDim.y) {
        const long long t0 = tile * MM_TOKENS;
        const int nt = (int)(M - t0 < MM_TOKENS ? M - t0 : MM_TOKENS);
        float acc[MM_TOKENS];
#pragma unroll
        for (int t = 0; t < MM_TOKENS; ++t) acc[t] = 0.0f;
        for (long long k = lane; k < K; k += WARP) {
            const float wv = HALF ? h2f(((const f16_bits*)w)[n * K + k]) : ((const float*)w)[n * K + k];
#pragma unroll
            for (int t = 0; t < MM_TOKENS; ++t) {
                if (t < nt) {
                    const float a = x[(t0 + t) * K + k];
                    acc[t] += wv * (HALF ? h2f(f2h(a)) : a);
                }
            }
        }
#pragma unroll
        for (int t = 0; t < MM_TOKENS; ++t) {
            const float s = warp_sum(acc[t]);
            if (lane == 0 && t < nt) out[(t0 + t) * N + n] = s;
        }
    }
}

extern "C" __global__ void mul_mat_q4_0(const unsigned char* w, const unsigned char* act,
                                        float* out, long long N, long long K, long long M) {
    mul_mat_q<Q4_0_BYTES, q4_0_isum>(w, act, out, N, K, M);
}
extern "C" __global__ void mul_mat_q8_0(const unsigned char* w, const unsigned char* act,
                                        float* out, long long N, long long K, long long M) {
    mul_mat_q<Q8_0_BYTES, q8_0_isum>(w, act, out, N, K, M);
}
extern "C" __global__ void mul_mat_f16(const unsigned char* w, const float* x, float* out,
                                       long long N, long long K, long long M) {
    mul_mat_f<true>(w, x, out, N, K, M);
}
extern "C" __global__ void mul_mat_f32(const unsigned char* w, const float* x, float* out,
                                       long long N, long long K, long long M) {
    mul_mat_f<false>(w, x, out, N, K, M);
}

// ---------------------------------------------------------------------------------------------
// Element-wise and row ops.

// y = x / sqrt(mean(x^2) + eps) * w, one block per row (rows in grid y, clamped and looped).
extern "C" __global__ void rms_norm(const float* x, const float* w, float* y, long long rows,
                                    long long ncols, float eps) {
    __shared__ float red[WARP];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* xr = x + r * ncols;
        float ss = 0.0f;
        for (long long c = threadIdx.x; c < ncols; c += blockDim.x) ss += xr[c] * xr[c];
        ss = block_sum(ss, red);
        const float scale = 1.0f / sqrtf(ss / (float)ncols + eps);
        for (long long c = threadIdx.x; c < ncols; c += blockDim.x) y[r * ncols + c] = xr[c] * scale * w[c];
        __syncthreads();
    }
}

// RoPE, llama's "normal" mode: in each head, pair i < n_rot/2 rotates (x[2i], x[2i+1]) by
// pos * theta[i], pos = pos0 + token. `x` is [tokens, row_len] with heads of head_dim.
extern "C" __global__ void rope_normal(float* x, const float* theta, long long tokens,
                                       long long row_len, long long n_heads, long long head_dim,
                                       long long n_rot, long long pos0) {
    const long long half_rot = n_rot / 2;
    const long long total = tokens * n_heads * half_rot;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long p = i % half_rot, h = (i / half_rot) % n_heads, t = i / (half_rot * n_heads);
        const float ang = (float)(pos0 + t) * theta[p];
        float s, c;
        sincosf(ang, &s, &c);
        float* v = x + t * row_len + h * head_dim + 2 * p;
        const float a = v[0], b = v[1];
        v[0] = a * c - b * s;
        v[1] = a * s + b * c;
    }
}

// Copies n values into the KV cache at element offset `at`, as f16 or f32.
extern "C" __global__ void kv_store_f16(const float* src, f16_bits* dst, long long at, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        dst[at + i] = f2h(src[i]);
}
extern "C" __global__ void kv_store_f32(const float* src, float* dst, long long at, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        dst[at + i] = src[i];
}

// gate = silu(gate) * up
extern "C" __global__ void swiglu(float* gate, const float* up, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// x += y
extern "C" __global__ void add(float* x, const float* y, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        x[i] += y[i];
}

// ---------------------------------------------------------------------------------------------
// Causal grouped-query attention over the cache, one block per (token, head):
// out = softmax(q . K^T * scale) . V over positions 0..=pos0+token. Query head h reads KV head
// h / (n_head / n_head_kv). `scores` is scratch of n_ctx floats per (token, head).
// A faster version would be flash-attention style: tile K/V through shared memory with an
// online softmax and no score scratch.
template <bool KH, bool VH>
__device__ void attention(const float* q, const void* kc, const void* vc, float* out,
                          float* scores, long long tokens, long long n_head, long long n_head_kv,
                          long long head_dim, long long kv_width, long long pos0, long long n_ctx,
                          float scale) {
    __shared__ float red[WARP];
#ifndef TESSERA_CUDA_EMU
    extern __shared__ float qs[];  // head_dim floats
#else
    float* qs = emu_dyn_shared;
#endif
    const long long group = n_head / n_head_kv;
    for (long long job = blockIdx.x; job < tokens * n_head; job += gridDim.x) {
        const long long t = job / n_head, h = job % n_head;
        const long long n_kv = pos0 + t + 1;
        const long long off = (h / group) * head_dim;
        const float* qh = q + t * (n_head * head_dim) + h * head_dim;
        float* sc = scores + job * n_ctx;
        __syncthreads();
        for (long long d = threadIdx.x; d < head_dim; d += blockDim.x) qs[d] = qh[d];
        __syncthreads();
        float mx = NEG_INF;
        for (long long p = threadIdx.x; p < n_kv; p += blockDim.x) {
            const long long at = p * kv_width + off;
            float s = 0.0f;
            for (long long d = 0; d < head_dim; ++d) {
                const float kv = KH ? h2f(((const f16_bits*)kc)[at + d]) : ((const float*)kc)[at + d];
                s += qs[d] * kv;
            }
            s *= scale;
            sc[p] = s;
            mx = fmaxf(mx, s);
        }
        mx = block_max(mx, red);
        float sum = 0.0f;
        for (long long p = threadIdx.x; p < n_kv; p += blockDim.x) {
            const float e = expf(sc[p] - mx);
            sc[p] = e;
            sum += e;
        }
        sum = block_sum(sum, red);
        const float inv = 1.0f / sum;
        __syncthreads();  // every score written before any thread reads them all
        float* o = out + t * (n_head * head_dim) + h * head_dim;
        for (long long d = threadIdx.x; d < head_dim; d += blockDim.x) {
            float acc = 0.0f;
            for (long long p = 0; p < n_kv; ++p) {
                const long long at = p * kv_width + off + d;
                const float v = VH ? h2f(((const f16_bits*)vc)[at]) : ((const float*)vc)[at];
                acc += sc[p] * inv * v;
            }
            o[d] = acc;
        }
    }
}

#define ATTN_ARGS const float *q, const void *kc, const void *vc, float *out, float *scores, \
    long long tokens, long long n_head, long long n_head_kv, long long head_dim, \
    long long kv_width, long long pos0, long long n_ctx, float scale
#define ATTN_PASS q, kc, vc, out, scores, tokens, n_head, n_head_kv, head_dim, kv_width, pos0, n_ctx, scale

extern "C" __global__ void attention_f16_f16(ATTN_ARGS) { attention<true, true>(ATTN_PASS); }
extern "C" __global__ void attention_f16_f32(ATTN_ARGS) { attention<true, false>(ATTN_PASS); }
extern "C" __global__ void attention_f32_f16(ATTN_ARGS) { attention<false, true>(ATTN_PASS); }
extern "C" __global__ void attention_f32_f32(ATTN_ARGS) { attention<false, false>(ATTN_PASS); }
