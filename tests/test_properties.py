"""Property-based tests (hypothesis) of the parsers that read what users and servers write.

For any input, each parser either returns a value or raises the library's own error
(`RegistryError`), never anything else; and where a parsed value can be written back, writing
and parsing again gives the same value. Besides ``text()``, grammar-shaped strategies build
near-valid inputs so that the parsers' deep paths (ports, IPv6 literals, Docker Hub aliases,
quoted parameters with commas and escapes, relative links) are reached.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from aioregistry import InvalidReference, parse_reference, parse_repository
from aioregistry._auth import Challenge, parse_www_authenticate
from aioregistry._exceptions import InvalidContent
from aioregistry._pages import parse_next_link
from aioregistry._references import is_loopback_host, parse_digest, parse_registry

# Modest, so the file runs in seconds; no deadline, as a loaded machine makes timing noisy.
modest = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


# -- grammar-shaped strategies -----------------------------------------------------------

LOWER = string.ascii_lowercase + string.digits
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
# A sprinkle of characters that break each rule: upper case, separators, unicode, spaces.
NOISE = "AZ.-_:/@[]%é\u0130 \t"


def _near(alphabet: str, min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    """Mostly ``alphabet``, now and then a character that should be refused."""
    char = st.one_of(st.sampled_from(alphabet), st.sampled_from(NOISE))
    return st.one_of(
        st.text(alphabet, min_size=min_size, max_size=max_size),
        st.text(char, min_size=0, max_size=max_size),
    )


path_component = st.one_of(
    st.builds(
        lambda a, sep, b: a + sep + b,
        st.text(LOWER, min_size=1, max_size=6),
        st.sampled_from([".", "_", "__", "-", "--", "", "..", "___", "-_"]),
        st.text(LOWER, min_size=1, max_size=6),
    ),
    _near(LOWER),
)
path = st.lists(path_component, min_size=1, max_size=4).map("/".join)
port = st.one_of(st.integers(0, 70000).map(str), _near(string.digits, 0, 6))
ipv6 = st.one_of(
    st.ip_addresses(v=6).map(str),
    _near("0123456789abcdefABCDEF:.", 0, 16),
)
host = st.one_of(
    st.sampled_from(["docker.io", "index.docker.io", "registry-1.docker.io", "localhost"]),
    st.lists(_near(ALNUM + "-", 1, 8), min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    ipv6.map(lambda a: f"[{a}]"),
)
host_port = st.one_of(host, st.builds(lambda h, p: f"{h}:{p}", host, port))
tag = st.one_of(_near(ALNUM + "_.-", 1, 10), st.text(ALNUM, min_size=126, max_size=130))
digest = st.one_of(
    st.builds(lambda h: f"sha256:{h}", st.text(HEX, min_size=64, max_size=64)),
    st.builds(lambda h: f"sha512:{h}", st.text(HEX, min_size=128, max_size=128)),
    st.builds(
        lambda a, e: f"{a}:{e}",
        _near(LOWER + "+._-", 0, 8),
        _near(ALNUM + "=_-", 0, 70),
    ),
)
reference_text = st.builds(
    lambda h, p, t, d: (f"{h}/" if h else "") + p + (f":{t}" if t else "") + (f"@{d}" if d else ""),
    st.one_of(st.none(), host_port),
    path,
    st.one_of(st.none(), tag),
    st.one_of(st.none(), digest),
)
any_text = st.one_of(st.text(max_size=80), st.text(string.printable, max_size=80))


# -- references --------------------------------------------------------------------------


@modest
@given(st.one_of(any_text, reference_text))
@example("[::1]:5000/a:b")
@example("docker.io/ubuntu")
@example("localhost:5000")
@example("a" * 600)
def test_parse_reference_returns_or_raises_invalid_reference(text):
    try:
        ref = parse_reference(text)
    except InvalidReference:
        return
    assert ref.tag is not None or ref.digest is not None
    # Written back, a reference parses to itself: the normalised form is a fixed point.
    again = parse_reference(str(ref))
    assert again == ref
    assert str(again) == str(ref)
    assert ref.identifier in (ref.digest, ref.tag)
    assert parse_repository(str(ref.repository)) == ref.repository


@modest
@given(st.one_of(any_text, reference_text, st.builds(lambda h, p: f"{h}/{p}", host_port, path)))
def test_parse_repository_returns_or_raises_invalid_reference(text):
    try:
        repo = parse_repository(text)
    except InvalidReference:
        return
    assert parse_repository(str(repo)) == repo
    assert repo.registry == repo.registry.lower()
    # A repository never carries a tag or a digest, so it names the same thing as ":latest".
    assert parse_reference(f"{repo}:latest").repository == repo


@modest
@given(st.one_of(any_text, host_port))
@example("Docker.IO")
@example("[::1]")
@example("myregistry")
def test_parse_registry_returns_or_raises_invalid_reference(text):
    try:
        registry = parse_registry(text)
    except InvalidReference:
        return
    assert parse_registry(registry) == registry
    assert registry == registry.lower()
    assert isinstance(is_loopback_host(registry), bool)


@modest
@given(st.one_of(any_text, digest))
def test_parse_digest_returns_its_input_or_raises_invalid_reference(text):
    try:
        assert parse_digest(text) == text
    except InvalidReference:
        return
    algorithm, _, encoded = text.partition(":")
    assert algorithm
    assert encoded


@modest
@given(st.one_of(any_text, host_port))
def test_is_loopback_host_never_raises(text):
    assert isinstance(is_loopback_host(text), bool)


# -- WWW-Authenticate --------------------------------------------------------------------

TCHAR = ALNUM + "!#$%&'*+-.^_`|~"
auth_token = st.text(TCHAR, min_size=1, max_size=10)
# Quoted-string content: printable, commas, spaces, quotes and backslashes included.
quoted_content = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"),
    max_size=30,
)


def _quote_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def challenges(draw: st.DrawFn) -> tuple[str, list[tuple[str, dict[str, str]]]]:
    """A header value of 1-3 challenges and what parsing it must give."""
    parsed = []
    written = []
    for _ in range(draw(st.integers(1, 3))):
        scheme = draw(auth_token)
        params: dict[str, str] = {}
        parts = []
        for _ in range(draw(st.integers(0, 4))):
            name = draw(auth_token)
            quoted = draw(st.booleans())
            value = draw(quoted_content if quoted else auth_token)
            params[name.lower()] = value
            parts.append(f"{name}{draw(st.sampled_from(['=', ' = ', '=']))}")
            parts[-1] += _quote_value(value) if quoted else value
        separator = draw(st.sampled_from([",", ", ", " ,  "]))
        written.append(f"{scheme} {separator.join(parts)}".rstrip())
        parsed.append((scheme.lower(), params))
    return draw(st.sampled_from([", ", ",", " , "])).join(written), parsed


@modest
@given(st.one_of(any_text, st.lists(any_text, max_size=3)))
@example('Bearer realm="unterminated, service=x')
@example('Basic realm="a\\')
@example("Negotiate abc==, Bearer realm=x")
def test_parse_www_authenticate_never_raises(value):
    result = parse_www_authenticate(value)
    for challenge in result:
        assert isinstance(challenge, Challenge)
        assert challenge.scheme == challenge.scheme.lower()
        assert all(key == key.lower() for key in challenge.params)


@modest
@given(challenges())
def test_parse_www_authenticate_reads_back_what_was_written(case):
    value, expected = case
    result = parse_www_authenticate(value)
    assert [(c.scheme, dict(c.params)) for c in result] == expected


@modest
@given(challenges(), challenges())
def test_several_header_values_are_read_in_order(first, second):
    result = parse_www_authenticate([first[0], second[0]])
    assert [(c.scheme, dict(c.params)) for c in result] == first[1] + second[1]


# -- Link --------------------------------------------------------------------------------

CURRENT = URL("http://registry.test:5000/v2/app/tags/list?n=10")
link_target = st.one_of(
    st.builds(
        lambda p, last: f"/v2/{p}/tags/list?n=10&last={last}",
        path,
        st.text(ALNUM + "._-", max_size=8),
    ),
    st.sampled_from(
        [
            "?last=b",
            "list?last=c",
            "http://registry.test:5000/v2/app/tags/list?last=d",
            "https://registry.test:5000/v2/app/tags/list?last=e",
            "http://other.test:5000/v2/app/tags/list",
            "//other.test/v2/x",
            "http://registry.test:5001/v2/x",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "http://[::1/x",
            "http://registry.test:99999/x",
            "",
        ]
    ),
    st.text(string.printable.replace(">", ""), max_size=30),
)
link_params = st.lists(
    st.sampled_from(['rel="next"', "rel=next", 'rel="prev"', 'rel="last"', 'type="x"', "rel=NEXT"]),
    max_size=3,
).map(lambda ps: "".join(f"; {p}" for p in ps))
link_value = st.lists(
    st.builds(lambda target, params: f"<{target}>{params}", link_target, link_params),
    min_size=1,
    max_size=3,
).map(", ".join)


@modest
@given(st.lists(st.one_of(any_text, link_value), max_size=3))
@example(["<http://[::1/x>; rel=next"])
@example(["<javascript:alert(1)>; rel=next"])
@example(["<http://registry.test:99999/x>; rel=next"])
def test_parse_next_link_returns_a_same_origin_url_or_raises_invalid_content(values):
    try:
        target = parse_next_link(values, CURRENT)
    except InvalidContent:
        return
    if target is not None:
        assert target.is_absolute()
        assert target.origin() == CURRENT.origin()


@modest
@given(link_target)
def test_a_relative_next_link_is_resolved_against_the_current_page(target):
    value = f'<{target}>; rel="next"'
    try:
        expected = CURRENT.join(URL(target))
        same_origin = expected.origin() == CURRENT.origin()
    except ValueError:
        same_origin = False
    if same_origin:
        assert parse_next_link([value], CURRENT) == expected
    else:
        with pytest.raises(InvalidContent):
            parse_next_link([value], CURRENT)


def test_the_first_next_link_wins_and_other_rels_are_ignored():
    values = ['</v2/a?last=1>; rel="prev", </v2/a?last=2>; rel="next"', "</v2/a?last=3>; rel=next"]
    assert parse_next_link(values, CURRENT) == CURRENT.join(URL("/v2/a?last=2"))
    assert parse_next_link(['</v2/a?last=1>; rel="prev"'], CURRENT) is None
    assert parse_next_link([], CURRENT) is None


@modest
@given(auth_token, auth_token, quoted_content.filter(lambda v: '"' not in v and "\\" not in v))
@example("Bearer", "realm", "https://auth.example/token")
@example("0", "0", ",0")  # a comma inside the open quote starts no new challenge
def test_an_unterminated_quoted_value_is_never_cut_short(scheme, name, value):
    """``realm="https://a/token`` (no closing quote) must not become ``https://a/toke``."""
    (challenge,) = parse_www_authenticate(f'{scheme} {name}="{value}')
    assert challenge.params.get(name.lower()) in (None, value)
