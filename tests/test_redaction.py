"""The redactor masks secrets in every form they could be written in."""

from __future__ import annotations

import json

from bots.redaction import MASK, Redactor


def test_masks_plain_and_json_escaped_forms() -> None:
    redactor = Redactor(['pa"ss\\word', "口令-secret"])
    line = json.dumps({"msg": 'typed pa"ss\\word and 口令-secret'})
    assert 'pa\\"ss' not in redactor.scrub(line)
    assert "口令" not in redactor.scrub(json.dumps({"m": "口令-secret"}))  # \\u escaped form
    assert redactor.scrub("口令-secret") == MASK


def test_scrubs_nested_data() -> None:
    redactor = Redactor(["hunter22"])
    assert redactor.scrub_data({"a": ["x hunter22 y", {"b": "hunter22"}], "n": 3}) == {
        "a": [f"x {MASK} y", {"b": MASK}],
        "n": 3,
    }


def test_longest_secret_wins() -> None:
    redactor = Redactor(["abcd", "abcdefgh"])
    assert redactor.scrub("abcdefgh") == MASK
