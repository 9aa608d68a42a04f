"""Coverage-guided fuzzers (atheris) and their kept corpora; see fuzz/README.md."""
