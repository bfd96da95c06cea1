"""``python -m shared.contract.document [--check]``: rewrite docs/DOCUMENT.md's field reference from
the contract; with --check, change nothing and exit 1 when it is out of date."""

from __future__ import annotations

import argparse
import sys

from shared.contract.document.reference import DOCUMENT_MD, updated, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    if args.check:
        stale = updated(DOCUMENT_MD.read_text()) != DOCUMENT_MD.read_text()
        print(f"{DOCUMENT_MD}: {'out of date' if stale else 'up to date'}")
        sys.exit(1 if stale else 0)
    print(f"{DOCUMENT_MD}: {'rewritten' if write() else 'unchanged'}")


if __name__ == "__main__":
    main()
