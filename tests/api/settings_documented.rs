//! The settings a fork sees on day one: the README's settings table and
//! `.env.example` say exactly what `settings::SETTINGS` declares (each
//! setting's variable, default and meaning), and Porter reads no variable
//! that is not declared there.
//!
//! These tests read files rather than pages: the "user" here is whoever
//! copies `.env.example` to `.env` and trusts it. When one fails it prints
//! the text the file should have, ready to paste.

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use porter::{
    settings::{SETTINGS, SettingDefault, SettingDoc, Settings},
    testing::TEST_SECRET_KEY,
};

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A declaration's `///` lines as one line.
fn meaning(setting: &SettingDoc) -> String {
    setting.doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Markdown without its code marks, for a plain-text file.
fn plain(markdown: &str) -> String {
    markdown.replace('`', "")
}

/// The README table row of a declaration.
fn readme_row(setting: &SettingDoc) -> String {
    let default = match setting.default {
        SettingDefault::Value(value) => format!("`{value}`"),
        SettingDefault::Described(words) => words.to_owned(),
    };
    format!("| `{}` | {default} | {} |", setting.name, meaning(setting))
}

/// The `.env.example` lines of a declaration: what it does, then the
/// variable, commented out, with its default value (empty when the default
/// is worked out at start-up).
fn env_example_lines(setting: &SettingDoc) -> String {
    let mut comment = plain(&meaning(setting));
    if let Some(first) = comment.get(..1) {
        comment.replace_range(..1, &first.to_uppercase());
    }
    let value = match setting.default {
        SettingDefault::Value(value) if value.contains(char::is_whitespace) => {
            format!("\"{value}\"")
        }
        SettingDefault::Value(value) => value.to_owned(),
        SettingDefault::Described(words) => {
            comment.push_str(&format!(". Default: {}", plain(words)));
            String::new()
        }
    };
    format!("# {comment}.\n# {}={value}", setting.name)
}

/// The lines of the README's "Settings" section that are table rows.
fn readme_settings_rows() -> Vec<String> {
    let readme = read("README.md");
    let section = readme
        .split("\n## Settings\n")
        .nth(1)
        .expect("the README has a Settings section");
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(str::to_owned)
        .collect()
}

/// `.env.example` after its opening comment: the settings' paragraphs.
fn env_example_settings() -> String {
    let text = read(".env.example");
    let (_, settings) = text
        .split_once("\n\n")
        .expect(".env.example opens with a comment, then a blank line");
    settings.trim_end().to_owned()
}

#[test]
fn porter_reads_exactly_the_declared_settings() {
    let declared: BTreeSet<&str> = SETTINGS.iter().map(|setting| setting.name).collect();
    assert_eq!(declared.len(), SETTINGS.len(), "a setting declared twice");

    let asked = RefCell::new(BTreeSet::new());
    let dir = tempfile::tempdir().expect("a temporary directory");
    Settings::from_lookup(
        |name| {
            asked.borrow_mut().insert(name.to_owned());
            match name {
                "DEBUG" => Some("true".to_owned()),
                "SECRET_KEY" => Some(TEST_SECRET_KEY.to_owned()),
                _ => None,
            }
        },
        dir.path(),
    )
    .expect("the defaults are valid settings");
    let asked = asked.into_inner();
    assert_eq!(
        asked.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        declared
    );

    // Nothing else in `src/` reads the environment behind the settings'
    // back (the test helpers in `src/testing/` configure tests, not Porter).
    let mut sources = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(path) = sources.pop() {
        if path.ends_with("testing") || path.ends_with("settings.rs") {
            continue;
        }
        if path.is_dir() {
            let entries = std::fs::read_dir(&path).expect("a readable source directory");
            sources.extend(entries.map(|entry| entry.expect("a directory entry").path()));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            assert!(
                !text.contains("env::var"),
                "{} reads the environment; declare a setting in src/settings.rs instead",
                path.display()
            );
        }
    }
}

#[test]
fn the_readme_settings_table_has_a_row_per_declared_setting() {
    let expected: Vec<String> = SETTINGS.iter().map(readme_row).collect();
    assert!(
        readme_settings_rows() == expected,
        "README.md's Settings table does not match src/settings.rs; its rows should read:\n\n{}\n",
        expected.join("\n")
    );
}

#[test]
fn env_example_has_a_paragraph_per_declared_setting() {
    let expected: Vec<String> = SETTINGS.iter().map(env_example_lines).collect();
    let expected = expected.join("\n\n");
    assert!(
        env_example_settings() == expected,
        ".env.example does not match src/settings.rs; below its opening comment it should read:\n\n{expected}\n"
    );
}

#[test]
fn the_values_in_env_example_are_porters_defaults() {
    // Uncommenting every line of `.env.example` changes nothing: its values
    // are the defaults, and an empty value means the default.
    let mut documented: BTreeMap<String, String> = read(".env.example")
        .lines()
        .filter_map(|line| line.strip_prefix("# ")?.split_once('='))
        .filter(|(name, _)| SETTINGS.iter().any(|setting| setting.name == *name))
        .map(|(name, value)| (name.to_owned(), value.trim_matches('"').to_owned()))
        .collect();
    let bare = BTreeMap::from([
        ("DEBUG".to_owned(), "true".to_owned()),
        ("SECRET_KEY".to_owned(), TEST_SECRET_KEY.to_owned()),
    ]);
    documented.extend(bare.clone());

    let dir = tempfile::tempdir().expect("a temporary directory");
    let with_example = Settings::from_lookup(|name| documented.get(name).cloned(), dir.path())
        .expect(".env.example's values are valid settings");
    let without = Settings::from_lookup(|name| bare.get(name).cloned(), dir.path())
        .expect("the defaults are valid settings");
    assert_eq!(
        format!("{with_example:#?}"),
        format!("{without:#?}"),
        "a value in .env.example is not the default"
    );
}
