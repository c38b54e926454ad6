"""Exactly once, whatever the widget: the archive's other upload pages, end to end.

The demo recipe rewritten (bench/chaos.py ``UPLOADS``) for the archive's drag-and-drop
page, whose script posts the file by XHR, and for its form whose server reads the
pressed button. Judged by the archive simulator's own ``/_sim/state``, not our ledger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import UPLOADS
from sims.control import get_json
from tests.e2e import recipe_variant, world
from tests.test_e2e_capture import assert_archive_holds_exactly
from tests.test_e2e_faults import FAST_RETRIES, events, faults

pytestmark = pytest.mark.e2e


def test_xhr_uploads_whose_answers_are_lost_are_archived_exactly_once(tmp_path: Path) -> None:
    """The page's own XHR commits, its answer never comes: found, never sent twice."""
    recipe = recipe_variant(tmp_path, "dnd.yaml", [*UPLOADS["dnd"], FAST_RETRIES])
    with world(tmp_path, reports=6) as w:
        # A seed that strikes several times in the requests the headless shell sends.
        faults(w.archive_url, seed=4, lost_response_rate=0.5)
        result = w.run(recipe)
        assert result.code == 0, result.output
        lost = get_json(f"{w.archive_url}/_sim/faults")["injected"]["lost_response"]
        assert lost >= 2, lost  # the seed makes it strike several times
        # The archive's own truth: every report once, its bytes and metadata intact.
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())
        found = [e for e in events(w, "find") if e["details"]["found"]]
        assert len(found) == lost  # each lost answer was looked up, not uploaded again


def test_a_form_that_needs_the_pressed_button_archives_through_submit(tmp_path: Path) -> None:
    recipe = recipe_variant(tmp_path, "register.yaml", [*UPLOADS["register"], FAST_RETRIES])
    with world(tmp_path, reports=3) as w:
        result = w.run(recipe)
        assert result.code == 0, result.output
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())
