"""Stage 1, prepare: manifest → expand → validate → plan; nothing is sent, nothing is written.

`manifest` (YAML with locations: `yamlsrc`), `expand` (with `render` for templates), `images`
and `validate` (every request against its model's schema, from `models`), `plan` (the checked
cells) and `cost` (price sheets). Entry point: `pipeline.prepare.plan.build_plan`.
"""
