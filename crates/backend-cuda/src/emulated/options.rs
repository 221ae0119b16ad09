//! The emulated devices' settings: how many, their memory, their shared memory, whether cuFFT
//! is there, and the faults to inject; from code, or from `MELKIT_CUDA_EMULATED` for the CLI.

use crate::FftPath;

/// Faults injected on an emulator's devices, counted from 1 over all its devices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The k-th device allocation runs out of memory.
    pub oom_at_allocation: Option<u64>,
    /// The k-th kernel launch runs out of memory.
    pub oom_at_launch: Option<u64>,
    /// The k-th kernel launch fails (reported when its stream is synchronised).
    pub error_at_launch: Option<u64>,
}

/// Emulated CUDA devices (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emulator {
    /// Devices.
    pub devices: usize,
    /// Memory of each device, in bytes.
    pub memory: usize,
    /// Dynamic shared memory a block may have, in bytes.
    pub shared_memory: usize,
    /// Whether cuFFT is there.
    pub fft: bool,
    /// Faults to inject.
    pub faults: Faults,
    /// The FFT path the CLI's backend takes (both are timed and the faster kept when unset).
    pub path: Option<FftPath>,
}

impl Default for Emulator {
    /// One device with 1 GiB of memory, 48 KiB of shared memory and cuFFT; no faults.
    fn default() -> Self {
        Emulator {
            devices: 1,
            memory: 1 << 30,
            shared_memory: 48 << 10,
            fft: true,
            faults: Faults::default(),
            path: None,
        }
    }
}

/// The variable the CLI's `cuda-emulated` backend reads its settings from.
pub const ENV: &str = "MELKIT_CUDA_EMULATED";

impl Emulator {
    /// The settings in `MELKIT_CUDA_EMULATED` (the defaults where it is unset).
    ///
    /// # Errors
    /// A malformed setting, in words.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(ENV) {
            Ok(spec) => Self::parse(&spec),
            Err(_) => Ok(Self::default()),
        }
    }

    /// Settings from `key=value` pairs separated by commas: `devices=2`, `memory=64M`,
    /// `shared=32K`, `fft=off`, `oom_allocation=3`, `oom_launch=2`, `error_launch=5`,
    /// `path=fused` (or `cufft`).
    ///
    /// # Errors
    /// An unknown key or a malformed value, in words.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut e = Self::default();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) =
                pair.split_once('=').ok_or_else(|| format!("{ENV}: `{pair}` is not key=value"))?;
            let bad = || format!("{ENV}: `{pair}`: bad value");
            let count = || value.parse::<u64>().map_err(|_| bad());
            match key {
                "devices" => e.devices = count()?.max(1) as usize,
                "memory" => e.memory = bytes(value).ok_or_else(bad)?,
                "shared" => e.shared_memory = bytes(value).ok_or_else(bad)?,
                "fft" => {
                    e.fft = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(bad()),
                    }
                }
                "path" => {
                    e.path = Some(match value {
                        "fused" => FftPath::Fused,
                        "cufft" => FftPath::CuFft,
                        _ => return Err(bad()),
                    })
                }
                "oom_allocation" => e.faults.oom_at_allocation = Some(count()?),
                "oom_launch" => e.faults.oom_at_launch = Some(count()?),
                "error_launch" => e.faults.error_at_launch = Some(count()?),
                _ => return Err(format!("{ENV}: unknown setting `{key}`")),
            }
        }
        Ok(e)
    }
}

/// A size such as `4096`, `48K`, `64M` or `2G`.
fn bytes(value: &str) -> Option<usize> {
    let (digits, shift) = match value.chars().last()? {
        'K' | 'k' => (&value[..value.len() - 1], 10),
        'M' | 'm' => (&value[..value.len() - 1], 20),
        'G' | 'g' => (&value[..value.len() - 1], 30),
        _ => (value, 0),
    };
    digits.parse::<usize>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_bad_ones_are_named() {
        let e = Emulator::parse(
            "devices=2, memory=64M,shared=32K,fft=off,oom_allocation=3,error_launch=5,path=cufft",
        )
        .unwrap();
        assert_eq!(e.path, Some(FftPath::CuFft));
        assert_eq!((e.devices, e.memory, e.shared_memory, e.fft), (2, 64 << 20, 32 << 10, false));
        assert_eq!(
            e.faults,
            Faults { oom_at_allocation: Some(3), oom_at_launch: None, error_at_launch: Some(5) }
        );
        assert_eq!(Emulator::parse("").unwrap(), Emulator::default());
        assert_eq!(
            Emulator::parse("gpus=2").unwrap_err(),
            "MELKIT_CUDA_EMULATED: unknown setting `gpus`"
        );
        assert_eq!(
            Emulator::parse("memory=lots").unwrap_err(),
            "MELKIT_CUDA_EMULATED: `memory=lots`: bad value"
        );
        assert_eq!(
            Emulator::parse("fft").unwrap_err(),
            "MELKIT_CUDA_EMULATED: `fft` is not key=value"
        );
    }
}
