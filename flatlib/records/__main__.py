"""``python -m flatlib.records NAME``: run NAME in full mode and store its result."""

from flatlib.records import main

main()
