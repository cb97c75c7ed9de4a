//! The arithmetic of vector search: dot products in f32 and half precision
//! (AVX2, FMA and F16C when the CPU has them, portable loops otherwise) and
//! the one L2 normalisation every vector goes through.

/// Dot product in 16 independent lanes, so the compiler vectorises it.
pub(super) fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let (chunks_a, chunks_b) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for j in 0..16 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut width = 8;
    while width > 0 {
        for j in 0..width {
            acc[j] += acc[j + width];
        }
        width /= 2;
    }
    acc[0] + tail
}

/// Dot product with AVX2 and FMA: four 8-lane accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };
    let n = a.len().min(b.len());
    let blocks = n / 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    for block in 0..blocks {
        for (k, lane) in acc.iter_mut().enumerate() {
            let at = block * 32 + k * 8;
            // SAFETY: at + 8 <= blocks * 32 <= n, the length of both slices.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(a.as_ptr().add(at)),
                    _mm256_loadu_ps(b.as_ptr().add(at)),
                )
            };
            *lane = _mm256_fmadd_ps(x, y, *lane);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds exactly 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    let tail: f32 = a[blocks * 32..n]
        .iter()
        .zip(&b[blocks * 32..n])
        .map(|(x, y)| x * y)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// Dot product (cosine for unit vectors); with AVX2 and FMA when the CPU
/// has them (several times faster than the SSE2 baseline the crate is
/// compiled for; results differ from it in the last bits).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { dot_avx2(a, b) };
    }
    dot_lanes(a, b)
}

/// IEEE half-precision vectors, as the HNSW graph stores them: half the
/// memory of f32, and a cosine error below 1e-3 for unit vectors (10
/// mantissa bits), well under the gaps that decide a ranking.
pub(super) type Half = half::f16;

/// `v / scale` in half precision (round to nearest even; F16C when the CPU
/// has it), into `out`.
pub(super) fn to_half(v: &[f32], scale: f32, out: &mut Vec<Half>) {
    use half::slice::HalfFloatSliceExt;
    out.clear();
    out.resize(v.len(), Half::ZERO);
    // The same division as `normalize`, so a build and a load's check
    // round every vector to the same bits.
    let mut scaled = [0f32; 64];
    for (from, to) in v.chunks(64).zip(out.chunks_mut(64)) {
        for (s, x) in scaled.iter_mut().zip(from) {
            *s = x / scale;
        }
        to.convert_from_f32_slice(&scaled[..from.len()]);
    }
}

/// The same 16 bits as USearch's own half type.
pub(super) fn as_usearch(v: &[Half]) -> &[usearch::f16] {
    // SAFETY: both types are `repr(transparent)` over 16 bits (IEEE half),
    // so the slices have the same layout.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), v.len()) }
}

pub(super) fn as_usearch_mut(v: &mut [Half]) -> &mut [usearch::f16] {
    // SAFETY: as in `as_usearch`.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), v.len()) }
}

/// Dot product of two half-precision vectors with AVX2, FMA and F16C:
/// eight halves widened to f32 per load, four 8-lane accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_half_avx2(a: &[Half], b: &[Half]) -> f32 {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm256_add_ps, _mm256_cvtph_ps, _mm256_fmadd_ps,
        _mm256_setzero_ps, _mm256_storeu_ps,
    };
    let n = a.len().min(b.len());
    let blocks = n / 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    for block in 0..blocks {
        for (k, lane) in acc.iter_mut().enumerate() {
            let at = block * 32 + k * 8;
            // SAFETY: at + 8 <= blocks * 32 <= n, the length of both slices;
            // the loads are unaligned.
            let (x, y) = unsafe {
                (
                    _mm256_cvtph_ps(_mm_loadu_si128(a.as_ptr().add(at).cast::<__m128i>())),
                    _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(at).cast::<__m128i>())),
                )
            };
            *lane = _mm256_fmadd_ps(x, y, *lane);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds exactly 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    lanes.iter().sum::<f32>() + dot_half_plain(&a[blocks * 32..n], &b[blocks * 32..n])
}

pub(super) fn dot_half_plain(a: &[Half], b: &[Half]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x.to_f32() * y.to_f32()).sum()
}

/// The fastest half-precision dot product this CPU runs, chosen once (the
/// graph calls it for every distance).
pub(super) fn dot_half_kernel() -> fn(&[Half], &[Half]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
    {
        // SAFETY: the CPU supports AVX2, FMA and F16C, checked just above.
        return |a, b| unsafe { dot_half_avx2(a, b) };
    }
    dot_half_plain
}

/// What [`normalize`] divides `v` by: its norm, or 1 when it is already
/// unit length (or zero).
pub(super) fn unit_scale(v: &[f32]) -> f32 {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 && (norm - 1.0).abs() > 1e-6 {
        norm
    } else {
        1.0
    }
}

/// `v` scaled to unit length (a zero vector stays zero).
pub fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let scale = unit_scale(&v);
    if scale != 1.0 {
        v.iter_mut().for_each(|x| *x /= scale);
    }
    v
}
