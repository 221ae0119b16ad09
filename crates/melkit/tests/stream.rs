//! Streaming: a signal pushed in pieces of any size gives, concatenated, exactly the tensor of
//! the whole signal (resampling included), each long segment as soon as its last sample is in.

use melkit::{BackendKind, Config, Pipeline, Streamer};

fn signal(n: usize, rate: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (0.4 * (2.0 * std::f64::consts::PI * 300.0 * t * (1.0 + t)).sin()
                + 0.1 * ((i * 7919 % 1000) as f64 / 500.0 - 1.0)) as f32
        })
        .collect()
}

fn pipeline(keys: &[(&str, &str)]) -> Pipeline {
    let mut config = Config::default();
    for (k, v) in keys {
        config.set(k, v).unwrap();
    }
    Pipeline::new(config, BackendKind::Cpu).unwrap()
}

/// Pushes `samples` in pieces of the sizes given (cycled), checking each piece gives exactly
/// the segments it completes; returns the concatenation.
fn streamed(p: &mut Pipeline, samples: &[f32], rate: u32, pieces: &[usize]) -> Vec<f32> {
    let mut s = Streamer::new(p, rate).unwrap();
    let (mut out, mut at, mut i) = (Vec::new(), 0, 0);
    while at < samples.len() {
        let end = (at + pieces[i % pieces.len()]).min(samples.len());
        out.extend_from_slice(s.push(p, &samples[at..end]).unwrap().data());
        at = end;
        i += 1;
    }
    out.extend_from_slice(s.finish(p).unwrap().data());
    assert!(s.push(p, &[0.0]).is_err(), "a finished stream takes no more");
    out
}

#[test]
fn pieces_of_any_size_give_the_whole_signals_tensor() {
    for keys in [
        &[][..],
        &[("sample_length", "full")][..],
        &[("long_segment_hop", "0.125"), ("sample_length", "3.3")][..],
    ] {
        for rate in [4096, 8000, 44100] {
            let mut p = pipeline(keys);
            let samples = signal(rate as usize * 7 + 123, rate);
            let whole = p.process_signal(&samples, rate).unwrap();
            for pieces in [&[1usize, 1000, 37][..], &[4096][..], &[samples.len()][..]] {
                let got = streamed(&mut p, &samples, rate, pieces);
                assert!(got == whole.data(), "{keys:?} at {rate} Hz in pieces of {pieces:?}");
            }
        }
    }
}

#[test]
fn a_segment_comes_out_with_its_last_sample() {
    let mut p = pipeline(&[("sample_length", "full")]);
    let plan = p.plan().clone();
    let mut s = Streamer::new(&p, 4096).unwrap();
    let samples = signal(plan.long_len * 3, 4096);
    let first = s.push(&mut p, &samples[..plan.long_len - 1]).unwrap();
    assert_eq!(first.shape()[0], 0);
    let one = s.push(&mut p, &samples[plan.long_len - 1..plan.long_len]).unwrap();
    assert_eq!(one.shape(), plan.shape(1));
}

#[test]
fn scaling_over_the_whole_signal_cannot_stream() {
    let p = pipeline(&[("scale", "db"), ("top_db", "80")]);
    let e = Streamer::new(&p, 4096).err().unwrap().to_string();
    assert!(e.contains("streaming needs element-wise scaling"), "{e}");
}
