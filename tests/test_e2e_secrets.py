"""End to end: a password a recipe put in a login URL reaches no file, in any form."""

from __future__ import annotations

import html
import json
from pathlib import Path
from urllib.parse import quote, quote_plus

from tests.e2e import ERP_PASSWORD, recipe_variant, world

PW_TEMPLATE = "{{ credential.password | urlencode }}"


def forms(secret: str) -> set[str]:
    return {
        secret,
        quote(secret),
        quote(secret, safe=""),
        quote(secret, safe="").lower(),
        quote_plus(secret),
        quote_plus(secret).lower(),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
    }


def test_password_in_a_login_url_is_in_no_file_under_logs(tmp_path: Path) -> None:
    recipe = recipe_variant(
        tmp_path,
        "pw-in-url.yaml",
        [("    - goto: /login.do\n", f"    - goto: /login.do?pw={PW_TEMPLATE}\n")],
    )
    with world(tmp_path / "w") as w:
        result = w.run(recipe)
        assert result.code == 0, result.output
        needles = [form.encode("utf-8") for form in forms(ERP_PASSWORD)]
        files = [path for path in w.logs_dir.rglob("*") if path.is_file()]
        assert any(path.suffix == ".jsonl" for path in files)
        for path in [*files, *w.logs_dir.rglob("*")]:
            assert not any(n in path.name.encode() for n in needles), path
        for path in files:
            data = path.read_bytes()
            assert not any(n in data for n in needles), path
        for text in (result.stdout, result.stderr):
            assert not any(form in text for form in forms(ERP_PASSWORD))
        run_log = "".join(p.read_text() for p in (w.logs_dir / "runs").glob("*.jsonl"))
        assert "login.do?pw=…" in run_log  # the step's URL, its query value elided
