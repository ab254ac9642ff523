#!/usr/bin/env python3
"""Writes the settings table of docs/CONFIGURATION.md from `switchboard serve --help` (the settings' one definition).

Usage: scripts/configuration-table.py [SWITCHBOARD_BIN]  (default .build/debug/switchboard); rewrites the table in
place. A test (NodeConfigurationTests.documented) fails when the table and the definitions differ."""
import re, subprocess, sys

binary = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/switchboard"
help_text = subprocess.run([binary, "serve", "--help"], check=True, capture_output=True, text=True).stdout
lines = help_text.split("\n")
rows = []
for flag_line, text_line in zip(lines, lines[1:]):
    if not flag_line.startswith("  --") or "(env SWITCHBOARD_" not in text_line:
        continue
    flag = flag_line.strip()
    match = re.match(r"(.*) \(env (SWITCHBOARD_[A-Z_]+)(?:; default:? (.*))?\)$", text_line.strip())
    assert match, text_line
    text, variable, default = match.groups()
    if default is None:
        default = "none"
    elif not default.startswith(("the ", "no ", "none", "a ", "an ")) and ":" not in default and " " not in default:
        default = f"`{default}`"
    name, _, rest = flag.partition(" ")
    cell = f"`{name} {rest.replace(' (repeatable)', '')}`".replace(" `", "`") if rest else f"`{name}`"
    if "(repeatable)" in rest:
        cell += " (repeatable)"
    rows.append(f"| {cell} | `{variable}` | {default} | {text} |")

path = "docs/CONFIGURATION.md"
document = open(path).read().split("\n")
start = next(i for i, line in enumerate(document) if line.startswith("| `--"))
end = start
while end < len(document) and document[end].startswith("| `--"):
    end += 1
open(path, "w").write("\n".join(document[:start] + rows + document[end:]))
