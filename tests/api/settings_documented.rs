//! The settings a fork sees on day one: `.env.example` and the README's
//! settings table list exactly the variables Porter reads, and the defaults
//! `.env.example` shows are the ones Porter uses.
//!
//! These tests read files rather than pages: the "user" here is whoever
//! copies `.env.example` to `.env` and trusts it.

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use porter::{settings::Settings, testing::TEST_SECRET_KEY};

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn is_setting_name(name: &str) -> bool {
    name.len() > 1
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every `NAME` in `text` written as `PREFIX"NAME"`, such as `get("BIND")`.
fn quoted_names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    text.split(prefix)
        .skip(1)
        .filter_map(|rest| rest.strip_prefix('"')?.split_once('"'))
        .map(|(name, _)| name)
        .filter(|name| is_setting_name(name))
        .map(str::to_owned)
        .collect()
}

/// The variables Porter reads: the names `Settings::from_lookup` asks for,
/// plus every setting name quoted in a call in `src/settings.rs` (for one
/// read only under some condition) and every `env::var("…")` elsewhere in
/// `src/` outside the test helpers.
fn names_porter_reads() -> BTreeSet<String> {
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
    let mut names = asked.into_inner();

    let settings_rs = read("src/settings.rs");
    // The unit tests below `#[cfg(test)]` quote names too, but read none.
    let code = settings_rs.split("#[cfg(test)]").next().unwrap_or_default();
    names.extend(quoted_names_after(code, "("));

    let mut sources = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(path) = sources.pop() {
        if path.ends_with("testing") {
            // TEST_POSTGRES_URL and friends configure tests, not Porter.
            continue;
        }
        if path.is_dir() {
            let entries = std::fs::read_dir(&path).expect("a readable source directory");
            sources.extend(entries.map(|entry| entry.expect("a directory entry").path()));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            names.extend(quoted_names_after(&text, "env::var("));
            names.extend(quoted_names_after(&text, "env::var_os("));
        }
    }
    names
}

/// `.env.example`'s settings, in order, as (name, value, the line above).
fn env_example() -> Vec<(String, String, String)> {
    let text = read(".env.example");
    let mut previous = "";
    let mut settings = Vec::new();
    for line in text.lines() {
        let assignment = line.strip_prefix('#').unwrap_or(line).trim_start();
        if let Some((name, value)) = assignment.split_once('=')
            && is_setting_name(name)
        {
            // Quotes, as dotenv reads them, are not part of the value.
            let value = value.trim();
            let value = ['"', '\'']
                .into_iter()
                .find_map(|quote| value.strip_prefix(quote)?.strip_suffix(quote))
                .unwrap_or(value);
            settings.push((name.to_owned(), value.to_owned(), previous.to_owned()));
        }
        previous = line;
    }
    settings
}

/// The names in the first column of the README's "Settings" table.
fn readme_settings_table() -> BTreeSet<String> {
    let readme = read("README.md");
    let section = readme
        .split("\n## Settings\n")
        .nth(1)
        .expect("the README has a Settings section");
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| ")?.split(" | ").next())
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .filter(|name| is_setting_name(name))
        .map(str::to_owned)
        .collect()
}

fn differences(left: &BTreeSet<String>, right: &BTreeSet<String>) -> String {
    format!(
        "missing: {:?}; not read by Porter: {:?}",
        left.difference(right).collect::<Vec<_>>(),
        right.difference(left).collect::<Vec<_>>(),
    )
}

#[test]
fn env_example_and_the_readme_list_exactly_the_settings_porter_reads() {
    let read_by_porter = names_porter_reads();
    assert!(
        read_by_porter.contains("DATABASE_URL") && read_by_porter.contains("SECRET_KEY"),
        "the scan found the settings: {read_by_porter:?}"
    );

    let example: BTreeSet<String> = env_example().into_iter().map(|(name, ..)| name).collect();
    assert_eq!(
        example,
        read_by_porter,
        ".env.example {}",
        differences(&read_by_porter, &example)
    );

    let readme = readme_settings_table();
    assert_eq!(
        readme,
        read_by_porter,
        "README's settings table {}",
        differences(&read_by_porter, &readme)
    );
}

#[test]
fn every_setting_in_env_example_says_what_it_is_in_a_comment_above_it() {
    for (name, _, above) in env_example() {
        let comment = above.strip_prefix('#').map(str::trim);
        let is_a_setting = comment
            .and_then(|text| text.split_once('='))
            .is_some_and(|(other, _)| is_setting_name(other));
        assert!(
            comment.is_some_and(|text| !text.is_empty()) && !is_a_setting,
            ".env.example: {name} needs a one-line comment of its own above it, not {above:?}"
        );
    }
}

#[test]
fn the_values_in_env_example_are_porters_defaults() {
    // Settings whose default depends on the build or on another setting are
    // left empty in `.env.example`, which Porter reads as unset.
    let fixed = [("DEBUG", "true"), ("SECRET_KEY", TEST_SECRET_KEY)];
    let mut documented: BTreeMap<String, String> = env_example()
        .into_iter()
        .map(|(name, value, _)| (name, value))
        .collect();
    let bare: BTreeMap<String, String> = fixed
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
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
