//! The field corpus (`tests/fixtures/field/`, see its README), read for the unit tests: real
//! messages that every signature must be exercised by, and that the classification is replayed
//! against. The integration test `tests/it/field.rs` replays the same files through the binary.

use std::path::{Path, PathBuf};

/// One corpus file.
#[derive(Debug)]
pub struct Entry {
    /// `installer/slug.txt`.
    pub name: String,
    pub installer: String,
    pub class: String,
    /// `N`, `signal:NAME` or `stall`.
    pub exit: String,
    pub body: String,
}

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/field")
}

pub fn load() -> Vec<Entry> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(dir())
        .expect("the field corpus")
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    dirs.sort_by_key(|e| e.file_name());
    for d in dirs {
        let mut files: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        files.sort_by_key(|e| e.file_name());
        for f in files {
            let text = std::fs::read_to_string(f.path()).unwrap();
            let name = format!(
                "{}/{}",
                d.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            );
            out.push(parse(&name, &text));
        }
    }
    out
}

pub fn parse(name: &str, text: &str) -> Entry {
    let (head, body) = text
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("{name}: no blank line after the headers"));
    let header = |key: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
            .unwrap_or_else(|| panic!("{name}: no `{key}` header"))
            .trim()
            .to_owned()
    };
    Entry {
        name: name.to_owned(),
        installer: header("installer"),
        class: header("class"),
        exit: header("exit"),
        body: body.to_owned(),
    }
}

/// The allowed misses (`known-misses.txt`): corpus file name and reason.
pub fn known_misses() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir().join("known-misses.txt")).expect("known-misses.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, why) = l.split_once(": ").expect("`file: reason`");
            (name.to_owned(), why.to_owned())
        })
        .collect()
}
