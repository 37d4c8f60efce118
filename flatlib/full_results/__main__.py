"""``python -m flatlib.full_results NAME``: run NAME in full mode and store its result."""

from flatlib.full_results import main

main()
