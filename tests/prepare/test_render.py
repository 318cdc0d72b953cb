"""Templates as Jinja users write them: a variable a cell does not set is an error only where
its value is used, and then every such variable is named at once."""

from __future__ import annotations

import pytest

from pipeline.prepare.render import TemplateProblem, render

CONTEXT = {"subject": "a boat", "row": {"caption": "x"}}


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ camera | default('slow dolly-in') }}", "slow dolly-in"),
    ("{{ camera | d('handheld') }}", "handheld"),
    ("{% if camera is defined %}{{ camera }}{% else %}none{% endif %}", "none"),
    ("{% if camera is not defined %}unset{% endif %}", "unset"),
    ("{% if camera %}set{% else %}unset{% endif %}", "unset"),
    ("{{ camera or 'handheld' }}", "handheld"),
    ("{{ camera.lens | default('35mm') }}", "35mm"),
    ("{{ camera['lens'] | default('35mm') }}", "35mm"),
    ("{{ row.nope | default('d') }}", "d"),
    ("{{ subject | default('x') }}", "a boat"),
    ("{{ subject or 'x' }}", "a boat"),
])
def test_unset_variables_work_with_default_defined_and_or(template: str, expected: str) -> None:
    """default/d, is defined, a test, `or` and chains accept a variable the cell lacks."""
    assert render(template, dict(CONTEXT)) == expected


@pytest.mark.parametrize(("template", "names"), [
    ("{{ camera }}", "'camera'"),
    ("{{ camera }} {{ mood | upper }} {{ lens | default(1) }}", "'camera', 'mood'"),
    ("{{ camera + 1 }}", "'camera'"),
    ("{% for x in shots %}{{ x }}{% endfor %}", "'shots'"),
    ("{% if camera == 'x' %}y{% endif %}", "'camera'"),
    ("{{ range(count) | list }}", "'count'"),
    ("{{ camera.lens }}", "'camera'"),
    ("{{ joiner() }}", "'joiner'"),
])
def test_a_used_unset_variable_names_every_one_at_once(template: str, names: str) -> None:
    """Using an unset value fails, naming every variable used unset, with the known ones."""
    with pytest.raises(TemplateProblem) as info:
        render(template, dict(CONTEXT))
    message = str(info.value)
    assert message.startswith(f"undefined template variable{'s' if ',' in names else ''} "
                              f"{names} (known: row, subject; "), message
    assert set(info.value.undefined) == {n.strip("' ") for n in names.split(",")}


def test_a_near_miss_is_suggested() -> None:
    """A typo of a variable the cell has is answered with "did you mean"."""
    with pytest.raises(TemplateProblem, match=r"did you mean 'subject'\?"):
        render("{{ subjekt }}", dict(CONTEXT))


def test_an_attribute_a_defined_value_lacks_is_jinjas_own_message() -> None:
    """Not a variable: the message is Jinja's, not a list of undefined variables."""
    with pytest.raises(TemplateProblem, match="has no attribute 'nope'") as info:
        render("{{ row.nope }}", dict(CONTEXT))
    assert info.value.undefined == ()


@pytest.mark.parametrize("template", ["{{ s.__class__ }}", "{% if s.__class__ %}x{% endif %}",
                                      "{{ s.__class__.__mro__ or 'x' }}"])
def test_unsafe_attributes_stay_refused_whatever_is_done_with_them(template: str) -> None:
    """The sandbox's refusal is not softened by the lenient tests."""
    with pytest.raises(TemplateProblem, match="refused by the sandbox"):
        render(template, {"s": ""})


def test_rendering_is_cached_apart_for_set_and_unset_variables() -> None:
    """A value of None and an unset variable are different cache keys."""
    template = "{{ camera | default('unset') }}"
    assert render(template, {"camera": None}) == "None"
    assert render(template, {}) == "unset"
