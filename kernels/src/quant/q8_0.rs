//! Q8_0: 32 signed bytes and one f16 scale per block; also the format activations are
//! quantized to before an integer dot product with Q4_0 or Q8_0 weights.

use half::f16;

use super::QK;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; QK],
}

const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

/// Reference quantization (FACTS.md): `d = amax/127`, `q = round(x/d)` half away from zero.
///
/// `src.len()` must equal `dst.len() * 32`.
pub fn quantize_row(src: &[f32], dst: &mut [BlockQ8_0]) {
    assert_eq!(
        src.len(),
        dst.len() * QK,
        "q8_0 row length must be a multiple of 32"
    );
    for (x, b) in src.chunks_exact(QK).zip(dst.iter_mut()) {
        *b = quantize_block(x);
    }
}

#[inline]
pub fn quantize_block(x: &[f32]) -> BlockQ8_0 {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK];
    for (q, v) in qs.iter_mut().zip(x) {
        // f32::round rounds half away from zero, as llama.cpp's roundf does.
        *q = (v * id).round() as i8;
    }
    BlockQ8_0 {
        d: f16::from_f32(d),
        qs,
    }
}

pub fn dequantize_row(src: &[BlockQ8_0], dst: &mut [f32]) {
    assert_eq!(
        dst.len(),
        src.len() * QK,
        "q8_0 row length must be a multiple of 32"
    );
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (o, q) in y.iter_mut().zip(b.qs) {
            *o = d * f32::from(q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        let x: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 31.5) * 0.013)
            .collect();
        let mut b = vec![BlockQ8_0::default(); 2];
        quantize_row(&x, &mut b);
        let mut y = vec![0.0; 64];
        dequantize_row(&b, &mut y);
        for (blk, (xs, ys)) in b.iter().zip(x.chunks(32).zip(y.chunks(32))) {
            let d = blk.d.to_f32();
            for (a, c) in xs.iter().zip(ys) {
                // f16 rounding of d adds at most 127 * d * 2^-11 on top of half a step.
                assert!(
                    (a - c).abs() <= d * 0.5 + d * 127.0 / 2048.0 + 1e-7,
                    "{a} vs {c}"
                );
            }
        }
    }

    #[test]
    fn zero_block_has_zero_scale_and_values() {
        let b = quantize_block(&[0.0; 32]);
        assert_eq!(b.d.to_f32(), 0.0);
        assert!(b.qs.iter().all(|&q| q == 0));
    }

    #[test]
    fn extreme_value_maps_to_127_with_its_sign() {
        let mut x = [0.5f32; 32];
        x[7] = -2.0;
        let b = quantize_block(&x);
        assert_eq!(b.qs[7], -127);
        assert_eq!(b.qs[0], 32); // 0.5 / (2/127) = 31.75 -> 32
    }
}
