"""The documents that describe the code stay true to it."""

from pathlib import Path

from shared.describe import records_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_records_doc_is_current():
    assert (ROOT / "docs/records.md").read_text() == records_markdown(), \
        "regenerate: python -m shared.describe > docs/records.md"


def test_readme_opens_with_the_two_commands_and_ci_calls_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme.split("##")[0] and "make test" in readme.split("##")[0]
    assert "\nmake test\n" in (ROOT / ".ci/run").read_text()
