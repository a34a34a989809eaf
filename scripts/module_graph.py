#!/usr/bin/env python3
"""The module graph of each workspace crate, and its import circles.

    python3 scripts/module_graph.py            # every crate: arrows and circles; exit 1 on a circle
    python3 scripts/module_graph.py --dot      # the arrows, for graphviz

A node is a top-level module of a crate (`src/foo.rs` or `src/foo/`); an arrow `a -> b` means a
non-test line of `a` names `crate::b` (directly, in a `use` tree, or through a re-export of
`lib.rs`). In a crate with an `engine` module (doorward-core), a module that imports it is a
flow, and no module may import a flow. Test modules (`tests.rs`, `tests/`, and the `#[cfg(test)] mod tests` block at the end
of a file) are left out: a test may use anything. The house rule (docs/architecture.md): no
circle in any crate.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def strip_tests(text):
    """Drops `#[cfg(test)]` items: a `mod tests` block (to its closing brace) or one item."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        j = m.end()
        # skip the item: to the end of a `;` line or a balanced `{}` block
        depth, k = 0, j
        while k < len(text):
            c = text[k]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    k += 1
                    break
            elif c == ";" and depth == 0:
                k += 1
                break
            k += 1
        i = k
    out.append(text[i:])
    return "".join(out)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def use_trees(text):
    """The paths of every `use crate::…;` tree, flattened (`crate::{a::X, b}` -> a::X, b)."""
    paths = []
    for m in re.finditer(r"\buse\s+crate::([^;]*);", text, flags=re.S):
        paths.extend(flatten(m.group(1).replace("\n", " ")))
    return paths


def flatten(tree):
    tree = tree.strip()
    if tree.startswith("{") and tree.endswith("}"):
        return [p for part in split_top(tree[1:-1]) for p in flatten(part)]
    m = re.match(r"([A-Za-z0-9_]+)\s*::\s*(.*)$", tree, flags=re.S)
    if m:
        return [m.group(1) + "::" + p for p in flatten(m.group(2))] or [m.group(1)]
    return [tree.split(" as ")[0].strip()] if tree else []


def split_top(s):
    parts, depth, cur = [], 0, ""
    for c in s:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    return [p for p in parts if p.strip()]


def crate_graph(src):
    modules = {}
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if name in ("lib.rs", "main.rs") or name == "tests.rs" or name == "tests":
            continue
        if name.endswith(".rs"):
            modules.setdefault(name[:-3], []).append(path)
        elif os.path.isdir(path):
            for dirpath, _, files in os.walk(path):
                if os.path.basename(dirpath) == "tests":
                    continue
                for f in files:
                    if f.endswith(".rs") and f != "tests.rs":
                        modules.setdefault(name, []).append(os.path.join(dirpath, f))
    root = next((os.path.join(src, f) for f in ("lib.rs", "main.rs") if os.path.exists(os.path.join(src, f))), None)
    reexports = {}
    if root:
        text = strip_comments(open(root).read())
        for m in re.finditer(r"\bpub(?:\([a-z]+\))?\s+use\s+([^;]*);", text, flags=re.S):
            for p in flatten(m.group(1).replace("\n", " ")):
                p = p.removeprefix("crate::").removeprefix("self::")
                head, _, rest = p.partition("::")
                if head in modules and rest:
                    reexports[rest.split("::")[-1]] = head
    edges = {m: set() for m in modules}
    for mod, files in modules.items():
        for f in files:
            text = strip_comments(strip_tests(open(f).read()))
            names = use_trees(text) + re.findall(r"\bcrate::([A-Za-z0-9_]+(?:::[A-Za-z0-9_]+)?)", text)
            # `super::x` from a file in a module's folder is that module's own business
            for p in names:
                head = p.split("::")[0]
                target = head if head in modules else reexports.get(head)
                if target and target != mod:
                    edges[mod].add(target)
    return edges


def circles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    dot = "--dot" in sys.argv
    failed = False
    crates_dir = os.path.join(ROOT, "crates")
    targets = [os.path.join(crates_dir, c, "src") for c in sorted(os.listdir(crates_dir))]
    targets += [os.path.join(ROOT, "examples", e, "src") for e in sorted(os.listdir(os.path.join(ROOT, "examples")))]
    for src in targets:
        if not os.path.isdir(src):
            continue
        crate = os.path.relpath(os.path.dirname(src), ROOT)
        edges = crate_graph(src)
        found = circles(edges)
        if dot:
            print(f'digraph "{crate}" {{')
            for a in sorted(edges):
                for b in sorted(edges[a]):
                    print(f'  "{a}" -> "{b}";')
            print("}")
            continue
        arrows = sum(len(v) for v in edges.values())
        print(f"{crate}: {len(edges)} modules, {arrows} arrows, {len(found)} circle(s)")
        for comp in found:
            failed = True
            print(f"  circle of {len(comp)}: {' '.join(comp)}")
        # The engine's rule: a flow (a module that imports `engine`, i.e. extends `Engine`) is
        # imported by no other module; what flows share lives on a floor below `Engine`.
        if "engine" in edges:
            flows = {m for m, targets in edges.items() if "engine" in targets}
            for m in sorted(edges):
                for f in sorted(edges[m] & flows):
                    failed = True
                    print(f"  {m} imports the flow {f}: move what they share below Engine")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
