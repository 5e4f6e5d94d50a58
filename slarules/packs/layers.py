"""Pack layers: a regional variant `extends` a base pack and changes its numbers, not its rules.

A layer names its base (`extends: regulations`), gives some of the base's
parameters other values (a name the base declares, of the same type) and may add
rules and derivations of its own; its rules may override the base's. When a set
of packs holds a layer, the base is a template: before compiling, the base and
the layers over it become one `LayeredPack` in the base's place (the base's rules
and messages, the layers' parameter values, the layers' rules after the base's),
so every backend sees one Program and the base's rules never run twice. A
problem is still reported in the file and at the line that wrote it. A base with
dated versions (`effective:`) gets the layer over each version, so the layer goes
with whichever version is in force for a case; a layer has no dates of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from ..echo import quote
from .model import Issue, Pack, did_you_mean

BASE_KEYS = ("pack", "version", "effective")     # a layered pack's identity and dates are its base's


@dataclass
class LayeredPack(Pack):
    """A base pack with the layers over it applied: one pack to compile, several files to cite."""

    chain: tuple[Pack, ...] = ()                          # the base, then each layer over it
    owners: dict[tuple, Pack] = field(default_factory=dict)   # ("parameters"|"derive", name) -> the file

    def source(self, loc: tuple) -> tuple[Pack, tuple]:
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            index = loc[1]
            for part in self.chain:
                if index < len(part.model.rules):
                    return part, ("rules", index) + tuple(loc[2:])
                index -= len(part.model.rules)
        if len(loc) >= 2 and (loc[0], loc[1]) in self.owners:
            return self.owners[loc[0], loc[1]], tuple(loc)
        if loc and loc[0] in BASE_KEYS:
            return self.chain[0], tuple(loc)
        return self.chain[-1], tuple(loc)

    def files(self) -> tuple[Pack, ...]:
        return self.chain


@dataclass
class Layering:
    """A set of packs with every layer applied: what to compile, what was wrong, what the layers change."""

    packs: list[Pack]
    issues: list[Issue]
    changes: list[Issue]      # `info`: each parameter a layer changes (base value → layer value), rules it adds


def apply_layers(packs: list[Pack], complete: bool = True) -> Layering:
    """`packs` with each base replaced by itself and the layers over it, in its place.

    A layer whose base is not loaded, layers that extend each other in a cycle, two
    layers over one base, a dated layer, and a layer changing a parameter its base
    does not declare (or to another type) are located errors. `complete` is False when some pack files
    did not load: a missing base may be one of them, so it is not reported.
    """
    names: dict[str, Pack] = {}
    for p in packs:
        names.setdefault(p.name, p)
    issues: list[Issue] = []
    broken: set[int] = set()             # ids of layers left out: their error is reported
    over: dict[str, Pack] = {}           # base name -> the one layer loaded over it
    for p in packs:
        base = p.model.extends
        if base is None:
            continue
        if p.model.effective is not None:       # its base's versions are dated, or not; it goes with them
            issues.append(p.issue(("effective",), f"layer `{p.name}` has dates of its own",
                                 f"a layer applies over whichever version of `{base}` is in force: date those"))
        if base not in names:
            broken.add(id(p))
            if complete:
                issues.append(p.issue(("extends",), f"`{p.name}` extends `{base}`, which is not loaded",
                                     did_you_mean(base, names) or "load the base pack too: a layer changes a "
                                     "pack, it does not replace it"))
        elif base in over:
            broken.add(id(p))
            first = over[base]
            issues.append(p.issue(("extends",), f"`{base}` is extended by both `{first.name}` and `{p.name}`",
                                 f"`{first.name}` is at {first.doc.file}:{first.where(('extends',))[0]}; "
                                 "load one layer over a pack at a time"))
        else:
            over[base] = p
    reported: set[frozenset] = set()
    for p in packs:                      # a cycle has no base to start from: find it from each layer
        path, cur = [p], p
        while cur.model.extends in names and id(cur) not in broken:
            cur = names[cur.model.extends]
            if any(cur is x for x in path):
                cycle = path[next(i for i, x in enumerate(path) if x is cur):]
                broken.update(id(x) for x in cycle)
                if frozenset(x.name for x in cycle) not in reported:
                    reported.add(frozenset(x.name for x in cycle))
                    issues.append(cur.issue(("extends",), "layers extend each other in a cycle: "
                                         + " extends ".join(f"`{x.name}`" for x in cycle + [cur]),
                                         "a layer's base must be a pack that extends nothing, or a layer over one"))
                break
            path.append(cur)
    out: list[Pack] = []
    changes: list[Issue] = []
    for p in packs:
        if p.model.extends is not None:
            continue                     # applied in its base's place (or left out, reported)
        chain = [p]
        while chain[-1].name in over and id(over[chain[-1].name]) not in broken:
            chain.append(over[chain[-1].name])
        if len(chain) == 1:
            out.append(p)
            continue
        layered, found, changed = _merge(chain)
        out.append(layered)
        issues += found
        changes += changed
    # a layer over a pack with several dated versions is applied over each: say each problem once
    return Layering(out, list(dict.fromkeys(issues)), list(dict.fromkeys(changes)))


def _merge(chain: list[Pack]) -> tuple[LayeredPack, list[Issue], list[Issue]]:
    base = chain[0]
    params = dict(base.model.parameters)
    derive = dict(base.model.derive)
    owners: dict[tuple, Pack] = {("parameters", n): base for n in params} | {("derive", n): base for n in derive}
    issues: list[Issue] = []
    changes: list[Issue] = []
    for under, layer in pairwise(chain):
        below = layer.model.extends
        over = f"layer `{layer.name}` over `{below}` {under.model.version}"     # which version of it, when dated
        for name, p in layer.model.parameters.items():
            old = params.get(name)
            if old is None:
                issues.append(layer.issue(("parameters", name), f"`{below}` has no parameter `{quote(name)}` to change",
                                     did_you_mean(name, params) or "a layer changes its base's parameters; "
                                     f"`{below}` has {', '.join(params) or 'none'}"))
            elif old.type != p.type:
                issues.append(layer.issue(("parameters", name, "type"),
                                     f"parameter `{quote(name)}` is a {old.type} in `{below}`, not a {p.type}",
                                     f"give it as a {old.type}"))
            else:
                changes.append(layer.issue(("parameters", name), f"{over}: `{quote(name)}` {old.value} → {p.value}",
                                      severity="info"))
                params[name] = p
                owners["parameters", name] = layer
        if layer.model.rules:
            ids = [r.id for r in layer.model.rules]
            changes.append(layer.issue(("rules",), f"{over} adds {len(ids)} rule{'s' * (len(ids) != 1)}: "
                                  f"{', '.join(ids)}", severity="info"))
        for name, d in layer.model.derive.items():
            if name in derive:
                issues.append(layer.issue(("derive", name), f"`{quote(name)}` is already derived in "
                                     f"`{owners['derive', name].name}`; a layer may not redefine it",
                                     "choose another name"))
            else:
                derive[name] = d
                owners["derive", name] = layer
        if "timezone" in layer.model.model_fields_set and layer.model.timezone != base.model.timezone:
            # the base's deadlines, local dates and dated versions are read in its zone: a layer keeps it
            issues.append(layer.issue(("timezone",), f"layer `{layer.name}` is in time zone "
                                 f"`{layer.model.timezone}`, its base `{base.name}` in `{base.model.timezone}`",
                                 "a layer keeps its base's time zone: leave `timezone` out"))
    model = base.model.model_copy(update={"parameters": params, "derive": derive,
                                          "rules": [r for p in chain for r in p.model.rules]})
    # its doc and digest are the base's, as its name and version are (BASE_KEYS); files() lists them all
    return LayeredPack(model, base.doc, base.digest, tuple(chain), owners), issues, changes
