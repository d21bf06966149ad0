"""Fuzzing the secret Redactor: for any secret, embedded in any text in any encoding that
tools commonly print, what comes out holds none of those encodings (issue 15, D2)."""

from __future__ import annotations

import base64

from hypothesis import example, given, settings
from hypothesis import strategies as st

from racetrack_core.redaction import MASK, MIN_LENGTH, Redactor
from tests.security.test_scrubbing import encodings, leaks

QUICK = settings(deadline=2000)

# Any character but surrogates (no UTF-8 spelling) and the mask's own: a secret made of "*"
# would be "found" again in the mask that replaced it.
characters = st.characters(blacklist_categories=["Cs"], blacklist_characters=MASK[0])
secrets = st.text(characters, min_size=MIN_LENGTH, max_size=24)
surroundings = st.text(characters, max_size=30)


@QUICK
@given(secrets, surroundings, surroundings, st.sampled_from(sorted(encodings("x"))))
@example(" <>", "a", "b", "quote_plus")
@example('"\\/', "", "", "json")
@example("p@ss wörd\u2028", "x", "y", "quote-lower")
def test_no_encoding_of_a_secret_survives(secret: str, before: str, after: str, form: str) -> None:
    spelled = encodings(secret)[form]
    out = Redactor([secret])(before + spelled + after)

    assert MASK in out
    assert [name for name in leaks(out, secret) if name != "base64-inside"] == []


@QUICK
@given(secrets, st.lists(st.sampled_from(sorted(encodings("x"))), min_size=1, max_size=4))
def test_many_encodings_of_a_secret_in_one_text_all_go(secret: str, forms: list[str]) -> None:
    spelled = encodings(secret)
    text = " | ".join(spelled[form] for form in forms)
    out = Redactor([secret])(text)

    assert [name for name in leaks(out, secret) if name != "base64-inside"] == []


@QUICK
@given(
    st.text(characters, min_size=8, max_size=24),
    st.text(characters, max_size=6),
    st.text(characters, max_size=6),
)
def test_a_secret_inside_a_longer_base64_value_is_hidden(
    secret: str, prefix: str, suffix: str
) -> None:
    """As in an HTTP Basic header (``user:secret``) or a base64 config dump."""
    encoded = base64.b64encode(f"{prefix}{secret}{suffix}".encode()).decode()
    out = Redactor([secret])(f"Authorization: Basic {encoded}")

    assert MASK in out
    assert leaks(out, secret) == []


@QUICK
@given(st.lists(secrets, min_size=1, max_size=4), surroundings)
def test_several_secrets_are_each_hidden(values: list[str], glue: str) -> None:
    text = glue.join(
        encodings(value)["quote"] + glue + encodings(value)["base64"] for value in values
    )
    out = Redactor(values)(text)

    for value in values:
        assert [name for name in leaks(out, value) if name != "base64-inside"] == []
