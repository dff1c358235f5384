//! Launch shapes of the CUDA kernels, computed on the host and checked against the hardware
//! limits before any launch: gridDim.x ≤ 2^31-1, gridDim.y/z ≤ 65535, ≤ 1024 threads per
//! block. Kernels whose work can exceed a dimension loop over it (grid-stride), so shapes are
//! clamped, never wrapped; sizes are 64-bit throughout.

use std::fmt;

pub const MAX_GRID_X: u64 = (1 << 31) - 1;
pub const MAX_GRID_YZ: u64 = 65_535;
pub const MAX_BLOCK: u32 = 1024;
/// Threads per block of the element-wise kernels.
pub const ELEMWISE_THREADS: u32 = 256;
/// Blocks of an element-wise grid: enough to fill any current GPU several times over; the
/// kernels loop over the rest.
pub const ELEMWISE_MAX_BLOCKS: u64 = 65_536;
/// Weight rows per block of the matmul kernels (one warp each; `MM_WARPS` in kernels.cu).
pub const MM_WARPS: u32 = 4;
/// Tokens per warp tile of the matmul kernels (`MM_TOKENS` in kernels.cu).
pub const MM_TOKENS: u64 = 8;
/// Threads per block of the row kernels (RMSNorm, attention).
pub const ROW_THREADS: u32 = 128;

/// A kernel launch shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    /// Dynamic shared memory in bytes.
    pub shared: u32,
}

/// A launch shape the hardware would refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchError(pub String);

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LaunchError {}

impl Launch {
    /// Checks the shape against the limits every CUDA device has.
    pub fn check(&self) -> Result<(), LaunchError> {
        let (gx, gy, gz) = self.grid;
        let (bx, by, bz) = self.block;
        let threads = u64::from(bx) * u64::from(by) * u64::from(bz);
        if gx == 0 || gy == 0 || gz == 0 || threads == 0 {
            return Err(LaunchError(format!(
                "empty launch grid {:?} block {:?}",
                self.grid, self.block
            )));
        }
        if u64::from(gx) > MAX_GRID_X || u64::from(gy) > MAX_GRID_YZ || u64::from(gz) > MAX_GRID_YZ
        {
            return Err(LaunchError(format!(
                "grid {:?} exceeds the limits x ≤ {MAX_GRID_X}, y,z ≤ {MAX_GRID_YZ}",
                self.grid
            )));
        }
        if threads > u64::from(MAX_BLOCK) {
            return Err(LaunchError(format!(
                "block {:?} has {threads} threads, more than {MAX_BLOCK}",
                self.block
            )));
        }
        Ok(())
    }

    fn new(grid: (u64, u64), block: u32, shared: u32) -> Result<Self, LaunchError> {
        let l = Launch {
            grid: (
                u32::try_from(grid.0).unwrap_or(u32::MAX),
                u32::try_from(grid.1).unwrap_or(u32::MAX),
                1,
            ),
            block: (block, 1, 1),
            shared,
        };
        l.check()?;
        Ok(l)
    }
}

/// Grid-stride element-wise kernels over `n` items (GET_ROWS over ids × columns, add, swiglu,
/// RoPE pairs, KV stores).
pub fn elementwise(n: u64) -> Result<Launch, LaunchError> {
    let blocks = n
        .div_ceil(u64::from(ELEMWISE_THREADS))
        .clamp(1, ELEMWISE_MAX_BLOCKS);
    Launch::new((blocks, 1), ELEMWISE_THREADS, 0)
}

/// One warp per block of 32 values (Q8_0 quantization of `n_blocks` blocks).
pub fn per_block32(n_blocks: u64) -> Result<Launch, LaunchError> {
    let per = u64::from(ELEMWISE_THREADS / 32);
    let blocks = n_blocks.div_ceil(per).clamp(1, ELEMWISE_MAX_BLOCKS);
    Launch::new((blocks, 1), ELEMWISE_THREADS, 0)
}

/// One block per row, looping when rows exceed the grid (RMSNorm).
pub fn per_row(rows: u64) -> Result<Launch, LaunchError> {
    Launch::new((rows.clamp(1, ELEMWISE_MAX_BLOCKS), 1), ROW_THREADS, 0)
}

/// Matmul of `n` weight rows by `m` tokens: x covers weight rows (`MM_WARPS` per block), y
/// covers token tiles of `MM_TOKENS`, clamped to 65535 (the kernel loops over the rest).
pub fn mul_mat(n: u64, m: u64) -> Result<Launch, LaunchError> {
    let gx = n.div_ceil(u64::from(MM_WARPS)).max(1);
    let gy = m.div_ceil(MM_TOKENS).clamp(1, MAX_GRID_YZ);
    Launch::new((gx, gy), MM_WARPS * 32, 0)
}

/// Attention: one block per (token, head) job, looping beyond the grid; the query head is
/// staged in `head_dim` floats of dynamic shared memory.
pub fn attention(jobs: u64, head_dim: u64) -> Result<Launch, LaunchError> {
    let shared = head_dim
        .checked_mul(4)
        .filter(|&b| b <= 48 * 1024)
        .ok_or_else(|| {
            LaunchError(format!(
                "head size {head_dim} needs more than 48 KiB of shared memory"
            ))
        })?;
    Launch::new(
        (jobs.clamp(1, ELEMWISE_MAX_BLOCKS), 1),
        ROW_THREADS,
        shared as u32,
    )
}

/// Host-side GET_ROWS id validation: every id must be in `0..rows`, and `rows` must fit the
/// kernel's 32-bit ids. Returns the ids as the kernel takes them.
pub fn validate_ids(ids: &[u32], rows: usize) -> Result<Vec<i32>, LaunchError> {
    if rows > i32::MAX as usize {
        return Err(LaunchError(format!(
            "{rows} rows exceed the 32-bit id range"
        )));
    }
    ids.iter()
        .enumerate()
        .map(|(i, &id)| {
            if (id as usize) < rows {
                Ok(id as i32)
            } else {
                Err(LaunchError(format!(
                    "GET_ROWS id {id} at index {i} is out of range: the matrix has {rows} rows (0..={})",
                    rows.saturating_sub(1)
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elementwise_clamps_and_covers() {
        assert_eq!(elementwise(1).unwrap().grid, (1, 1, 1));
        assert_eq!(elementwise(256).unwrap().grid, (1, 1, 1));
        assert_eq!(elementwise(257).unwrap().grid, (2, 1, 1));
        assert_eq!(elementwise(0).unwrap().grid, (1, 1, 1));
        // 5e9 elements (more than 2^32): the grid is clamped and the kernel strides.
        let l = elementwise(5_000_000_000).unwrap();
        assert_eq!(l.grid.0 as u64, ELEMWISE_MAX_BLOCKS);
        assert_eq!(l.block, (ELEMWISE_THREADS, 1, 1));
    }

    #[test]
    fn mul_mat_y_stays_within_65535() {
        let l = mul_mat(32000, 8).unwrap();
        assert_eq!(l.grid, (8000, 1, 1));
        assert_eq!(l.block.0, 128);
        let l = mul_mat(4, 9).unwrap();
        assert_eq!(l.grid, (1, 2, 1));
        // 2^20 token tiles would be y = 131072: clamped.
        let l = mul_mat(1024, 8 << 20).unwrap();
        assert_eq!(u64::from(l.grid.1), MAX_GRID_YZ);
        l.check().unwrap();
    }

    #[test]
    fn check_refuses_bad_shapes() {
        let mut l = elementwise(10).unwrap();
        l.grid.1 = 70_000;
        assert!(l.check().unwrap_err().0.contains("65535"));
        let mut l = elementwise(10).unwrap();
        l.block = (2048, 1, 1);
        assert!(l.check().is_err());
        let mut l = elementwise(10).unwrap();
        l.grid.0 = 0;
        assert!(l.check().is_err());
        // A grid x beyond 2^31-1 is refused, not truncated.
        assert!(Launch::new((1 << 32, 1), 256, 0).is_err());
    }

    #[test]
    fn attention_shared_memory_bound() {
        assert_eq!(attention(16, 64).unwrap().shared, 256);
        assert!(attention(16, 20_000).is_err());
        assert_eq!(
            attention(200_000, 64).unwrap().grid.0 as u64,
            ELEMWISE_MAX_BLOCKS
        );
    }

    #[test]
    fn ids_are_validated() {
        assert_eq!(validate_ids(&[0, 5, 9], 10).unwrap(), vec![0, 5, 9]);
        let e = validate_ids(&[0, 10], 10).unwrap_err();
        assert!(e.0.contains("id 10 at index 1"), "{e}");
        assert!(validate_ids(&[u32::MAX], 10).is_err());
        assert!(validate_ids(&[0], (i32::MAX as usize) + 1).is_err());
        assert!(validate_ids(&[], 0).unwrap().is_empty());
    }
}
