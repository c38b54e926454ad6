"""The redactor masks secrets in every form they could be written in."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bots.redaction import MASK, Redactor, strip_url_queries, strip_url_query
from bots.runlog import RunLog


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


# --- every form a log line can carry a secret in ------------------------------------------

SECRET = "p@ss w/rd&'\"<>é€😀\\+%#?="


def encoded_forms(secret: str) -> dict[str, str]:
    from urllib.parse import quote, quote_plus

    return {
        "raw": secret,
        "json": json.dumps(secret)[1:-1],
        "json_unicode": json.dumps(secret, ensure_ascii=False)[1:-1],
        "json_lower_hex": json.dumps(secret)[1:-1].lower(),
        "quote": quote(secret),
        "quote_no_safe": quote(secret, safe=""),
        "quote_lower_hex": quote(secret, safe="").lower(),
        "quote_plus": quote_plus(secret),
        "quote_plus_lower_hex": quote_plus(secret).lower(),
        "html": html.escape(secret),
        "html_no_quotes": html.escape(secret, quote=False),
        "html_numeric": "".join(f"&#{ord(c)};" if not c.isalnum() else c for c in secret),
        "repr": repr(secret)[1:-1],
        "repr_double_quoted": repr(secret + '"')[1:-2],
        "quote_inside_json": json.dumps(quote(secret, safe=""))[1:-1],
    }


@pytest.mark.parametrize("form", list(encoded_forms(SECRET)))
def test_masks_every_encoding(form: str) -> None:
    text = encoded_forms(SECRET)[form]
    scrubbed = Redactor([SECRET]).scrub(f"goto https://erp.example/login.do?pw={text} failed")
    assert scrubbed == f"goto https://erp.example/login.do?pw={MASK} failed", text
    for other in encoded_forms(SECRET).values():
        assert other not in scrubbed


def test_masks_a_url_partly_encoded_as_a_browser_leaves_it() -> None:
    # Chromium encodes a space and quotes in a query but leaves "&", "@" and "/" alone.
    redactor = Redactor(["hunter 2&@/x"])
    assert redactor.scrub("/login?pw=hunter%202&@/x&b=1") == f"/login?pw={MASK}&b=1"


def test_masks_in_run_log_records_written_as_json(tmp_path: Path) -> None:
    from urllib.parse import quote_plus

    log = RunLog(
        tmp_path / "run.jsonl",
        run_id="r1",
        recipe="demo",
        redactor=Redactor([SECRET]),
        clock=lambda: datetime(2024, 1, 1, tzinfo=UTC),
    )
    log.event("step", error=f"page said {html.escape(SECRET)}", sent=quote_plus(SECRET))
    log.close("ok")
    text = (tmp_path / "run.jsonl").read_text(encoding="utf-8")
    for form in encoded_forms(SECRET).values():
        assert form not in text


def test_does_not_mask_ordinary_text() -> None:
    redactor = Redactor(["s3cret-PW"])
    assert redactor.scrub("s3cret PW s3cret_PW secret-PW") == "s3cret PW s3cret_PW secret-PW"


# --- URLs without their query values -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("https://h/p?user=ann&token=x1", "https://h/p?user=…&token=…"),
        ("http://127.0.0.1:8/login.do?pw=a%20b", "http://127.0.0.1:8/login.do?pw=…"),
        ("https://h/p?flag&empty=&k=v", "https://h/p?…&empty=&k=…"),
        ("https://h/cb#access_token=t0k&state=s", "https://h/cb#access_token=…&state=…"),
        ("https://h/list.do#top", "https://h/list.do#top"),
        ("https://h/p", "https://h/p"),
    ],
)
def test_url_query_values_are_elided(url: str, logged: str) -> None:
    assert strip_url_query(url) == logged


def test_urls_in_any_text_lose_their_query_values() -> None:
    data = {
        "url": "https://h/a?id=7",
        "error": "goto 'https://h/b?sid=abc' failed; see http://h/c?x=1&y=2.",
        "nested": [{"href": "https://h/d.pdf?sig=zz"}],
        "count": 3,
        "plain": "a=b?c=d",
    }
    assert strip_url_queries(data) == {
        "url": "https://h/a?id=…",
        "error": "goto 'https://h/b?sid=…' failed; see http://h/c?x=…&y=….",
        "nested": [{"href": "https://h/d.pdf?sig=…"}],
        "count": 3,
        "plain": "a=b?c=d",
    }


def test_run_log_writes_urls_without_query_values(tmp_path: Path) -> None:
    log = RunLog(
        tmp_path / "run.jsonl",
        run_id="r1",
        recipe="demo",
        redactor=Redactor(),
        clock=lambda: datetime(2024, 1, 1, tzinfo=UTC),
    )
    log.event("step", url="https://erp/login.do?user=ann&token=unknown-secret-42")
    log.event("download", url="https://erp/get?id=9", error="GET https://erp/x?k=v2 gave 500")
    assert log.scrub({"url": "https://erp/a?t=zz"}) == {"url": "https://erp/a?t=…"}
    log.close("ok")
    records = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert records[0]["details"]["url"] == "https://erp/login.do?user=…&token=…"
    assert records[1]["details"] == {
        "url": "https://erp/get?id=…",
        "error": "GET https://erp/x?k=… gave 500",
    }
    assert "unknown-secret-42" not in (tmp_path / "run.jsonl").read_text()
