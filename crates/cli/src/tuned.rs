//! The tuning profile's place in `melkit run`: the flags and the configuration file say what
//! the user chose; the library (`melkit_profiler::tuned`) fills in the rest.

use melkit_profiler::tuned::Chosen;

use crate::args::RunArgs;

/// What the user chose on the command line and in the configuration file (`set`).
pub fn chosen(args: &RunArgs, set: &[String]) -> Chosen {
    Chosen {
        backend: args.backend,
        compression: args.compression,
        format: args.format.files().extension().to_string(),
        keys: set.to_vec(),
    }
}
