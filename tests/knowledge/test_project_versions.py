"""The TransformerLens version a project declares, read from its files (nearest folder first)."""

from __future__ import annotations

import pytest

from lsp_server.knowledge.project_versions import declared_version, version_of_specifier


@pytest.mark.parametrize("spec,version", [
    ("==2.18.0", "2.18.0"), (">=2,<3", "2.x"), (">=2.16.1,<3.0.0", "2.x"), ("~=2.1", "2.x"), ("^2.0", "2.x"),
    ("<3", "2.x"), ("<=2.9", "2.x"), ("=1.11.0", "1.11.0"),
    (">=2", None), (">=1.14.0", None), (">=3,<5", None),  # the major is not fixed: say nothing
])
def test_a_specifier_counts_only_when_it_fixes_the_major_version(spec, version):
    assert version_of_specifier(spec) == version


@pytest.mark.parametrize("name,content,version,shown", [
    ("requirements.txt", "torch\ntransformer_lens==1.17.0\nplotly\n", "1.17.0", "transformer-lens==1.17.0"),
    ("pyproject.toml", '[project]\ndependencies = ["torch", "transformer-lens>=2.16.1,<3.0.0"]\n', "2.x", "transformer-lens>=2.16.1,<3.0.0"),
    ("pyproject.toml", '[tool.poetry.dependencies]\ntransformer-lens = "^2.0"\n', "2.x", "transformer-lens^2.0"),
    ("pyproject.toml", '[tool.poetry.dependencies]\ntransformer-lens = {version = "^1.2", optional = true}\n', "1.x", "transformer-lens^1.2"),
    ("uv.lock", '[[package]]\nname = "transformer-lens"\nversion = "2.9.1"\nsource = { registry = "x" }\n', "2.9.1", "locked 2.9.1"),
    ("environment.yml", "dependencies:\n  - pip:\n    - transformer_lens==1.11.0\n", "1.11.0", "transformer-lens==1.11.0"),
    ("setup.py", 'setup(install_requires=["transformer-lens>=1.0,<2"])\n', "1.x", "transformer-lens>=1.0,<2"),
])
def test_each_kind_of_declaring_file(tmp_path, name, content, version, shown):
    (tmp_path / name).write_text(content)
    found = declared_version(tmp_path, tmp_path)
    assert (found.version, found.source) == (version, f"{name} ({shown})")


def test_the_nearest_declaration_wins_and_the_search_stops_at_the_root(tmp_path):
    (tmp_path / "requirements.txt").write_text("transformer-lens>=2,<3\n")
    old = tmp_path / "replications" / "ioi"
    old.mkdir(parents=True)
    (tmp_path / "replications" / "requirements.txt").write_text("transformer_lens==1.17.0\n")
    assert declared_version(old, tmp_path).version == "1.17.0"
    assert declared_version(tmp_path / "replications", tmp_path / "replications").version == "1.17.0"
    (tmp_path / "replications" / "requirements.txt").write_text("numpy\ntransformer-lens>=2\n")  # says nothing
    assert declared_version(old, tmp_path).version == "2.x"
    assert declared_version(old, old) is None  # not above the root
