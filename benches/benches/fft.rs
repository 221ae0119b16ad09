//! The bare FFTs: the 256-point real FFT of realfft whose time defines the FFT-bound limit
//! (cores / (frames per file × one FFT)), and the complex and batched forms the backend uses.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use realfft::RealFftPlanner;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

fn fft(c: &mut Criterion) {
    let n = 256;
    let mut group = c.benchmark_group("fft");
    group.throughput(Throughput::Elements(1));

    let r2c = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let (mut input, mut output, mut scratch) =
        (r2c.make_input_vec(), r2c.make_output_vec(), r2c.make_scratch_vec());
    let signal: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    group.bench_function("real_256_f32", |b| {
        b.iter(|| {
            input.copy_from_slice(&signal);
            r2c.process_with_scratch(&mut input, &mut output, &mut scratch).unwrap();
        })
    });

    let r2c64 = RealFftPlanner::<f64>::new().plan_fft_forward(n);
    let (mut input64, mut output64, mut scratch64) =
        (r2c64.make_input_vec(), r2c64.make_output_vec(), r2c64.make_scratch_vec());
    let signal64: Vec<f64> = signal.iter().map(|&x| f64::from(x)).collect();
    group.bench_function("real_256_f64", |b| {
        b.iter(|| {
            input64.copy_from_slice(&signal64);
            r2c64.process_with_scratch(&mut input64, &mut output64, &mut scratch64).unwrap();
        })
    });

    let complex = FftPlanner::<f32>::new().plan_fft_forward(n);
    let mut scratch = vec![Complex::default(); complex.get_inplace_scratch_len()];
    let data: Vec<Complex<f32>> =
        (0..n).map(|i| Complex::new(signal[i], signal[n - 1 - i])).collect();
    let mut buffer = data.clone();
    group.bench_function("complex_256_f32 (two real frames)", |b| {
        b.iter(|| {
            buffer.copy_from_slice(&data);
            complex.process_with_scratch(&mut buffer, &mut scratch);
        })
    });

    let batch = 17;
    let data: Vec<Complex<f32>> = (0..n * batch)
        .map(|i| Complex::new((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos()))
        .collect();
    let mut buffer = data.clone();
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("complex_256_f32_batch17 (34 real frames)", |b| {
        b.iter(|| {
            buffer.copy_from_slice(&data);
            complex.process_with_scratch(&mut buffer, &mut scratch);
        })
    });
    group.finish();
}

criterion_group!(benches, fft);
criterion_main!(benches);
