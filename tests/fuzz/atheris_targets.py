"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers that read bytes from outside.

Why besides hypothesis: libFuzzer keeps the inputs that reach new code and mutates those, so it
finds its own way into the header's canonical-form check, the MRZ check digits or the filter
encodings, which random inputs rarely reach. Each target lets through only the error its
parser documents (the table in ``test_parser_fuzz.py``); anything else is a crash.

    python tests/fuzz/atheris_targets.py header -atheris_runs=200000
    python tests/fuzz/atheris_targets.py mrz -max_total_time=300 corpus-dir/

atheris is optional (``pip install 'atheris>=2.3,<3'``): without it this script says so and
exits 2, and ``test_atheris_targets_run_clean`` skips.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[1])]

try:
    import atheris
except ImportError:  # pragma: no cover - optional tool
    atheris = None

TARGETS = ("header", "mrz", "directory", "agreement", "filter", "delta", "manifest")


def target(name: str) -> Callable[[bytes], None]:
    """The fuzz function of ``name``: parse the bytes, allow only the documented error."""
    # Only this repository's code: instrumenting PyYAML's pure-Python scanner breaks it
    # (``'\n\n`` then raises AttributeError inside yaml.scanner, where the uninstrumented
    # scanner raises the ScannerError the agreement loader expects): a false crash.
    with atheris.instrument_imports(include=["crypto", "node", "policies"]):
        from crypto.envelope import decode_header
        from crypto.errors import CryptoError, EncodingError
        from crypto.filter import decode_delta, decode_filter
        from crypto.match_keys import FilterManifest
        from node.records.icao import MrzError, parse_mrz
        from node.trust.directory import parse_directory_json
        from node.trust.member import DirectoryError
        from policies.errors import PolicyError
        from policies.signatures import load_signed_agreement

    def text(data: bytes) -> str:
        return data.decode("utf-8", "replace")

    table: dict[str, tuple[Callable[[bytes], object], type[BaseException]]] = {
        "header": (decode_header, EncodingError),
        "mrz": (lambda d: parse_mrz(text(d), reference_year=2026), MrzError),
        "directory": (parse_directory_json, DirectoryError),
        "agreement": (load_signed_agreement, PolicyError),
        "filter": (decode_filter, CryptoError),
        "delta": (decode_delta, CryptoError),
        "manifest": (FilterManifest.from_json, EncodingError),
    }
    parse, allowed = table[name]

    def one(data: bytes) -> None:
        with contextlib.suppress(allowed):
            parse(data)

    return one


def main(argv: list[str]) -> int:
    if atheris is None:
        print("atheris is not installed: pip install 'atheris>=2.3,<3'", file=sys.stderr)
        return 2
    if len(argv) < 2 or argv[1] not in TARGETS:
        print(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]", file=sys.stderr)
        return 2
    fuzz = target(argv[1])
    atheris.Setup([argv[0], *argv[2:]], fuzz)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
