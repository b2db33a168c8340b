#!/usr/bin/env python3
"""scripts/layers.py - list the crate's module imports and check them against its layers.

Usage: scripts/layers.py [--list] [--unsafe] [--root DIR] | --self-test
  (no option)  print the layer order, every upward arrow, every cycle; exit 1 if any
  --list       also print every import, module by module ("from -> to: names")
  --unsafe     also count `unsafe` (blocks, functions, impls) per file, outside the
               C API (src/capi), guest memory (src/memory.rs) and the DMA code
               (src/frontend/vfio_user/dma.rs), whose unsafe is their purpose
  --root DIR   the repository (default: this script's parent directory)
  --self-test  check the checker on small made-up trees (an upward arrow, a cycle, a
               clean tree) and exit 0 if it tells them apart

What it reads: every `.rs` file under src/ (src/bin/ is one module, `bin`, in which
`nic_emu::` means this crate). It follows `use` declarations (nested braces, `crate::`,
`super::`, `self::`, a child module's name) and paths written inline in code
(`crate::device::E1000`, `super::Shared`), with comments and string literals left out.
A path ends at the module that defines the name: a name a module re-exports
(`pub use rx::RxOutcome;`) is followed to where it comes from, and the import counts for
the re-exporting module too (the crate root's re-exports excepted). Imports under
`#[cfg(test)]` (unit tests) and `#[cfg(doc)]` (doc links) are listed but not checked.

What it checks:
  * no upward arrow: a module imports only from its own layer or the layers below it
    (LAYERS below, bottom first: the one place the order is written);
  * the device reaches the backend side only through the backend trait and the types in
    its signatures (ONLY below);
  * no cycle: arrows between siblings (the two modules just below the path both share:
    backend::impair -> backend::control, device -> backend) form no loop. An arrow from a
    module to its own parent or child is how Rust splits one type's code over files
    and is not a cycle.
"""

import argparse
import os
import re
import sys

# The layers, bottom first. A module belongs to the layer of the longest prefix listed.
LAYERS = [
    ("base", ["wire", "mac", "clock", "log_limit", "irq", "memory", "sys", "sandbox"]),
    ("backend", ["backend"]),
    ("device", ["device"]),
    ("frontend", ["frontend"]),
    ("program", ["config", "control"]),
    ("embedding", ["capi", "bin", ""]),
]

# Files whose unsafe is their purpose, left out of `--unsafe`'s count (and src/capi/).
UNSAFE_EXEMPT = {"memory.rs", "frontend/vfio_user/dma.rs"}

# Layer pairs where the lower layer may be reached only through some of its names:
# (from-prefix, to-prefix, allowed names). The device knows the backend side by its
# trait and the types in the trait's signatures, nothing else.
ONLY = [
    ("device", "backend", {"PacketBackend", "Gso", "RxOutcome"}),
]


def strip(text):
    """Comments, string and char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)

    def blank(s):
        return "".join(c if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif re.match(r'b?r(#*)"', text[i:i + 8]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
            out.append(blank(text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i:j + 1]))
            i = j + 1
        elif c == "'":
            if text.startswith("\\", i + 1):
                j = text.find("'", i + 2)
                j = n if j < 0 else j + 1
                out.append(blank(text[i:j]))
                i = j
            elif i + 2 < n and text[i + 2] == "'":
                out.append("   ")
                i += 3
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_of(rel):
    """Module path of a file under src/ ('' for lib.rs)."""
    if rel.startswith("bin/"):
        return "bin"
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return "::".join(parts)


USE_RE = re.compile(r"(#\[cfg\(([^\]]*)\)\]\s*)?\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")
MOD_RE = re.compile(r"(#\[cfg\(([^\]]*)\)\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*([;{])")
PATH_RE = re.compile(r"(?<![\w:])((?:crate|super|self|nic_emu|[a-z_][a-z0-9_]*)(?:::[A-Za-z_]\w*)+)")


def cfg_kind(cfg):
    if cfg is None:
        return None
    if re.search(r"\btest\b", cfg) and "not(test" not in cfg:
        return "test"
    if re.fullmatch(r"\s*doc\s*", cfg):
        return "doc"
    return None


def split_as(path):
    # use trees lost their whitespace: `fooasbar` cannot be told from a name, so the
    # caller passes the original text; here only drop a trailing `::*` / `::self`.
    if path.endswith("::*"):
        return path[:-3], True
    if path.endswith("::self"):
        return path[:-6], False
    return path, False


class Crate:
    def __init__(self, root):
        self.src = os.path.join(root, "src")
        self.files = {}  # module -> [relative file paths]
        for d, _, fs in os.walk(self.src):
            for f in fs:
                if f.endswith(".rs"):
                    rel = os.path.relpath(os.path.join(d, f), self.src)
                    self.files.setdefault(module_of(rel), []).append(rel)
        self.modules = set(self.files)
        self.text = {}
        for m, rels in self.files.items():
            self.text[m] = [(r, strip(open(os.path.join(self.src, r), encoding="utf-8").read())) for r in sorted(rels)]
        self.test_modules = set()
        self.reexports = {}  # module -> {name: absolute path}
        for m in self.modules:
            for _, t in self.text[m]:
                for mm in MOD_RE.finditer(t):
                    if mm.group(4) == ";" and cfg_kind(mm.group(2)) == "test":
                        self.test_modules.add(self.join(m, mm.group(3)))
        for m in self.modules:
            self.reexports[m] = {}
            for _, t in self.text[m]:
                for u in USE_RE.finditer(t):
                    if not u.group(3) or cfg_kind(u.group(2)):
                        continue
                    for raw in self.use_paths(u.group(4)):
                        path, glob = split_as(raw[0])
                        a = self.absolute(m, path)
                        if a is None or glob:
                            continue
                        self.reexports[m][raw[1]] = a

    @staticmethod
    def join(m, name):
        return f"{m}::{name}" if m else name

    def use_paths(self, tree):
        """(path, name it is known by) for each leaf of a use tree."""
        out = []
        for item in self._items(tree):
            m = re.match(r"^(.*?)\s+as\s+(\w+)\s*$", item, re.S)
            path, alias = (m.group(1), m.group(2)) if m else (item, None)
            path = re.sub(r"\s+", "", path)
            name = alias or path.split("::")[-1]
            if name == "self":
                name = path.split("::")[-2] if "::" in path else name
            out.append((path, name))
        return out

    def _items(self, tree):
        tree = tree.strip()
        res = []

        def walk(prefix, t):
            depth, start, items = 0, 0, []
            for k, ch in enumerate(t):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                elif ch == "," and depth == 0:
                    items.append(t[start:k])
                    start = k + 1
            items.append(t[start:])
            for it in items:
                it = it.strip()
                if not it:
                    continue
                b = it.find("{")
                if b >= 0 and it.endswith("}"):
                    walk(prefix + re.sub(r"\s+", "", it[:b]), it[b + 1:-1])
                else:
                    res.append(prefix + it)

        walk("", tree)
        return res

    def absolute(self, m, path):
        """The absolute path (crate-relative) `path` names from module `m`, or None for
        another crate's."""
        segs = path.split("::")
        if m == "bin":
            if segs[0] == "nic_emu":
                return "::".join(segs[1:])
            return None
        cur = m.split("::") if m else []
        if segs[0] == "crate":
            return "::".join(segs[1:])
        if segs[0] in ("super", "self"):
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    cur = cur[:-1]
                segs = segs[1:]
            return "::".join(cur + segs)
        if self.join(m, segs[0]) in self.modules:
            return "::".join(cur + segs)
        return None

    def resolve(self, path, depth=0):
        """(module that defines it, name, modules whose re-exports were followed) for an
        absolute path."""
        segs = path.split("::") if path else []
        k = len(segs)
        while k > 0 and "::".join(segs[:k]) not in self.modules:
            k -= 1
        mod = "::".join(segs[:k])
        rest = segs[k:]
        if rest and depth < 8:
            target = self.reexports.get(mod, {}).get(rest[0])
            if target is not None:
                to, name, via = self.resolve("::".join([target] + rest[1:]), depth + 1)
                return to, name, [mod] + via
        return mod, (rest[0] if rest else ""), []

    def inline_test_spans(self, t):
        """Character ranges of `#[cfg(test)] mod x { ... }` blocks."""
        spans = []
        for mm in MOD_RE.finditer(t):
            if mm.group(4) != "{" or cfg_kind(mm.group(2)) != "test":
                continue
            depth, j = 1, mm.end()
            while j < len(t) and depth:
                depth += {"{": 1, "}": -1}.get(t[j], 0)
                j += 1
            spans.append((mm.start(), j))
        return spans

    def inline_mod_at(self, t, pos):
        """Names of the inline modules (`mod x { ... }`) enclosing position `pos`."""
        names = []
        for mm in MOD_RE.finditer(t, 0, pos):
            if mm.group(4) != "{":
                continue
            depth, j = 1, mm.end()
            while j < len(t) and depth:
                depth += {"{": 1, "}": -1}.get(t[j], 0)
                j += 1
            if j > pos:
                names.append(mm.group(3))
        return names

    def imports(self):
        """(from, to, name, kind, file) for every import; kind: use, path, pub-use,
        test, doc."""
        out = []
        for m in sorted(self.modules):
            for rel, t in self.text[m]:
                tests = self.inline_test_spans(t)
                in_test = lambda p: m in self.test_modules or any(a <= p < b for a, b in tests)
                use_spans = []
                for u in USE_RE.finditer(t):
                    use_spans.append((u.start(), u.end()))
                    kind = cfg_kind(u.group(2)) or ("pub-use" if u.group(3) else "use")
                    if in_test(u.start()):
                        kind = "test"
                    scope = m
                    for name in self.inline_mod_at(t, u.start()):
                        scope = self.join(scope, name)
                    for path, _ in self.use_paths(u.group(4)):
                        path, _glob = split_as(path)
                        a = self.absolute_in(scope, m, path)
                        if a is None:
                            continue
                        to, name, via = self.resolve(a)
                        out.append((m, to, name, kind, rel))
                        out.extend((m, v, name, kind, rel) for v in via if v)
                for p in PATH_RE.finditer(t):
                    if any(a <= p.start() < b for a, b in use_spans):
                        continue
                    # `mod x` / `pub(crate) mod x` declarations and `x::` in attributes are not uses
                    line_start = t.rfind("\n", 0, p.start()) + 1
                    if t[line_start:p.start()].lstrip().startswith("#["):
                        continue
                    scope = m
                    for name in self.inline_mod_at(t, p.start()):
                        scope = self.join(scope, name)
                    a = self.absolute_in(scope, m, p.group(1))
                    if a is None:
                        continue
                    to, name, via = self.resolve(a)
                    kind = "test" if in_test(p.start()) else "path"
                    out.append((m, to, name, kind, rel))
                    out.extend((m, v, name, kind, rel) for v in via if v)
        return out

    def absolute_in(self, scope, m, path):
        """Like `absolute`, from inside an inline module `scope` of file module `m`; an
        inline module's own items count as `m`'s."""
        a = self.absolute(scope, path) if scope != m else self.absolute(m, path)
        if a is None and scope != m:
            a = self.absolute(m, path)
        return a


def layer_of(mod):
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (mod == p or mod.startswith(p + "::") or p == "") and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def is_ancestor(a, b):
    return a == "" or b == a or b.startswith(a + "::")


def lift(a, b):
    """The sibling pair just below the common ancestor of `a` and `b`, or None when one
    contains the other."""
    if is_ancestor(a, b) or is_ancestor(b, a):
        return None
    sa, sb = a.split("::"), b.split("::")
    k = 0
    while sa[k] == sb[k]:
        k += 1
    return "::".join(sa[:k + 1]), "::".join(sb[:k + 1])


def sccs(nodes, edges):
    """Tarjan: the strongly connected components with more than one node."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    adj = {n: sorted({b for a, b in edges if a == n}) for n in nodes}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj.get(v, []):
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
    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return out


def self_test():
    """Made-up trees the check must pass or fail."""
    import contextlib
    import io
    import tempfile

    clean = {
        "lib.rs": "pub mod wire;\npub mod backend;\npub mod device;\n",
        "wire/mod.rs": "pub const MAX_FRAME: usize = 16384;\n",
        "backend/mod.rs": "pub mod tap;\npub use tap::Tap;\nuse crate::wire::MAX_FRAME;\n"
        "pub trait PacketBackend {}\npub enum RxOutcome { Delivered }\n",
        "backend/tap.rs": "use super::PacketBackend;\npub struct Tap;\n",
        "device/mod.rs": "pub mod rx;\nuse crate::backend::{PacketBackend, RxOutcome};\n"
        "// use crate::backend::tap::Tap; in a comment\nconst S: &str = \"crate::backend::Tap\";\n",
        "device/rx.rs": "use super::S;\n#[cfg(test)]\nmod tests { use crate::backend::Tap; }\n",
    }
    cases = [
        ("clean", {}, 0, 0),
        ("upward", {"backend/tap.rs": "use crate::device::rx;\npub struct Tap;\n"}, 1, 1),
        ("device reaches past the trait", {"device/rx.rs": "use crate::backend::Tap;\n"}, 1, 0),
        ("sibling cycle", {"backend/mod.rs": "pub mod tap;\npub mod pcap;\npub trait PacketBackend {}\n"
                           "pub enum RxOutcome { Delivered }\n",
                           "backend/pcap.rs": "use super::tap::Tap;\npub struct Pcap;\n",
                           "backend/tap.rs": "pub struct Tap;\nfn f() { let _ = super::pcap::Pcap; }\n"}, 0, 1),
    ]
    failures = 0
    for name, change, want_up, want_cycles in cases:
        with tempfile.TemporaryDirectory() as root:
            for rel, text in {**clean, **change}.items():
                path = os.path.join(root, "src", rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "w").write(text)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                check(Crate(root), listing=False, unsafe=False)
            text = out.getvalue()
            up = int(re.search(r"upward arrows: (\d+)", text).group(1))
            cyc = int(re.search(r"cycles: (\d+)", text).group(1))
            ok = (up > 0) == (want_up > 0) and cyc == want_cycles
            print(f"self-test {name}: {up} upward, {cyc} cycles: {'ok' if ok else 'WRONG'}")
            failures += not ok
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--unsafe", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    return check(Crate(args.root), args.list, args.unsafe)


def check(crate, listing, unsafe):
    """Print the report; 1 if an arrow points up or a cycle closes."""
    imports = crate.imports()

    # edges between distinct modules, with the names used
    edges = {}
    for frm, to, name, kind, _ in imports:
        if frm == to:
            continue
        key = (frm, to, kind in ("test", "doc"))
        edges.setdefault(key, set()).add(name or "*")
    checked = {(a, b): names for (a, b, excluded), names in edges.items() if not excluded}

    print("layers, bottom first (scripts/layers.py LAYERS):")
    for i, (name, prefixes) in enumerate(LAYERS):
        mods = [p or "(crate root)" for p in prefixes]
        print(f"  {i} {name}: {', '.join(mods)}")
    if listing:
        print("\nimports (from -> to: names; [test] and [doc] are not checked):")
        for (a, b, excluded), names in sorted(edges.items()):
            tag = " [test/doc]" if excluded else ""
            print(f"  {a or '(crate root)'} -> {b or '(crate root)'}: {', '.join(sorted(names))}{tag}")

    if unsafe:
        counts = []
        for m in sorted(crate.modules):
            for rel, t in crate.text[m]:
                if rel.startswith("capi/") or rel in UNSAFE_EXEMPT:
                    continue
                n = len(re.findall(r"\bunsafe\b", t))
                if n:
                    counts.append((rel, n))
        total = sum(n for _, n in counts)
        print(f"\nunsafe outside src/capi, {', '.join('src/' + e for e in sorted(UNSAFE_EXEMPT))}: {total}")
        for rel, n in counts:
            print(f"  {n:3} src/{rel}")

    bad = 0
    up = []
    for (a, b), names in sorted(checked.items()):
        la, lb = layer_of(a), layer_of(b)
        if la is not None and lb is not None and lb > la:
            up.append(f"  {a} ({LAYERS[la][0]}) -> {b} ({LAYERS[lb][0]}): {', '.join(sorted(names))}")
        for fp, tp, allowed in ONLY:
            extra = sorted(names - allowed)
            if is_ancestor(fp, a) and is_ancestor(tp, b) and extra:
                up.append(f"  {a} -> {b}: {', '.join(extra)} ({fp} may use only {', '.join(sorted(allowed))} of {tp})")
    print(f"\nupward arrows: {len(up)}")
    print("\n".join(up)) if up else None
    bad += len(up)

    lifted = {}
    for (a, b), names in checked.items():
        pair = lift(a, b)
        if pair:
            lifted.setdefault(pair, set()).update(f"{a}->{b}" for _ in [0])
    nodes = {x for pair in lifted for x in pair}
    cycles = sccs(nodes, set(lifted))
    print(f"\ncycles: {len(cycles)}")
    for comp in cycles:
        print(f"  {' <-> '.join(comp)}")
        for (a, b), via in sorted(lifted.items()):
            if a in comp and b in comp:
                print(f"    {a} -> {b} (via {', '.join(sorted(via))})")
    bad += len(cycles)
    print(f"\n{len(checked)} imports between {len({x for e in checked for x in e})} modules checked; "
          f"{'OK' if not bad else f'{len(up)} upward arrow(s), {len(cycles)} cycle(s)'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
