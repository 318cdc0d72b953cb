"""The prepare stage (prepare → job → run → report): manifest → expand → validate → plan;
nothing is sent, nothing is written.

`manifest` (YAML with locations: `yamlsrc`), `expand` (with `combinations`, `model_base`,
`shapes` and `values`; `render` for templates), `images` and `validate` (every request against
its model's schema, from `models`), `plan` (the checked cells; price sheets are
pipeline.models.cost). Entry point: `pipeline.prepare.plan.build_plan`.
"""
