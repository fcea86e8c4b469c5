//! Build-time work for the adapters:
//! - `sqlx::migrate!` embeds `migrations/` at build time; rebuild when a migration is added or changed.
//! - The bundled destinations are YAML for people to edit, but parsing 750 KB of YAML took most of an
//!   offline `plan`'s 100 ms (issue 15). Here each file is parsed once and written out as compact JSON,
//!   which the binary parses in a few milliseconds. A file that does not parse fails the build, naming it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The bundled destinations, in the order `tripstream destinations` lists them. Adding a destination is
/// adding its file here.
const DESTINATIONS: &[&str] = &[
    "seoul",
    "busan",
    "jeju",
    "gyeongju",
    "jeonju",
    "gangneung",
    "tokyo",
    "osaka",
    "kyoto",
    "bangkok",
    "paris",
    "new-york",
];

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
    println!("cargo:rerun-if-changed=build.rs");

    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/destinations");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut json = Vec::with_capacity(DESTINATIONS.len());
    // The YAML sources too, for the tests that check the JSON against them and edit a file.
    let mut sources = String::from("&[\n");
    for id in DESTINATIONS {
        let file = format!("{id}.yaml");
        let path = data.join(&file);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let value: serde_json::Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("data/destinations/{file}: {e}"));
        json.push(serde_json::json!([file, value]));
        writeln!(sources, "    ({file:?}, include_str!({:?})),", path.display().to_string()).unwrap();
    }
    sources.push_str("]\n");
    std::fs::write(out.join("destinations.json"), serde_json::to_string(&json).unwrap()).unwrap();
    std::fs::write(out.join("destination_sources.rs"), sources).unwrap();
}
