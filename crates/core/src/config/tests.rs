//! Tests of configuration parsing, TOML, JSON and validation messages.

use super::*;

fn err(pairs: &[(&str, &str)]) -> String {
    let mut c = Config::default();
    for (k, v) in pairs {
        if let Err(e) = c.set(k, v) {
            return e.to_string();
        }
    }
    c.validate().expect_err("configuration should be invalid").to_string()
}

#[test]
fn defaults_are_the_spec_defaults() {
    let c = Config::default();
    c.validate().unwrap();
    assert_eq!(c.get("sample_rate").unwrap(), "4096");
    assert_eq!(c.get("sample_length").unwrap(), "10.0");
    assert_eq!(c.get("long_segment_hop").unwrap(), "none");
    assert_eq!(c.get("window").unwrap(), "hann");
    assert_eq!(c.get("ref").unwrap(), "1.0");
    assert_eq!(c.get("amin").unwrap(), "1e-10");
    assert_eq!(c.long_hop_seconds(), 0.25);
    assert_eq!(c.fmax_hz(), 2048.0);
}

#[test]
fn every_key_has_a_setter_and_a_value() {
    for key in KEYS {
        let mut c = Config::default();
        let value = c.get(key.name).unwrap_or_else(|| panic!("{} has no value", key.name));
        c.set(key.name, &value).unwrap_or_else(|e| panic!("{}: {e}", key.name));
        assert_eq!(c, Config::default(), "{} does not round-trip", key.name);
    }
    let json = Config::default().to_json();
    assert_eq!(json.as_object().unwrap().len(), KEYS.len());
}

#[test]
fn each_invalid_key_names_itself() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("n_fft", "0")], "`n_fft` = 0 is invalid: must be an integer from 2 to 65536"),
        (&[("n_fft", "-4")], "`n_fft` = -4 is invalid: must be an integer from 2 to 65536"),
        (&[("n_fft", "abc")], "`n_fft` = abc is invalid: must be an integer from 2 to 65536"),
        (
            &[("sample_rate", "0")],
            "`sample_rate` = 0 is invalid: must be an integer from 1 to 1536000 (Hz)",
        ),
        (
            &[("sample_length", "-1")],
            "`sample_length` = -1.0 is invalid: must be a number of seconds > 0 (from one sample to 2^32 samples), or \"full\" for the whole file",
        ),
        (&[("hop_length", "0")], "`hop_length` = 0 is invalid: must be an integer >= 1"),
        (&[("n_mels", "0")], "`n_mels` = 0 is invalid: must be an integer from 1 to 2048"),
        (
            &[("short_segment_points", "2048")],
            "`short_segment_points` = 2048 is invalid: must be an integer from 1 to 1024, the long segment's length in samples (long_segment_scale 0.25 s at sample_rate 4096 Hz)",
        ),
        (
            &[("center", "false"), ("n_fft", "1024")],
            "`n_fft` = 1024 is invalid: must be an integer from 2 to short_segment_points (512) when center = false",
        ),
        (
            &[("fmax", "3000")],
            "`fmax` = 3000.0 is invalid: must be a number of Hz above fmin and at most sample_rate / 2 (2048), or \"none\" for sample_rate / 2",
        ),
        (
            &[("fmin", "2048")],
            "`fmin` = 2048.0 is invalid: must be a number of Hz >= 0, below fmax (2048)",
        ),
        (
            &[("win_length", "300")],
            "`win_length` = 300 is invalid: must be an integer from 1 to n_fft (256), or \"none\" for n_fft",
        ),
        (
            &[("window", "kaiser")],
            "`window` = kaiser is invalid: must be one of hann, hamming, blackman, boxcar",
        ),
        (&[("mel_scale", "bark")], "`mel_scale` = bark is invalid: must be one of slaney, htk"),
        (&[("power", "0")], "`power` = 0.0 is invalid: must be a number > 0"),
        (
            &[("sample_length", "1e300")],
            "`sample_length` = 1e+300 is invalid: must be a number of seconds > 0 (from one sample to 2^32 samples), or \"full\" for the whole file",
        ),
        (
            &[("long_segment_scale", "5000")],
            "`long_segment_scale` = 5000.0 is invalid: must be a number of seconds > 0 (from one sample to 2^24 samples)",
        ),
        (
            &[("sample_rate", "2000000")],
            "`sample_rate` = 2000000 is invalid: must be an integer from 1 to 1536000 (Hz)",
        ),
        (&[("n_fft", "131072")], "`n_fft` = 131072 is invalid: must be an integer from 2 to 65536"),
        (&[("n_mels", "5000")], "`n_mels` = 5000 is invalid: must be an integer from 1 to 2048"),
        (
            &[
                ("long_segment_scale", "1000"),
                ("short_segment_points", "4096000"),
                ("hop_length", "1"),
            ],
            "`hop_length` = 1 is invalid: must be large enough that one long segment (1 short segments x 4096001 frames x 129 bins) holds at most 67108864 values",
        ),
        (&[("amin", "0")], "`amin` = 0.0 is invalid: must be a number > 0"),
        (
            &[("ref", "-1")],
            "`ref` = -1.0 is invalid: must be a number > 0, or \"max\" for each file's maximum",
        ),
        (
            &[("top_db", "-3")],
            "`top_db` = -3.0 is invalid: must be a number >= 0, or \"none\" for no clipping",
        ),
        (
            &[("long_segment_hop", "0")],
            "`long_segment_hop` = 0.0 is invalid: must be a number of seconds > 0 (from one sample to 2^32 samples), or \"none\" for long_segment_scale",
        ),
        (
            &[("short_segment_hop", "0")],
            "`short_segment_hop` = 0 is invalid: must be an integer >= 1, or \"none\" for short_segment_points",
        ),
        (&[("power", "nan")], "`power` = nan is invalid: must be a number > 0"),
        (&[("center", "maybe")], "`center` = maybe is invalid: must be true or false"),
        (&[("dtype", "f64")], "`dtype` = f64 is invalid: must be one of f32, f16"),
        (
            &[("pad_mode", "reflect"), ("short_segment_points", "100")],
            "`pad_mode` = reflect is invalid: must be constant when n_fft / 2 (128) is not below short_segment_points (100): reflect padding needs a longer segment",
        ),
        (&[("nfft", "256")], "unknown configuration key `nfft` (did you mean `n_fft`?)"),
        (&[("colour", "red")], "unknown configuration key `colour`"),
    ];
    for (pairs, message) in cases {
        assert_eq!(&err(pairs), message, "for {pairs:?}");
    }
}

#[test]
fn sizes_take_binary_suffixes() {
    assert_eq!(parse_size("0"), Some(0));
    assert_eq!(parse_size("1048576"), Some(1 << 20));
    assert_eq!(parse_size("64M"), Some(64 << 20));
    assert_eq!(parse_size("1.5G"), Some(3 << 29));
    assert_eq!(parse_size("512KiB"), Some(512 << 10));
    assert_eq!(parse_size("2 GB"), Some(2 << 30));
    assert_eq!(parse_size("lots"), None);
    assert_eq!(parse_size("-5M"), None);
    let mut c = Config::default();
    c.set("memory_limit", "96M").unwrap();
    assert_eq!(c.memory_limit, 96 << 20);
    assert_eq!(
        c.set("memory_limit", "a lot").unwrap_err().to_string(),
        "`memory_limit` = a lot is invalid: must be a size in bytes, with K, M or G for KiB, MiB or GiB (\"64M\"), or 0 for automatic"
    );
}

#[test]
fn python_rounding_is_half_to_even() {
    let mut c = Config::default();
    c.set("sample_rate", "8001").unwrap();
    // 0.5 s at 8001 Hz is 4000.5 samples: Python's round() gives 4000.
    assert_eq!(c.seconds_to_samples(0.5), 4000);
    assert_eq!(c.seconds_to_samples(1.5 / 8001.0), 2);
}

#[test]
fn toml_sets_keys_and_full_means_unset() {
    let c = Config::from_toml_str(
        "sample_rate = 8000\nsample_length = \"full\"\nn_mels = 40\nmel_scale = \"htk\"\n\
         center = false\nshort_segment_points = 512\nn_fft = 512\nfmax = 3800.0\nref = \"max\"\n",
    )
    .unwrap();
    assert_eq!(c.sample_rate, 8000);
    assert_eq!(c.sample_length, None);
    assert_eq!(c.n_mels, 40);
    assert_eq!(c.mel_scale, MelScale::Htk);
    assert!(!c.center);
    assert_eq!(c.fmax, Some(3800.0));
    assert_eq!(c.ref_level, RefLevel::Max);
}

#[test]
fn toml_errors_name_the_problem() {
    let e = Config::from_toml_str("n_fft = \"big\"").unwrap_err();
    assert_eq!(e.to_string(), "`n_fft` = big is invalid: must be an integer from 2 to 65536");
    let e = Config::from_toml_str("n_ftt = 512").unwrap_err();
    assert_eq!(e.to_string(), "unknown configuration key `n_ftt` (did you mean `n_fft`?)");
    let e = Config::from_toml_str("n_fft = [1, 2]").unwrap_err();
    assert_eq!(e.to_string(), "`n_fft` = [1,2] is invalid: must be an integer from 2 to 65536");
    let e = Config::from_toml_str("n_fft = ").unwrap_err();
    assert!(e.to_string().starts_with("TOML syntax error: "), "{e}");
}

#[test]
fn flags_override_the_file() {
    let mut c = Config::default();
    c.apply_toml("n_mels = 40\nfmin = 20.0").unwrap();
    c.set("n_mels", "128").unwrap(); // a flag given after the file
    c.validate().unwrap();
    assert_eq!((c.n_mels, c.fmin), (128, 20.0));
}

#[test]
fn json_round_trips() {
    let mut c = Config::default();
    for (k, v) in [("sample_length", "full"), ("ref", "max"), ("top_db", "80"), ("dtype", "f16")] {
        c.set(k, v).unwrap();
    }
    let mut back = Config::default();
    back.apply_json(&c.to_json()).unwrap();
    assert_eq!(back, c);
}
