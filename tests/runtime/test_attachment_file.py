"""attachment_file: the one place an attachment's path becomes a file (the loader's size check and
upload, `fmap profile`), with its rules: no path means no file, relative paths are read from the
export's files folder, and no path may lead out of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.executor.load import AttachmentOutsideRoot, attachment_file
from runtime.functions.values import MISSING
from runtime.plan import Attachment


def att(path) -> Attachment:
    return Attachment(path, None)


@pytest.mark.parametrize("path", [None, "", "   ", MISSING], ids=["none", "empty", "spaces",
                                                                   "missing"])
def test_no_path_is_no_file(tmp_path, path):
    assert attachment_file(att(path), tmp_path) is None
    assert attachment_file(att(path), None) is None


@pytest.mark.parametrize(("path", "expected"), [
    ("scans/a.pdf", "scans/a.pdf"),
    ("scans/../a.pdf", "a.pdf"),
    ("./scans//a.pdf", "scans/a.pdf"),
], ids=["relative", "dotdot-staying-inside", "redundant-separators"])
def test_relative_paths_are_read_from_the_files_folder(tmp_path, path, expected):
    assert attachment_file(att(path), tmp_path) == tmp_path / expected


def test_absolute_path_inside_the_files_folder(tmp_path):
    inside = tmp_path / "scans" / "a.pdf"
    assert attachment_file(att(str(inside)), tmp_path) == inside


def test_relative_root_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert attachment_file(att("a.pdf"), Path("export")) == tmp_path / "export" / "a.pdf"


@pytest.mark.parametrize("path", [
    "../secret.txt",
    "scans/../../secret.txt",
    "/etc/passwd",
], ids=["parent", "dotdot-escaping", "absolute-elsewhere"])
def test_paths_leaving_the_files_folder_are_refused(tmp_path, path):
    root = tmp_path / "export"
    with pytest.raises(AttachmentOutsideRoot) as err:
        attachment_file(att(path), root)
    assert "secret" not in str(err.value) and "passwd" not in str(err.value)  # no file names


def test_sibling_folder_with_a_common_prefix_is_outside(tmp_path):
    """``export-old`` starts with ``export`` but is not inside it."""
    with pytest.raises(AttachmentOutsideRoot):
        attachment_file(att("../export-old/a.pdf"), tmp_path / "export")


def test_without_a_root_the_path_is_taken_as_given():
    assert attachment_file(att("../a.pdf"), None) == Path("../a.pdf")
    assert attachment_file(att(Path("x/y.pdf")), None) == Path("x/y.pdf")
