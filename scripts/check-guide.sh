#!/usr/bin/env bash
# Checks that docs/getting-started.md shows the files of examples/getting-started verbatim.
#
# The guide names a file on a line of its own, "`src/account.rs`:", and shows it in the fenced block that
# follows. Each such block must equal the file, byte for byte; a named file that does not exist is an error,
# and so is a file of the project (Cargo.toml, src/, tests/) that the guide does not show. On a difference the
# script prints a unified diff (--- the guide, +++ the file) and exits 1.
#
# Usage: scripts/check-guide.sh [GUIDE] [PROJECT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

guide=${1:-docs/getting-started.md}
project=${2:-examples/getting-started}

python3 - "$guide" "$project" <<'PY'
import difflib
import pathlib
import re
import sys

guide_path, project = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
if not guide_path.is_file():
    sys.exit(f"check-guide: the guide {guide_path} does not exist")
if not project.is_dir():
    sys.exit(f"check-guide: the project {project} does not exist")

lines = guide_path.read_text().splitlines(keepends=True)
label = re.compile(r"^`([^`]+)`:\s*$")
blocks = {}  # file name -> (line number of its label, text shown)
failures = []
i = 0
while i < len(lines):
    match = label.match(lines[i])
    if not match:
        i += 1
        continue
    name, at = match.group(1), i + 1
    j = i + 1
    while j < len(lines) and lines[j].strip() == "":
        j += 1
    if j >= len(lines) or not lines[j].startswith("```"):
        failures.append(f"{guide_path}:{at}: `{name}` is named but no fenced block follows it")
        i = j
        continue
    fence = re.match(r"^`{3,}", lines[j]).group(0)
    k = j + 1
    while k < len(lines) and lines[k].rstrip("\n") != fence:
        k += 1
    if k >= len(lines):
        failures.append(f"{guide_path}:{at}: the block for `{name}` is never closed")
        break
    if name in blocks:
        failures.append(f"{guide_path}:{at}: `{name}` is shown twice (first at line {blocks[name][0]})")
    blocks[name] = (at, "".join(lines[j + 1 : k]))
    i = k + 1

if not blocks and not failures:
    failures.append(f"{guide_path}: names no file (expected lines such as `src/main.rs`: before a block)")

for name, (at, shown) in blocks.items():
    path = project / name
    if not path.is_file():
        failures.append(f"{guide_path}:{at}: shows `{name}`, but {path} does not exist")
        continue
    actual = path.read_text()
    if shown != actual:
        diff = difflib.unified_diff(
            shown.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"{guide_path} (`{name}`, line {at})",
            tofile=str(path),
        )
        failures.append(
            f"{guide_path}:{at}: the block for `{name}` differs from {path}:\n" + "".join(diff).rstrip("\n")
        )

project_files = [project / "Cargo.toml"] + sorted(
    p for folder in ("src", "tests") for p in (project / folder).rglob("*") if p.is_file()
)
for path in project_files:
    name = path.relative_to(project).as_posix()
    if name not in blocks:
        failures.append(f"{guide_path}: does not show {path}; add it as `{name}`: and a block")

if failures:
    print("\n\n".join(failures), file=sys.stderr)
    print(
        f"\ncheck-guide: {guide_path} and {project} differ; make the guide show each file exactly as it is",
        file=sys.stderr,
    )
    sys.exit(1)
print(f"check-guide: {guide_path} shows the {len(blocks)} files of {project} exactly")
PY
