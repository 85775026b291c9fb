#!/usr/bin/env bash
# Lists the `crate::` edges between mqload's modules and reports every import cycle, so
# "no cycle remains" is checked rather than asserted. Exit 1 when a cycle is found.
#
# Usage: scripts/module-cycles.sh [--edges] [--allow PREFIX]...
#   --edges         also print every edge (from -> to)
#   --allow PREFIX  do not fail on cycles whose modules all start with PREFIX
#                   (e.g. `--allow engine` while another branch reworks the engine)
#
# Two views are checked: rooms (the top-level modules: stats, report, app, ...) and files
# (each .rs file as its own module, e.g. broker::hub, stats::collector).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, sys

args = sys.argv[1:]
show_edges = "--edges" in args
allow = [args[i + 1] for i, a in enumerate(args) if a == "--allow" and i + 1 < len(args)]

def module_of(path):
    parts = path[len("src/"):-len(".rs")].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    return "::".join(p for p in parts if p not in ("lib", "main"))

files = {}
for root, _, names in os.walk("src"):
    for name in names:
        if name.endswith(".rs") and name != "tests.rs":
            path = os.path.join(root, name)
            files[module_of(path)] = open(path, encoding="utf-8").read()
modules = set(files)

def strip_tests(text):
    # `#[cfg(test)] mod tests;` and `#[cfg(test)] mod tests { ... }` (which comes last in a
    # file) are not part of the layering.
    test_mod = r"#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))?\s+)?mod\s+\w+"
    text = re.sub(test_mod + r"\s*;", "", text)
    return re.split(test_mod + r"\s*\{", text)[0]

def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)

def expand(prefix, body):
    """Expands a `use` tree body (`a::{b, c::d}`) into full paths."""
    out, depth, item = [], 0, ""
    for ch in body + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            item = item.strip()
            if item:
                m = re.match(r"^([\w:]*?)(?:::)?\{(.*)\}$", item, re.S)
                if m:
                    head = m.group(1)
                    out += expand(prefix + ([head] if head else []), m.group(2))
                else:
                    out.append(prefix + [item.split(" as ")[0].strip()])
            item = ""
        else:
            item += ch
    return out

def resolve(path):
    """The longest known module that is a prefix of a crate path."""
    parts = [p for seg in path for p in seg.split("::") if p]
    for n in range(len(parts), 0, -1):
        name = "::".join(parts[:n])
        if name in modules:
            return name
    return None

edges = set()
for module, text in files.items():
    code = strip_comments(strip_tests(text))
    targets = []
    parent = module.split("::")[:-1]
    bases = {"crate": [], "super": parent, "self": module.split("::") if module else []}
    for m in re.finditer(r"\buse\s+(crate|super|self)::(\{.*?\}|[\w:]+(?:::\{.*?\})?)\s*;", code, re.S):
        targets += [bases[m.group(1)] + t for t in expand([], m.group(2))]
    for m in re.finditer(r"(?<!use )\b(crate|super)::([\w:]+)", code):
        targets.append(bases[m.group(1)] + [m.group(2)])
    # A parent module reaching into its own children (`pub use child::X`, `child::f()`), and
    # a room's facade standing for its files: whoever imports `crate::stats` may reach any file
    # the facade declares (`mod collector;`), so those count as edges too.
    for m in re.finditer(r"\bmod\s+(\w+)\s*;", code):
        child = module + "::" + m.group(1) if module else m.group(1)
        if child in modules and module:
            targets.append(child.split("::"))
    for m in re.finditer(r"(?<![\w:])(\w+)::", code):
        child = module + "::" + m.group(1) if module else m.group(1)
        if child in modules:
            targets.append(child.split("::"))
    for t in targets:
        to = resolve(t)
        if to and to != module and not module.startswith(to + "::"):
            edges.add((module, to))

def room(m):
    return m.split("::")[0]

def cycles(nodes, graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out

room_graph, file_graph = {}, {}
for a, b in edges:
    file_graph.setdefault(a, set()).add(b)
    if room(a) != room(b):
        room_graph.setdefault(room(a), set()).add(room(b))

if show_edges:
    for a, b in sorted(edges):
        print(f"{a} -> {b}")

failed = False
for title, nodes, graph in (
    ("rooms", {room(m) for m in modules}, room_graph),
    ("files", modules, file_graph),
):
    for comp in cycles(nodes, graph):
        allowed = any(all(m == p or m.startswith(p + "::") for m in comp) for p in allow)
        print(f"cycle among {title}{' (allowed)' if allowed else ''}: {' <-> '.join(comp)}")
        failed |= not allowed
if not failed:
    print("no import cycle" + (f" outside {', '.join(allow)}" if allow else ""))
sys.exit(1 if failed else 0)
PY
