"""The crate graph is the architecture: each crate's dependencies obey ARCHITECTURE.md's tiers."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each crate's tier, as ARCHITECTURE.md draws it.
TIER = {
    "core": "pure", "model": "pure", "expr": "pure", "sigv4": "pure", "routing": "pure",
    "traffic": "pure",
    "auth": "base", "serve": "base", "worker": "base",
    "storage": "data", "api": "data", "replication": "data", "antientropy": "data",
    "health": "traffic", "dns": "traffic", "gateway": "traffic",
    "control": "control",
    "bench": "tools", "drill": "tools", "clusterbench": "tools",
    "meridian": "binary",
}

# Which tiers a tier may depend on. `base` is what every server shares (the admin guard, the
# listener's accept loop). The three planes never import one another; the tools reach
# the planes only over HTTP and signals, so they link the pure crates and the control plane's
# spec types, never a plane's servers.
ALLOWED = {
    "pure": {"pure"},
    "base": {"pure", "base"},
    "data": {"pure", "base", "data"},
    "traffic": {"pure", "base", "traffic"},
    "control": {"pure", "base", "control"},
    "tools": {"pure", "base", "control", "tools"},
    "binary": {"pure", "base", "data", "traffic", "control", "tools"},
}

# Crates that do only pure work: no network, no threads, no files.
PURE_FORBIDDEN = {"tokio", "hyper", "axum", "hyper-util", "socket2", "nix", "fjall", "reqwest"}


def crates():
    out = {}
    for toml in sorted((ROOT / "crates").glob("*/Cargo.toml")):
        meta = tomllib.loads(toml.read_text())
        deps = set(meta.get("dependencies", {}))
        out[toml.parent.name] = deps
    return out


def internal(deps):
    return {d.removeprefix("meridian-") for d in deps if d.startswith("meridian-")}


def test_every_crate_has_a_tier_and_an_architecture_entry():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    described = set(re.findall(r"^- \*\*`([a-z0-9]+)`\*\*", text, re.M))
    names = set(crates())
    assert names == set(TIER), f"crates without a tier or tiers without a crate: {names ^ set(TIER)}"
    assert names <= described, f"crates missing from ARCHITECTURE.md: {names - described}"


def test_dependencies_point_down_and_planes_stay_apart():
    bad = []
    for name, deps in crates().items():
        for dep in internal(deps):
            if TIER[dep] not in ALLOWED[TIER[name]]:
                bad.append(f"{name} ({TIER[name]}) -> {dep} ({TIER[dep]})")
    assert not bad, "dependencies across tiers: " + "; ".join(bad)


def test_pure_crates_do_no_io():
    bad = [
        f"{name} -> {dep}"
        for name, deps in crates().items()
        if TIER[name] == "pure"
        for dep in deps & PURE_FORBIDDEN
    ]
    assert not bad, "pure crates with I/O dependencies: " + "; ".join(bad)


def module_imports(crate):
    """Top-level module → the top-level modules of the same crate it names (`crate::x`),
    outside its unit tests."""
    root = ROOT / "crates" / crate / "src"
    mods = {}
    for path in root.rglob("*.rs"):
        top = path.relative_to(root).parts[0].removesuffix(".rs")
        if top in ("lib", "main"):
            continue
        text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", path.read_text(), flags=re.S)
        names = set(re.findall(r"crate::([a-z_]+)", text)) - {top}
        mods.setdefault(top, set()).update(names)
    return {m: {d for d in deps if d in mods} for m, deps in mods.items()}


def cycle(graph):
    """One import cycle of `graph`, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_no_import_circle_inside_storage_or_replication():
    for crate in ("storage", "replication"):
        graph = module_imports(crate)
        assert len(graph) > 5, (crate, graph)
        assert cycle(graph) is None, f"{crate}: modules import each other: {cycle(graph)}"


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_no_source_file_past_700_lines():
    long = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in sorted((ROOT / "crates").glob("*/src/**/*.rs"))
        if (n := len(p.read_text().splitlines())) > 700
    ]
    assert not long, "split these: " + "; ".join(long)
