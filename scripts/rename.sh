#!/usr/bin/env bash
# Gives a fork its own name: the crate, its binary, `porter::` paths in the
# tests, examples and docs, the command in the README, environment variables
# such as PORTER_TEST_DATABASE, the default Redis key prefix and SQLite file,
# page titles, and files named after the project (static/porter.css).
#
#   scripts/rename.sh NEWNAME
#
# NEWNAME is lowercase letters, digits and underscores, starting with a
# letter: it becomes the crate, the binary and the Rust path alike. The old
# name is read from Cargo.toml, so a renamed tree can be renamed again.
# `porter` becomes NEWNAME, `Porter` its CamelCase and `PORTER` its upper
# case, wherever the name stands on its own (`porter::`, `porter.db`,
# `PORTER_TEST_DATABASE`), never inside another word (`reporter`).
#
# Left as they are, on purpose:
#   * the licence files (LICENSE-*, *.LICENSE): their copyright lines name
#     who holds it, and the licences ask that they be kept;
#   * src/auth/common_passwords.txt: Django's list, where "porter" is a
#     common password like any other;
#   * what sessions, cookies and database rows already hold, so that a
#     deployed fork's users stay signed in: "porter::auth::ModelBackend",
#     the backend name sessions stored before it became "model", still
#     accepted as an alias (src/auth/backends.rs), and the labels that key
#     derivations start with ("porter.auth.session_auth_hash" and the other
#     "porter.auth.*"); tests/api/dance.rs fails if either changes;
#   * this script, and files git ignores (target/, .env).
#
# Two defaults do change with the name: DATABASE_URL (sqlite://porter.db)
# and REDIS_KEY_PREFIX (porter:session:). A deployment that relies on them
# must now set them to the old values.
#
# Then run `cargo test` and read `git diff`. .ci/run does this on a copy of
# the tree and runs the HTTP suite there.
set -euo pipefail
cd "$(dirname "$0")/.."

new="${1:-}"
if [[ ! "$new" =~ ^[a-z][a-z0-9_]*$ ]]; then
    echo "usage: scripts/rename.sh NEWNAME (lowercase letters, digits and _, starting with a letter)" >&2
    exit 2
fi
case "$new" in
alloc | core | proc_macro | std | test | self | super | crate)
    echo "error: $new is a name Rust already uses; pick another" >&2
    exit 2
    ;;
esac
old="$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
if [ -z "$old" ]; then
    echo "error: no package name in Cargo.toml" >&2
    exit 1
fi
if [ "$old" = "$new" ]; then
    echo "error: the project is already called $new" >&2
    exit 1
fi

# The files to rewrite: what git tracks or would add, or, outside a git work
# tree (a copy), everything but the build output.
files=()
if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$PWD" ]; then
    while IFS= read -r -d '' file; do
        [ -f "$file" ] && files+=("$file")
    done < <(git ls-files -z --cached --others --exclude-standard)
else
    while IFS= read -r -d '' file; do
        files+=("${file#./}")
    done < <(find . -type f -not -path './target/*' -not -path './.git/*' -print0)
fi

export RENAME_OLD="$old" RENAME_NEW="$new"
# Every spelling of the old name standing on its own, replaced, except the
# strings kept on purpose (see the top of this file).
# shellcheck disable=SC2016 # the Perl program is single-quoted on purpose
rename_text='
    BEGIN {
        sub camel { join "", map { ucfirst } split /_/, shift }
        @pairs = (
            [$ENV{RENAME_OLD}, $ENV{RENAME_NEW}],
            [camel($ENV{RENAME_OLD}), camel($ENV{RENAME_NEW})],
            [uc $ENV{RENAME_OLD}, uc $ENV{RENAME_NEW}],
        );
        $kept = qr/(porter::auth::ModelBackend|porter\.auth\.[a-z_]+)/;
    }
    my @pieces = split $kept;
    for my $piece (@pieces) {
        next if $piece =~ /\A$kept\z/;
        for my $pair (@pairs) {
            my ($from, $to) = @$pair;
            $piece =~ s/(?<![A-Za-z0-9])\Q$from\E(?![A-Za-z0-9])/$to/g;
        }
    }
    $_ = join "", @pieces;
'

changed=0
moved=0
for file in "${files[@]}"; do
    case "$file" in
    LICENSE* | *.LICENSE | scripts/rename.sh | src/auth/common_passwords.txt) continue ;;
    esac
    # Text only: the screenshots stay as they are.
    if grep -Iq . "$file" && grep -Iqi "$old" "$file"; then
        before="$(cksum <"$file")"
        perl -pi -e "$rename_text" "$file"
        [ "$before" = "$(cksum <"$file")" ] || changed=$((changed + 1))
    fi
    target="$(printf '%s\n' "$file" | perl -pe "$rename_text")"
    if [ "$target" != "$file" ]; then
        mkdir -p "$(dirname "$target")"
        mv "$file" "$target"
        moved=$((moved + 1))
    fi
done

# Cargo.lock lists packages in name order: let cargo put the renamed one in
# its place (no version changes), so that `cargo build --locked` still works.
cargo metadata --format-version 1 --offline >/dev/null 2>&1 ||
    cargo metadata --format-version 1 >/dev/null

echo "renamed $old to $new: $changed files rewritten, $moved moved"
echo "changed defaults: DATABASE_URL=sqlite://$new.db, REDIS_KEY_PREFIX=$new:session:;"
echo "  a deployment relying on the old ones must set them explicitly"
echo "next: cargo test, then read the diff; the licence files keep their copyright lines"
