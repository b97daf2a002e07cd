//! Reading an installer's own arguments (after its launcher): the value of a flag, whether a
//! flag is there, and the subcommand words the row's `writes` paths are matched against.

use std::ffi::OsString;

use super::row::Installer;

/// The value of `flag` in `args` (`--flag VALUE` or `--flag=VALUE`), the last one winning.
pub fn flag_value(args: &[OsString], flag: &str) -> Option<OsString> {
    let mut found = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if arg == flag {
            found = iter.next().cloned();
        } else if let Some(v) = arg
            .to_str()
            .and_then(|a| a.strip_prefix(flag))
            .and_then(|r| r.strip_prefix('='))
        {
            found = Some(v.into());
        }
    }
    found
}

/// Whether `args` holds any of `flags` before a `--`.
pub fn has_flag(args: &[OsString], flags: &[&str]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a.to_str().is_some_and(|a| flags.contains(&a)))
}

/// The subcommand words of `args`: the words that are not options nor option values.
pub(super) fn subcommand_words<'a>(installer: &Installer, args: &'a [OsString]) -> Vec<&'a str> {
    let mut words = Vec::new();
    let mut skip_value = false;
    for arg in args {
        let Some(a) = arg.to_str() else { break };
        if skip_value {
            skip_value = false;
        } else if a == "--" {
            break;
        } else if a.starts_with('-') {
            skip_value = installer.options_with_value.contains(&a);
        } else if installer
            .skip_word_prefixes
            .iter()
            .any(|p| a.starts_with(p))
            && words.is_empty()
        {
        } else {
            words.push(a);
            if words.len() == 3 {
                break;
            }
        }
    }
    words
}

pub(super) fn starts_with_any(words: &[&str], paths: &[&[&str]]) -> bool {
    paths
        .iter()
        .any(|path| words.len() >= path.len() && words[..path.len()] == **path)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::identify::argv;

    #[test]
    fn flag_values() {
        let args = argv("--cache-dir /a x --cache-dir=/b -- --cache-dir /c");
        assert_eq!(flag_value(&args, "--cache-dir"), Some("/b".into()));
        assert!(!has_flag(&args, &["--no-cache"]));
    }
}
