"""Rule packs, from YAML to one compiled Program.

`model` (the pack format), `vocabulary` and `types` (what a rule may test and
how values are typed), `compiler` (resolve, type-check, stratify), `program`
(the Program IR every backend runs) and `cache` (compiled Programs kept
between processes).
"""
