//! The README documents every configuration key with the default the code has.

use melkit::{Config, KEYS};

#[test]
fn readme_documents_every_key_with_its_default() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let defaults = Config::default();
    for key in KEYS {
        let row = format!("| `{}` | `{}` |", key.name, defaults.get(key.name).unwrap());
        assert!(readme.contains(&row), "README.md lacks the row starting {row}");
    }
}
