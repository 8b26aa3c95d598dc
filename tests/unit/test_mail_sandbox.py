"""The bounded sandbox: dangerous templates are refused statically, and stopped at run time
(quickly, without eating memory) when they are forced past the static check."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from engine.mail.catalog import FileTemplateCatalog
from engine.mail.sandbox import (
    MAX_VALUE_CHARS,
    BoundedSandbox,
    TemplateLimitError,
    render_bounded,
)
from engine.mail.template_check import template_safety_problems

# The classic escapes and bombs the brief names, with what the static check must say.
CLASSICS = {
    "mro": ("{{ ''.__class__.__mro__ }}", "names starting with '_' are private"),
    "cycler_globals": ("{{ cycler.__init__.__globals__ }}", "'cycler' is not available"),
    "self_context": ("{{ self._TemplateReference__context }}", "'self' is not available"),
    "lipsum_globals": ("{{ lipsum.__globals__ }}", "'lipsum' is not available"),
    "pow_bomb": ("{{ 10**(10**8) }}", "the '**' operator is not available"),
    "repeat_bomb": ("{{ 'a' * 10**9 }}", "the '**' operator is not available"),
    "nested_range": (
        "{% for i in range(10**6) %}{% for j in range(10**6) %}{% endfor %}{% endfor %}",
        "'range' is not available",
    ),
}
# Runtime-only bombs: nothing the static check refuses, so only the limits stop them.
RUNTIME_BOMBS = {
    "nested_string_loops": (
        "{% set s = 'a' * 99999 %}{% for i in s %}{% for j in s %}{% endfor %}{% endfor %}"
    ),
    "loop_into_set_block": (
        "{% set s = 'a' * 99999 %}{% set b %}{% for i in s %}"
        + "x" * 60
        + "{% endfor %}{% endset %}"
    ),
    "doubling_concat": ("{% set a = 'a' * 60000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ c }}"),
    "nested_list_literals": (
        "{% set a = 'a' * 60000 %}{% set b = [a, a] %}{% set c = [b, b] %}{{ c }}"
    ),
    "join_with_huge_separator": "{{ ('ab' * 40000)|list|join('x' * 1000) }}",
    "urlencode_chain": "{{ ('%' * 30000)|urlencode|urlencode|urlencode }}",
    "string_percent": "{{ '%999999999d' % 1 }}",
    "str_format": "{{ '{:>999999999}'.format(1) }}",
    "center_method": "{{ 'a'.center(999999999) }}",
    "plus_doubling": "{% set a = 'a' * 60000 %}{{ a + a }}",
    "huge_int_mul": "{% set a = 10 * 10 %}{{ 99999999999999999999999999999999999999999999999"
    "999999999999999999999999999999999999999999999999999999999 * 99999999999999999999999999 }}",
}


class TickingClock:
    """A clock that moves ``step`` seconds each time it is read: the sandbox's deadline
    then falls after a fixed number of its checks, whatever the machine's load, so a test
    can tell "stopped at the deadline" from "ran to the end" without timing anything."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


STEP = 0.0001  # a deadline of 1 s is 10,000 checks


def _render_measured(source: str, **context: object) -> tuple[Exception | None, int, int]:
    """The error, how many deadline checks the render made, and its peak memory."""
    env = BoundedSandbox()
    clock = TickingClock(STEP)
    tracemalloc.start()
    try:
        render_bounded(env.from_string(source), context, max_seconds=1.0, clock=clock)
    except Exception as exc:
        error: Exception | None = exc
    else:
        error = None
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return error, clock.reads, peak


@pytest.mark.parametrize(("source", "expected"), CLASSICS.values(), ids=CLASSICS.keys())
def test_the_classic_escapes_are_refused_statically(source: str, expected: str) -> None:
    problems = template_safety_problems(source)

    assert any(expected in problem for problem in problems), problems
    assert all(problem.startswith("line 1: ") for problem in problems)


@pytest.mark.parametrize(("source", "expected"), CLASSICS.values(), ids=CLASSICS.keys())
def test_the_classic_escapes_are_stopped_at_run_time_too(source: str, expected: str) -> None:
    error, reads, peak = _render_measured(source)

    assert isinstance(error, SecurityError | UndefinedError), error
    assert reads <= 1 / STEP + 2  # stopped by the rules or at the deadline, never past it
    assert peak < 50_000_000


@pytest.mark.parametrize("source", RUNTIME_BOMBS.values(), ids=RUNTIME_BOMBS.keys())
def test_bombs_the_static_check_lets_through_are_stopped_at_run_time(source: str) -> None:
    error, reads, peak = _render_measured(source)

    assert isinstance(error, SecurityError), error  # TemplateLimitError is one
    assert reads <= 1 / STEP + 2  # stopped by the rules or at the deadline, never past it
    assert peak < 50_000_000


def test_a_cpu_loop_printing_nothing_hits_the_deadline_or_the_budget() -> None:
    env = BoundedSandbox()
    source = "{% set s = 'a' * 99999 %}{% for i in s %}{% for j in s %}{% endfor %}{% endfor %}"

    clock = TickingClock(0.001)
    with pytest.raises(TemplateLimitError):
        render_bounded(env.from_string(source), {}, max_chars=10**12, max_seconds=0.3, clock=clock)
    # the deadline (300 checks), not the end of the loop (ten billion iterations)
    assert clock.reads <= 300 + 2


def test_the_output_size_is_capped() -> None:
    env = BoundedSandbox()
    template = env.from_string("{% for row in rows %}{{ row }}{% endfor %}")

    with pytest.raises(TemplateLimitError, match="more than 1,000 characters"):
        render_bounded(template, {"rows": ["x" * 100] * 20}, max_chars=1000)
    assert render_bounded(template, {"rows": ["x" * 100] * 5}, max_chars=1000) == "x" * 500


def test_an_ordinary_email_template_renders_normally() -> None:
    env = BoundedSandbox()
    source = (
        "Hi {{ prospect.first_name or 'there' }}, "
        "{{ prospect.company|default('your team', true) }}!"
        "{% for item in prospect.attributes.products %}{% if not loop.first %}, {% endif %}"
        "{{ loop.index }}. {{ item.name|title }} at {{ '%.2f'|length }}{{ item.price|round(2) }}"
        "{% endfor %} {{ (prospect.attributes.products|length) * 2 }} {{ 2 + 3 }}"
        "{{ ' & more' ~ '' }}{% if prospect.title is none %} (no title){% endif %}"
    )
    context = {
        "prospect": {
            "first_name": "Ana",
            "company": None,
            "title": None,
            "attributes": {
                "products": [{"name": "desk", "price": 10.5}, {"name": "lamp", "price": 3}]
            },
        }
    }

    assert template_safety_problems(source) == []
    assert render_bounded(env.from_string(source), context) == (
        "Hi Ana, your team!1. Desk at 410.5, 2. Lamp at 43 4 5 &amp; more (no title)"
    )


def test_autoescape_is_on_and_can_be_turned_off_for_text() -> None:
    context = {"name": "<b>Tom & Jerry</b>"}

    html = render_bounded(BoundedSandbox().from_string("{{ name }}"), context)
    text = render_bounded(BoundedSandbox(autoescape=False).from_string("{{ name }}"), context)

    assert html == "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"
    assert text == "<b>Tom & Jerry</b>"


def test_concatenation_keeps_escaping_semantics() -> None:
    env = BoundedSandbox()
    template = env.from_string("{{ a ~ ' & ' ~ b }}")

    assert render_bounded(template, {"a": "<x>", "b": "y"}) == "&lt;x&gt; &amp; y"


def test_undefined_names_fail_loudly() -> None:
    env = BoundedSandbox()

    with pytest.raises(UndefinedError):
        render_bounded(env.from_string("{{ prospect.nickname }}"), {"prospect": {}})


def test_dict_keys_win_over_dict_methods() -> None:
    env = BoundedSandbox()
    template = env.from_string("{{ a.items }} {{ a.values }} {{ a.get is defined }}")

    assert render_bounded(template, {"a": {"items": 3, "values": "v"}}) == "3 v False"


def test_nothing_can_be_called() -> None:
    env = BoundedSandbox()

    for source in ("{{ name.upper() }}", "{{ f() }}", "{{ loop_helper.cycle('a', 'b') }}"):
        with pytest.raises(SecurityError, match="not available"):
            render_bounded(env.from_string(source), {"name": "x", "f": print, "loop_helper": {}})


def test_the_dropped_globals_are_gone() -> None:
    assert BoundedSandbox().globals == {}


def test_limits_are_on_single_values_not_on_ordinary_sizes() -> None:
    env = BoundedSandbox()
    ok = "x" * (MAX_VALUE_CHARS - 1)

    assert len(render_bounded(env.from_string("{{ a * 1 }}"), {"a": ok})) == len(ok)
    with pytest.raises(TemplateLimitError):
        render_bounded(env.from_string("{{ a * 2 }}"), {"a": ok})
    assert render_bounded(env.from_string("{{ 2 ** 10 }}"), {}) == "1024"
    with pytest.raises(TemplateLimitError):
        render_bounded(env.from_string("{{ 2 ** 101 }}"), {})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% import 'x' as y %}", "{% import %} is not available"),
        ("{% from 'x' import y %}", "{% from ... import %} is not available"),
        ("{% include 'x' %}", "{% include %} is not available"),
        ("{% extends 'x' %}", "{% extends %} is not available"),
        ("{% macro m() %}{% endmacro %}", "{% macro %} is not available"),
        ("{% call x() %}{% endcall %}", "{% call %} is not available"),
        ("{% autoescape false %}{{ x }}{% endautoescape %}", "{% autoescape %}"),
        ("{{ x['__class__'] }}", "names starting with '_' are private"),
        ("{{ x._secret }}", "names starting with '_' are private"),
        ("{{ loop.cycle('odd', 'even') }}", "calling loop.cycle(...) is not available"),
        ("{{ joiner() }}", "'joiner' is not available"),
        ("{{ namespace(a=1) }}", "'namespace' is not available"),
        ("{{ dict(a=1) }}", "'dict' is not available"),
        ("{{ x|safe }}", "filter 'safe' is not available"),
        ("{{ x|center(80) }}", "filter 'center' is not available"),
        ("{{ x|attr('y') }}", "filter 'attr' is not available"),
        ("{% if x is callable %}{% endif %}", "test 'callable' is not available"),
        ("{{ '%s' % x }}", "'%' string formatting is not available"),
        ("{{ 'a' * 1000000 }}", "repeating something 1,000,000 times is too much"),
        ("{% for a in x recursive %}{% endfor %}", "recursive loops are not available"),
        ("{% set ns.a = 1 %}", "setting attributes"),
        (
            "{% for a in x %}{% for b in a %}{% for c in b %}{% endfor %}{% endfor %}{% endfor %}",
            "loops nested 3 deep",
        ),
    ],
)
def test_what_an_email_never_needs_is_refused(source: str, expected: str) -> None:
    problems = template_safety_problems(source)

    assert any(expected in problem for problem in problems), problems


def test_problems_name_their_line() -> None:
    source = "Hi {{ name }}\n\n{{ x.__class__ }}\n{{ 2 ** 3 }}"

    assert template_safety_problems(source) == [
        "line 3: names starting with '_' are private: '__class__'",
        "line 4: the '**' operator is not available in email templates",
    ]


def test_a_syntax_error_is_reported_as_a_problem() -> None:
    assert template_safety_problems("{{ x }") == ["line 1: unexpected '}'"]


def test_two_loops_deep_and_the_whitelist_are_fine() -> None:
    source = (
        "{% for row in rows %}{% for cell in row %}{{ cell|upper|truncate(10) }}"
        "{% if loop.last %}.{% endif %}{% endfor %}{% else %}none{% endfor %}"
        "{{ rows|length }} {{ (rows|first|default([]))|join(', ') }} {{ 3 % 2 }}"
    )

    assert template_safety_problems(source) == []
    assert (
        render_bounded(BoundedSandbox().from_string(source), {"rows": [["a", "b"], ["c"]]})
        == "AB.C.2 a, b 1"
    )


# --- the hook into the catalog: `nurture sequences validate` refuses these -------------


def _catalog(tmp_path: Path, body: str) -> FileTemplateCatalog:
    (tmp_path / "_partials").mkdir()
    (tmp_path / "_partials" / "footer.mjml").write_text(
        "<mj-section><mj-column><mj-text>{{ sender.postal_address }}"
        ' <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text></mj-column></mj-section>'
    )
    (tmp_path / "price").mkdir()
    (tmp_path / "price" / "bad.mjml").write_text(
        "<mjml>\n  <mj-body>\n    <mj-section><mj-column>\n"
        f"      <mj-text>{body}</mj-text>\n"
        '    </mj-column></mj-section>\n    <mj-include path="_partials/footer.mjml" />\n'
        "  </mj-body>\n</mjml>\n"
    )
    return FileTemplateCatalog(tmp_path)


def test_the_catalog_refuses_unsafe_templates_with_file_and_line(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, "{{ prospect.__class__ }} {{ 10 ** 9 }}")

    assert catalog.check_template("price/bad") == [
        f"{tmp_path}/price/bad.mjml:4: names starting with '_' are private: '__class__'",
        f"{tmp_path}/price/bad.mjml:4: the '**' operator is not available in email templates",
    ]


def test_the_catalog_refuses_unsafe_partials(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, "Hi")
    footer = tmp_path / "_partials" / "footer.mjml"
    footer.write_text(footer.read_text() + "\n{% include 'secrets' %}")

    assert catalog.check_template("price/bad") == [
        f"{tmp_path}/_partials/footer.mjml:2: {{% include %}} is not available in email "
        'templates (share layout with <mj-include path="_partials/..."/>)'
    ]


def test_the_catalog_refuses_unsafe_subjects(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, "Hi")

    assert catalog.check_text("{{ prospect.first_name }}, {{ lipsum() }}") == (
        "calling lipsum(...) is not available in email templates; use a filter "
        "(like '|upper' or '|default(...)')"
    )
    assert catalog.check_text("one\n{{ 'a' * 10**9 }}") == (
        "line 2: the '**' operator is not available in email templates"
    )
    assert catalog.check_text("{{ prospect.first_name|upper }}, hi") is None


class _FakeClock:
    """Seconds that pass only when the template does work: each comparison a sort makes
    costs ``step``, so how far past the deadline a render ran is exact, not load-bound."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        return self.now


class _Slow:
    """An item whose comparisons take (fake) time, like sorting a 100,000-character string."""

    def __init__(self, value: int, clock: _FakeClock) -> None:
        self.value = value
        self.clock = clock

    def __lt__(self, other: _Slow) -> bool:
        self.clock.now += self.clock.step
        return self.value < other.value


def test_the_deadline_holds_within_one_operation() -> None:
    # issue #8: a 32 x 32 loop of |sort on a 100,000-character string ran 4.4 s against a
    # 2 s deadline, because the clock was read only every 16th hook.
    clock = _FakeClock(step=0.005)
    items = [_Slow((i * 7919) % 32, clock) for i in range(32)]
    sorted(items)
    one_sort = clock.now  # the (fake) cost of one |sort of these items
    clock.now = 0.0
    source = "{% for i in xs %}{% for j in xs %}{{ items|sort|length }}{% endfor %}{% endfor %}"
    template = BoundedSandbox().from_string(source)

    with pytest.raises(TemplateLimitError, match="longer than 2 s"):
        render_bounded(template, {"xs": list(range(32)), "items": items}, clock=clock)

    assert one_sort > 0.1
    assert clock.now <= 2.0 + one_sort  # stopped by the first check after the deadline
